"""``serve`` and ``sync``: thin entry points that load the network stack only when run.

Every other command stays quick to start because aiohttp and zeroconf are imported here
lazily (the implementation is in :mod:`node.commands.sync_run`).
"""

from __future__ import annotations

import argparse

from node.commands.base import Context, Output


def serve(ctx: Context, args: argparse.Namespace) -> Output:
    """Run the node: serve peers and keep live sync until stopped (SIGINT or SIGTERM)."""
    from node.commands import sync_run

    return sync_run.serve(ctx, args)


def sync(ctx: Context, args: argparse.Namespace) -> Output:
    """One full sync round with each configured peer (or one), then exit."""
    from node.commands import sync_run

    return sync_run.sync(ctx, args)
