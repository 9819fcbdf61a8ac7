"""Tests for node.cli run in-process: option placement, output contracts and exit codes."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from node import home as home_module
from node.cli import main
from node.home import FAST_KDF_ENV, HOME_ENV

PASS_ENV = "CIRCLE_NODE_PASSPHRASE"


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASS_ENV, "pw")
    monkeypatch.setenv(FAST_KDF_ENV, "1")
    monkeypatch.delenv(HOME_ENV, raising=False)


@pytest.fixture
def node(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """An initialised home holding one member, alice."""
    home = tmp_path / "a"
    assert main(["--home", str(home), "init", "--name", "hall"]) == 0
    assert main(["--home", str(home), "member", "create", "--name", "alice"]) == 0
    capsys.readouterr()
    return home


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    """Run main with argv; return the exit code and the one JSON object on stdout."""
    code = main(list(argv))
    out = capsys.readouterr().out
    assert out.count("\n") == 1, out
    result: dict[str, Any] = json.loads(out)
    return code, result


def test_global_options_before_the_subcommand(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--home and --json may come before the subcommand."""
    code, data = run_json(capsys, "--home", str(tmp_path / "h"), "--json", "init", "--name", "n")
    assert code == 0
    assert data["home"] == str(tmp_path / "h")
    assert len(data["node"]) == 64


def test_global_options_after_the_subcommand(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--home and --json may come after the subcommand, also of a nested one."""
    home = str(tmp_path / "h")
    code, data = run_json(capsys, "init", "--name", "n", "--json", "--home", home)
    assert (code, data["home"]) == (0, home)
    code, data = run_json(capsys, "member", "create", "--name", "al", "--home", home, "--json")
    assert code == 0
    assert data["card"].startswith("cn1:")
    code, data = run_json(capsys, "member", "--json", "list", "--home", home)
    assert [m["name"] for m in data["members"]] == ["al"]


def test_home_from_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --home, $CIRCLE_NODE_HOME names the home."""
    monkeypatch.setenv(HOME_ENV, str(tmp_path / "env"))
    code, data = run_json(capsys, "init", "--name", "n", "--json")
    assert (code, data["home"]) == (0, str(tmp_path / "env"))


def test_as_before_and_after_the_subcommand(node: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--as picks the acting member wherever it is written."""
    main(["--home", str(node), "member", "create", "--name", "bob", "--json"])
    bob = json.loads(capsys.readouterr().out)["member"]
    _, before = run_json(capsys, "--as", "bob", "--home", str(node), "--json", "member", "card")
    _, after = run_json(capsys, "member", "card", "--home", str(node), "--json", "--as", bob[:6])
    assert before["member"] == after["member"] == bob


def test_several_members_need_as(node: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """With two members and no --as, a signing command says to use --as."""
    main(["--home", str(node), "member", "create", "--name", "bob"])
    capsys.readouterr()
    code = main(["--home", str(node), "circle", "create", "--name", "c"])
    assert code == 1
    assert "choose one with --as" in capsys.readouterr().err


def test_json_error_object_and_exit_code(node: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """With --json an error is one {"error": ...} object on stdout plus a stderr message."""
    code = main(["--home", str(node), "circle", "show", "abcdef", "--json"])
    captured = capsys.readouterr()
    assert code == 1
    assert json.loads(captured.out) == {"error": captured.err.removeprefix("error: ").strip()}
    assert "circle list" in captured.err
    assert "Traceback" not in captured.err


def test_error_without_json_prints_nothing_on_stdout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A missing home is an error on stderr that says to run init."""
    code = main(["--home", str(tmp_path / "none"), "status"])
    captured = capsys.readouterr()
    assert code == 1
    assert captured.out == ""
    assert captured.err.startswith("error: no node at ")
    assert "circle-node init --name NAME" in captured.err


@pytest.mark.parametrize(
    "argv",
    [["circle", "bogus"], ["init"], ["circle", "add-member", "x", "y", "--level", "god"], []],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """Unknown commands, missing or invalid arguments exit 2 with usage on stderr."""
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "usage: circle-node" in captured.err
    assert "error: " in captured.err


def test_usage_error_with_json_prints_error_object(capsys: pytest.CaptureFixture[str]) -> None:
    """A usage error with --json also prints the error object on stdout."""
    code, data = run_json(capsys, "--json", "member", "create")
    assert code == 2
    assert "--name" in data["error"]


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    """--help prints the global options and exits 0."""
    assert main(["circle", "create", "--help"]) == 0
    assert "--as NAME_OR_ID" in capsys.readouterr().out


def test_keyboard_interrupt_exits_130_quietly(
    node: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C at the passphrase prompt exits 130 without a traceback."""

    def interrupted(prompt: str, *, confirm: bool = False) -> str:
        raise KeyboardInterrupt

    monkeypatch.setattr(home_module, "get_passphrase", interrupted)
    assert main(["--home", str(node), "member", "card"]) == 130
    assert capsys.readouterr().err == ""


def test_wrong_passphrase_is_an_error(
    node: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wrong passphrase exits 1 naming the member and the environment variable."""
    monkeypatch.setenv(PASS_ENV, "nope")
    code, data = run_json(capsys, "--home", str(node), "--json", "member", "card")
    assert code == 1
    assert "wrong passphrase for member alice" in data["error"]


def test_circle_create_show_and_list(node: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A created circle shows its profile and creator, and lists with my level."""
    home = ["--home", str(node), "--json"]
    _, created = run_json(
        capsys, *home, "circle", "create", "--name", "Garden", "--purpose", "food"
    )
    circle = created["circle"]
    _, shown = run_json(capsys, *home, "circle", "show", circle[:6])
    assert shown["profile"] == {"name": "Garden", "purpose": "food"}
    assert [(m["name"], m["level"]) for m in shown["members"]] == [("alice", "manage")]
    assert shown["parent"] is None
    assert shown["ops"] == 2
    _, child = run_json(capsys, *home, "circle", "create", "--name", "Beds", "--parent", circle[:4])
    _, shown = run_json(capsys, *home, "circle", "show", child["circle"])
    assert shown["parent"] == circle
    _, listed = run_json(capsys, *home, "circle", "list")
    assert [(c["name"], c["members"], c["my_level"]) for c in listed["circles"]] == [
        ("Garden", 1, "manage"),
        ("Beds", 1, "manage"),
    ]


def test_parent_not_held_must_be_a_full_id(node: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A parent circle held elsewhere is accepted only by its full 32-digit id."""
    home = ["--home", str(node), "--json"]
    code, data = run_json(capsys, *home, "circle", "create", "--name", "c", "--parent", "abcd")
    assert code == 1
    assert "full 32-digit id" in data["error"]
    code, data = run_json(capsys, *home, "circle", "create", "--name", "c", "--parent", "ab" * 16)
    assert code == 0


def test_add_member_refuses_a_bad_card(node: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A mangled card is refused with a card error, before any passphrase prompt."""
    home = ["--home", str(node), "--json"]
    _, created = run_json(capsys, *home, "circle", "create", "--name", "c")
    code, data = run_json(capsys, *home, "circle", "add-member", created["circle"], "cn1:AAAA")
    assert code == 1
    assert "member card" in data["error"]


def test_add_member_needs_a_manager(node: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A member who does not manage the circle cannot add members, and is told why."""
    home = ["--home", str(node), "--json"]
    _, created = run_json(capsys, *home, "circle", "create", "--name", "c")
    _, bob = run_json(capsys, *home, "member", "create", "--name", "bob")
    code, data = run_json(
        capsys, *home, "--as", "bob", "circle", "add-member", created["circle"], bob["card"]
    )
    assert code == 1
    assert "only a manager can" in data["error"]
    code, data = run_json(
        capsys, *home, "--as", "alice", "circle", "add-member", created["circle"], bob["card"]
    )
    assert (code, data["level"], data["member"]) == (0, "write", bob["member"])
    _, listed = run_json(capsys, *home, "--as", "bob", "circle", "list")
    assert listed["circles"][0]["my_level"] == "write"


def test_status_shape(node: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """status reports the node, its name and home, and what it holds."""
    code, data = run_json(capsys, "status", "--home", str(node), "--json")
    assert code == 0
    assert set(data) == {"node", "name", "home", "members", "circles", "ops"}
    assert (data["name"], data["members"], data["circles"], data["ops"]) == ("hall", 1, 0, 0)


def test_verify_reports_an_unreadable_store(node: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A store SQLite cannot read is a verify problem with exit 1, not a traceback."""
    (node / "store.db").write_bytes(b"this is not a database" * 100)
    code, data = run_json(capsys, "verify", "--home", str(node), "--json")
    assert code == 1
    assert data["ok"] is False
    assert data["problems"][0]["problem"] == "unreadable_store"
    assert "Traceback" not in capsys.readouterr().err


def test_run_without_home_and_no_terminal_says_init(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`run` with no home and no terminal tells the user to run init."""
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert main(["--home", str(tmp_path / "none"), "run"]) == 1
    assert "circle-node init --name NAME" in capsys.readouterr().err


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_run_first_time_sets_the_node_up(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """At a terminal, `run` asks for a node name and a first member, then shows what next."""
    monkeypatch.setattr("sys.stdin", _Terminal("pi-hall\n\n \nalice\n"))
    home = tmp_path / "h"
    assert main(["--home", str(home), "run"]) == 0
    captured = capsys.readouterr()
    assert "Node 'pi-hall'" in captured.out
    assert "members  1 (alice)" in captured.out
    assert "What next:" in captured.out
    assert "cn1:" in captured.err  # the new member's card
    assert "member name must be" in captured.err  # the blank name was asked again
    assert main(["--home", str(home), "run", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["members"] == 1
