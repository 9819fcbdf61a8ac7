"""The demo directory's rules and `demo` flags: only a demo directory (or an empty one) is
used; a damaged or foreign marker is refused; bad --ports are refused before anything."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from node.cli import main
from node.commands.demo import parse_ports
from node.demo.layout import MARKER, VERSION, DemoDir, DemoError
from node.errors import ConfigError


def test_missing_or_empty_directory_is_a_new_demo(tmp_path: Path) -> None:
    """Nothing there, or an empty directory: no marker yet, nothing refused."""
    assert DemoDir(tmp_path / "new").read() is None
    (tmp_path / "empty").mkdir()
    assert DemoDir(tmp_path / "empty").read() is None


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", "is damaged"),
        (json.dumps({"demo": "something else"}), "is not a circle-node demo marker"),
        (json.dumps({"demo": MARKER, "version": VERSION + 1, "state": "built"}), "another ver"),
        (json.dumps({"demo": MARKER, "version": VERSION, "state": "odd"}), "another version"),
    ],
)
def test_bad_markers_are_refused(tmp_path: Path, content: str, expected: str) -> None:
    """A marker that is not ours, damaged or of another version: DemoError saying so."""
    (tmp_path / "demo.json").write_text(content)
    with pytest.raises(DemoError, match=expected):
        DemoDir(tmp_path).read()


def test_a_file_is_not_a_demo_directory(tmp_path: Path) -> None:
    """--dir naming a file is refused."""
    (tmp_path / "f").write_text("x")
    with pytest.raises(DemoError, match="not a directory"):
        DemoDir(tmp_path / "f").read()


@pytest.mark.parametrize("text", ["1,2", "1,2,x", "1,1,3", "1,2,70000", "-1,2,3"])
def test_bad_ports_are_refused(text: str) -> None:
    """--ports wants three different port numbers (0: any free port)."""
    with pytest.raises(ConfigError, match="--ports"):
        parse_ports(text)


def test_good_ports() -> None:
    """Three ports, or none: any free ports."""
    assert parse_ports("7411, 7412,7413") == [7411, 7412, 7413]
    assert parse_ports("0,0,0") == [0, 0, 0]
    assert parse_ports(None) == [0, 0, 0]


def test_json_without_headless_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The TUI is interactive: --json needs --headless; nothing is created."""
    assert main(["demo", "--dir", str(tmp_path / "d"), "--json"]) == 1
    assert "--headless" in json.loads(capsys.readouterr().out)["error"]
    assert not (tmp_path / "d").exists()
