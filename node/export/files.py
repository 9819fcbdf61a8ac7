"""Writing export outputs: whole or not at all, and never over an existing path unless
asked (``--force``), and even then only over a previous export of the same format.

A file is written to a temp file beside the target, fsynced and renamed into place
(:func:`node.commands.bundle.atomic_output`). A directory of CSV tables is filled in a temp
directory beside the target, every file fsynced, then renamed into place; with ``force``
an existing directory is first renamed aside and removed only after the new one is in
place, so a crash leaves either the old or the new export, never a mix.

``--force`` replaces only what an earlier export wrote: a directory holding nothing but
regular files named as the tables this export writes (or empty), a file that starts as
this format's output starts (or is empty). Anything else is refused before any work and
checked again just before the swap, and nothing is deleted.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Collection
from pathlib import Path

from node.errors import NodeError
from node.export.archive_format import MAGIC

# How each file format's output begins (the archive: any format version).
FILE_STARTS: dict[str, bytes] = {
    "md": b"# circle-node export, ",
    "json": b'{\n "format": "circle-node export",',
    "archive": MAGIC[:-1],
    "verifier": b'#!/usr/bin/env python3\n"""A standalone checker for circle-node archives',
}


def _exists(path: Path) -> NodeError:
    return NodeError(f"{path} already exists: choose another name or pass --force")


def _not_ours(path: Path, what: str) -> NodeError:
    return NodeError(
        f"{path} {what}: --force replaces only a previous export of the same format; "
        "nothing was changed (choose another path, or move it away yourself)"
    )


def check_previous_file(path: Path, fmt: str) -> None:
    """Refuse to replace an existing ``path`` unless it is an earlier ``fmt`` export."""
    start = FILE_STARTS[fmt]
    try:
        with path.open("rb") as handle:
            head = handle.read(len(start))
    except FileNotFoundError:
        return
    except OSError as exc:
        raise NodeError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if head and head != start:
        raise _not_ours(path, f"is not a {fmt} export")


def _check_previous_directory(path: Path, names: Collection[str]) -> None:
    try:
        entries = list(path.iterdir())
    except OSError as exc:
        raise NodeError(f"cannot read {path}: {exc.strerror or exc}") from exc
    foreign = sorted(
        p.name for p in entries if p.name not in names or p.is_symlink() or not p.is_file()
    )
    if foreign:
        shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
        raise _not_ours(path, f"holds what this export does not write ({shown})")


def check_directory_target(path: Path, force: bool, names: Collection[str] = ()) -> None:
    """Refuse, before any work, a target that exists (without --force) or is not a dir,
    or (with --force) holds anything but the files ``names`` this export writes."""
    if not (path.exists() or path.is_symlink()):
        if not path.parent.is_dir():
            raise NodeError(f"{path.parent} is not a directory: create it first")
        return
    if not force:
        raise _exists(path)
    if path.is_symlink() or not path.is_dir():
        raise NodeError(f"{path} exists and is not a directory")
    _check_previous_directory(path, names)


def _fsync(path: Path, flags: int = os.O_RDONLY) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot sync a directory
    finally:
        os.close(fd)


def write_directory(path: Path, files: dict[str, str], force: bool) -> list[str]:
    """Publish ``{file name: text}`` as the directory ``path``; the names written."""
    check_directory_target(path, force, files)
    try:
        staging = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    except OSError as exc:
        raise NodeError(f"cannot write {path}: {exc.strerror or exc}") from exc
    aside: Path | None = None
    try:
        for name, text in files.items():
            target = staging / name
            target.write_text(text, encoding="utf-8", newline="")
            _fsync(target)
        _fsync(staging)
        if path.exists():
            _check_previous_directory(path, files)  # again: it may have changed meanwhile
            aside = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".old"))
            os.replace(path, aside / "previous")
        try:
            os.rename(staging, path)
        except OSError:
            if aside is not None:  # put the old export back
                os.replace(aside / "previous", path)
            raise
        _fsync(path.parent)
    except OSError as exc:
        raise NodeError(f"cannot write {path}: {exc.strerror or exc}") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if aside is not None:
            shutil.rmtree(aside, ignore_errors=True)
    return sorted(files)
