"""Writing export outputs: whole or not at all, and never over an existing path unless
asked (``--force``).

A file is written to a temp file beside the target, fsynced and renamed into place
(:func:`node.commands.bundle.atomic_output`). A directory of CSV tables is filled in a temp
directory beside the target, every file fsynced, then renamed into place; with ``force``
an existing directory is first renamed aside and removed only after the new one is in
place, so a crash leaves either the old or the new export, never a mix.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from node.errors import NodeError


def _exists(path: Path) -> NodeError:
    return NodeError(f"{path} already exists: choose another name or pass --force")


def check_directory_target(path: Path, force: bool) -> None:
    """Refuse, before any work, a target that exists (without --force) or is not a dir."""
    if not (path.exists() or path.is_symlink()):
        if not path.parent.is_dir():
            raise NodeError(f"{path.parent} is not a directory: create it first")
        return
    if not force:
        raise _exists(path)
    if path.is_symlink() or not path.is_dir():
        raise NodeError(f"{path} exists and is not a directory")


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
    check_directory_target(path, force)
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
