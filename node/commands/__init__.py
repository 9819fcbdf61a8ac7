"""The commands of ``circle-node``, one module per group; ``node.cli`` parses and prints.

Every command is a function ``(Context, argparse.Namespace) -> Output``. It raises
:class:`node.errors.NodeError` for anything the user must fix (``node.cli`` turns that
into a message and an exit code) and never prints to stdout itself: the CLI prints the
``Output`` once, as JSON or as text. Prompts go to stderr or the terminal.
"""
