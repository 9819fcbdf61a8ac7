"""The comparison's workload generator: same seed, same workload, in any process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from workload import CIRCLES, MEMBERS, Workload, churn, generate, live_edit

WORKLOAD_PY = Path(__file__).resolve().parents[2] / "bench" / "compare" / "workload.py"


def test_same_seed_gives_the_same_workload_byte_for_byte() -> None:
    assert generate(300, seed=11).to_json() == generate(300, seed=11).to_json()


def test_another_seed_gives_another_workload() -> None:
    assert generate(300, seed=11).to_json() != generate(300, seed=12).to_json()


def test_a_separate_process_writes_the_same_json(tmp_path: Path) -> None:
    """The peers' drivers read the JSON file: it must not depend on hash seeds or the like."""
    out = tmp_path / "w.json"
    subprocess.run(
        [sys.executable, str(WORKLOAD_PY), str(out), "--proposals", "120", "--seed", "5"],
        check=True,
        env={"PYTHONHASHSEED": "123"},
    )
    assert out.read_text() == generate(120, seed=5).to_json()


def test_shape_proposals_split_across_circles_with_five_positions_each() -> None:
    workload = generate(1000)
    assert len(workload.proposals) == 1000
    assert workload.circles == CIRCLES
    per_circle = [sum(p.circle == c for p in workload.proposals) for c in range(CIRCLES)]
    assert per_circle == [1000 // CIRCLES] * CIRCLES
    for p in workload.proposals:
        assert all((p.title, p.status, p.driver, p.text))
        assert sorted(p.positions) == sorted(workload.members[p.circle])
        assert len(p.positions) == MEMBERS
        assert set(p.positions.values()) <= {"consent", "concern", "objection"}
    assert [p.index for p in workload.proposals] == list(range(1000))


def test_json_round_trip() -> None:
    workload = generate(50, seed=3)
    assert Workload.from_json(workload.to_json()) == workload


def test_churn_edits_ten_percent_deterministically_and_differs_per_round() -> None:
    workload = generate(1000)
    first = churn(workload, 0)
    assert first == churn(workload, 0)
    assert len(first) == 100
    assert len({i for i, _ in first}) == 100
    assert first != churn(workload, 1)
    old = {p.index: p.text for p in workload.proposals}
    assert all(text != old[i] for i, text in first)


def test_live_edits_are_deterministic() -> None:
    workload = generate(100)
    assert live_edit(workload, 2) == live_edit(workload, 2)
    index, text = live_edit(workload, 2)
    assert 0 <= index < 100
    assert "\n" not in text  # it travels on one line to the drivers


def test_bad_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="at least one"):
        generate(0)
