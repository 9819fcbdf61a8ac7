"""Publishing exports: a CSV directory appears whole, never over an existing path without
--force; progress lines only on a terminal."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from node.commands.base import Context
from node.commands.export import Progress
from node.errors import NodeError
from node.export.files import (
    FILE_STARTS,
    check_directory_target,
    check_previous_file,
    write_directory,
)
from node.home import NodeHome


def _left_over(parent: Path) -> list[str]:
    return [p.name for p in parent.iterdir() if p.name.startswith(".")]


def test_a_new_directory_holds_exactly_the_files(tmp_path: Path) -> None:
    target = tmp_path / "tables"
    assert write_directory(target, {"b.csv": "b\n", "a.csv": "a\n"}, force=False) == [
        "a.csv", "b.csv",
    ]  # fmt: skip
    assert sorted(p.name for p in target.iterdir()) == ["a.csv", "b.csv"]
    assert (target / "a.csv").read_text() == "a\n"
    assert _left_over(tmp_path) == []


def test_an_existing_directory_is_kept_without_force(tmp_path: Path) -> None:
    target = tmp_path / "tables"
    target.mkdir()
    (target / "mine.txt").write_text("keep")
    with pytest.raises(NodeError, match="--force"):
        write_directory(target, {"a.csv": "a\n"}, force=False)
    assert [p.name for p in target.iterdir()] == ["mine.txt"]
    (target / "mine.txt").unlink()
    (target / "a.csv").write_text("old a\n")
    write_directory(target, {"a.csv": "a\n", "b.csv": "b\n"}, force=True)
    assert sorted(p.name for p in target.iterdir()) == ["a.csv", "b.csv"]
    assert (target / "a.csv").read_text() == "a\n"
    assert _left_over(tmp_path) == []


@pytest.mark.parametrize("stranger", ["notes.txt", "sub/", "a.csv/"])
def test_force_never_removes_what_the_export_did_not_write(tmp_path: Path, stranger: str) -> None:
    """--force replaces a previous export's tables only: a directory also holding another
    file, a subdirectory or a directory under a table's name is refused, all kept."""
    target = tmp_path / "photos"
    target.mkdir()
    (target / "b.csv").write_text("old b\n")
    if stranger.endswith("/"):
        (target / stranger).mkdir()
        (target / stranger / "precious.jpg").write_text("keep")
    else:
        (target / stranger).write_text("keep")
    before = sorted(str(p.relative_to(target)) for p in target.rglob("*"))
    with pytest.raises(NodeError, match="previous export") as refused:
        write_directory(target, {"a.csv": "a\n", "b.csv": "b\n"}, force=True)
    assert stranger.rstrip("/") in str(refused.value)
    assert sorted(str(p.relative_to(target)) for p in target.rglob("*")) == before
    assert (target / "b.csv").read_text() == "old b\n"
    assert _left_over(tmp_path) == []


def test_force_replaces_only_a_file_of_the_same_export_format(tmp_path: Path) -> None:
    """A file is replaced only when it starts as that format's export (or is empty)."""
    for fmt, start in FILE_STARTS.items():
        check_previous_file(tmp_path / "missing", fmt)
        ours = tmp_path / f"ours.{fmt}"
        ours.write_bytes(start + b" more")
        check_previous_file(ours, fmt)
        (tmp_path / "empty").write_bytes(b"")
        check_previous_file(tmp_path / "empty", fmt)
        for other in FILE_STARTS:
            if other != fmt:
                with pytest.raises(NodeError, match=f"not a {other} export"):
                    check_previous_file(ours, other)
        thesis = tmp_path / "thesis.txt"
        thesis.write_bytes(b"years of work")
        with pytest.raises(NodeError, match="previous export"):
            check_previous_file(thesis, fmt)


def test_targets_that_cannot_be_a_directory_are_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(NodeError, match="not a directory"):
        check_directory_target(tmp_path / "file", force=True)
    with pytest.raises(NodeError, match="create it first"):
        check_directory_target(tmp_path / "missing" / "tables", force=False)
    (tmp_path / "link").symlink_to(tmp_path)
    with pytest.raises(NodeError, match="not a directory"):
        check_directory_target(tmp_path / "link", force=True)
    assert (tmp_path / "file").read_text() == "x"


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_only_on_a_terminal_and_never_with_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = NodeHome(tmp_path)
    stream = _Tty()
    monkeypatch.setattr(sys, "stderr", stream)
    Progress(Context(home, None, json=True)).ops(5_000, 5_000)
    assert stream.getvalue() == ""
    shown = Progress(Context(home, None, json=False))
    shown.ops(10, 100)  # a short export: nothing
    assert stream.getvalue() == ""
    shown.ops(2_500, 5_000)
    shown.ops(5_000, 5_000)
    shown.ops(5_000, 5_000)  # told twice, drawn once
    assert stream.getvalue() == "\rexporting 2500/5000 ops\rexporting 5000/5000 ops\n"
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    quiet = Progress(Context(home, None, json=False))
    quiet.step("circle 1/1")
    assert sys.stderr.getvalue() == ""
