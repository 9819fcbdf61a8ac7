"""node/domain stays pure: no I/O, UI or crypto libraries (DESIGN section 2)."""

from __future__ import annotations

import ast
from pathlib import Path

import node.domain

FORBIDDEN = {"aiohttp", "aiosqlite", "sqlite3", "textual", "nacl", "asyncio", "socket"}
DOMAIN = Path(node.domain.__file__).parent


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for item in ast.walk(tree):
        if isinstance(item, ast.Import):
            found.update(alias.name.split(".")[0] for alias in item.names)
        elif isinstance(item, ast.ImportFrom) and item.module and item.level == 0:
            found.add(item.module.split(".")[0])
    return found


def test_domain_modules_import_no_io_ui_or_crypto_library() -> None:
    """No module under node/domain imports aiohttp, aiosqlite, sqlite3, textual, nacl,
    asyncio or socket, so every rule there is pure and testable without I/O."""
    offenders = {
        str(path.relative_to(DOMAIN)): sorted(_imports(path) & FORBIDDEN)
        for path in sorted(DOMAIN.rglob("*.py"))
        if _imports(path) & FORBIDDEN
    }
    assert offenders == {}
    assert len(list(DOMAIN.rglob("*.py"))) >= 5  # the walk really saw the package


def test_sync_protocol_is_sans_io() -> None:
    """node/sync/protocol.py imports no asyncio, aiohttp or SQLite."""
    path = DOMAIN.parent / "sync" / "protocol.py"
    assert _imports(path) & {"asyncio", "aiohttp", "aiosqlite", "sqlite3"} == set()
