"""The seeded workload every system in the comparison gets: proposals split across circles.

Each proposal has a title, a status, a driver, a text and the positions of its circle's five
members. The same seed gives the same workload, byte for byte, in any process (the peers'
drivers read it as JSON). Edits (10% churn, live edits) are derived from the seed too, so
every system applies the same changes to the same proposals.

``python workload.py --proposals N --seed S OUT.json`` writes one.
"""

from __future__ import annotations

import argparse
import json
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path

CIRCLES = 20
MEMBERS = 5
POSITIONS = ("consent", "consent", "consent", "concern", "objection")
STATUSES = ("draft", "consent round", "agreed", "objection raised")
WORDS = (
    "we will try a rota for the shared kitchen and review it after three months "
    "the garden needs a budget a meeting time a new member welcome a quiet hour "
    "tools library bike repair evening childcare swap tenants association heating"
).split()


@dataclass(frozen=True)
class Proposal:
    index: int
    circle: int
    title: str
    status: str
    driver: str
    text: str
    positions: dict[str, str] = field(default_factory=dict)  # member name -> position


@dataclass(frozen=True)
class Workload:
    seed: int
    circles: int
    members: list[list[str]]  # per circle, its member names
    proposals: list[Proposal]

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Workload:
        data = json.loads(text)
        proposals = [Proposal(**p) for p in data["proposals"]]
        return cls(data["seed"], data["circles"], data["members"], proposals)


def _sentence(rng: random.Random, low: int, high: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(low, high))).capitalize()


def generate(proposals: int, seed: int = 7, circles: int = CIRCLES) -> Workload:
    """``proposals`` proposals, round-robin across ``circles`` circles of 5 members."""
    if proposals < 1 or circles < 1:
        raise ValueError("need at least one proposal and one circle")
    rng = random.Random(seed)
    members = [[f"c{c}-m{m}" for m in range(MEMBERS)] for c in range(circles)]
    out = []
    for n in range(proposals):
        circle = n % circles
        positions = {name: rng.choice(POSITIONS) for name in members[circle]}
        out.append(
            Proposal(
                index=n,
                circle=circle,
                title=f"P{n}: {_sentence(rng, 2, 5)}",
                status=rng.choice(STATUSES),
                driver=_sentence(rng, 5, 12),
                text=f"Proposal {n}. {_sentence(rng, 20, 60)}.",
                positions=positions,
            )
        )
    return Workload(seed, circles, members, out)


def churn(workload: Workload, round_: int, fraction: float = 0.1) -> list[tuple[int, str]]:
    """Edits for one churn round: ``fraction`` of the proposals (at least one), chosen by
    the seed and the round, each given a new text. Returns ``(index, new_text)``."""
    rng = random.Random(f"{workload.seed}/churn/{round_}")
    count = max(1, round(len(workload.proposals) * fraction))
    picked = sorted(rng.sample(range(len(workload.proposals)), count))
    return [
        (n, f"Proposal {n}, amended in round {round_}. {_sentence(rng, 20, 60)}.") for n in picked
    ]


def live_edit(workload: Workload, number: int) -> tuple[int, str]:
    """The ``number``-th single live edit: one proposal and its new text."""
    rng = random.Random(f"{workload.seed}/live/{number}")
    n = rng.randrange(len(workload.proposals))
    return n, f"Proposal {n}, live edit {number}. {_sentence(rng, 5, 15)}."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path)
    parser.add_argument("--proposals", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    args.out.write_text(generate(args.proposals, args.seed).to_json())


if __name__ == "__main__":
    main()
