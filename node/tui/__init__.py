"""The terminal UI: ``circle-node tui`` (docs/tui.md lists the screens and keys).

Layout: :mod:`node.tui.app` wires screens, bindings and ``circle_node.tcss``; screens live
in :mod:`node.tui.screens`, reusable widgets in :mod:`node.tui.widgets`. Screens read
through the loaders in :mod:`node.tui.data` and :mod:`node.tui.proposal_data` and write
through :mod:`node.tui.actions`, both thin layers over :mod:`node.governance` and
:mod:`node.local`, so the TUI and the CLI share every rule. Store and key work runs in
``@work`` workers (argon2id in threads); results reach screens as messages
(:mod:`node.tui.messages`). Textual is imported only when the TUI starts.
"""
