"""Unlocking the node key from a screen, once per session.

Syncs and bundles are signed by the node, not by a member: the first "sync now", export or
import that needs the node key asks for its passphrase (:class:`NodePassphraseScreen`),
opens the key in a thread (argon2id), and keeps the key pair in the session (memory only)
so later ones do not ask again. The passphrase itself is never kept.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from node.crypto.keys import KeyPair
from node.errors import NodeError, WrongPassphrase
from node.tui.screens.base import DataScreen
from node.tui.screens.ops_forms import NodePassphraseScreen


def with_node_key(screen: DataScreen, why: str, then: Callable[[KeyPair], Any]) -> None:
    """Call ``then(node key)`` on the UI thread: at once if unlocked, else after asking."""
    session = screen.session
    if session.node_key is not None:
        then(session.node_key)
        return

    def unlock(passphrase: str) -> None:  # in a thread
        try:
            key = session.home.unlock_node(passphrase)
        except WrongPassphrase:
            screen.app.call_from_thread(
                screen.notify,
                "Wrong passphrase for the node key: try again.",
                title="Not unlocked",
                severity="error",
            )
            return
        except NodeError as exc:
            screen.app.call_from_thread(screen.fail, exc)
            return

        def unlocked() -> None:
            session.node_key = key
            then(key)

        screen.app.call_from_thread(unlocked)

    def answered(passphrase: str | None) -> None:
        if passphrase:
            screen.run_worker(
                lambda: unlock(passphrase), thread=True, group="node-key", exclusive=True
            )

    name = session.home.config.name
    screen.app.push_screen(NodePassphraseScreen(name, why), answered)
