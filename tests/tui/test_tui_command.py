"""`circle-node tui`, and `circle-node run` opening the TUI only in a terminal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tui_kit import Node

from node import cli
from node.commands import tui


def test_tui_command_is_registered() -> None:
    """`circle-node tui --help` is a command of its own."""
    parser = cli.build_parser()
    args = parser.parse_args(["tui"])
    assert args.handler is tui.tui


def test_tui_refuses_json_and_a_missing_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With --json, or without a terminal, `tui` says why instead of starting."""
    assert cli.main(["--home", str(tmp_path / "h"), "tui", "--json"]) == 1
    assert "interactive" in json.loads(capsys.readouterr().out)["error"]
    assert cli.main(["--home", str(tmp_path / "h"), "tui"]) == 1  # pytest's stdin is no tty
    assert "needs a terminal" in capsys.readouterr().err


def test_run_opens_the_tui_in_a_terminal(
    node: Node, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`run` with a terminal on stdin and stdout starts the TUI on the node's home."""
    started: list[Path] = []
    monkeypatch.setattr(tui, "is_terminal", lambda: True)
    monkeypatch.setattr(tui, "run_app", lambda home: started.append(home.path) or 0)
    assert cli.main(["--home", str(node.home.path), "run"]) == 0
    assert started == [node.home.path]
    assert capsys.readouterr().out == ""


def test_run_without_a_terminal_still_prints_the_status(
    node: Node, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without a terminal `run` keeps its old behaviour: the status and what next."""
    assert cli.main(["--home", str(node.home.path), "run"]) == 0
    out = capsys.readouterr().out
    assert "Node 'test-node'" in out
    assert "What next" in out
