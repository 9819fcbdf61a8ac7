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
from node.export.files import check_directory_target, write_directory
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
    write_directory(target, {"a.csv": "a\n"}, force=True)
    assert [p.name for p in target.iterdir()] == ["a.csv"]
    assert _left_over(tmp_path) == []


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
