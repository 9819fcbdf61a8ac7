"""Archives verified from their bytes alone: a faithful one passes on a fresh store; an
edited, cut, padded or forged one fails, and the problem names the op."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pycrdt
import pytest
from archive_bytes import archive_of, build, frame_offset, sections_of
from conftest import Org
from helpers import Author, YWriter
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node import local
from node.crypto.ops import OpKind, decode_op, make_op
from node.domain.documents import doc_id
from node.domain.governance.records import DecisionRec, ProposalRec, encode_record
from node.errors import DecodeError, NodeError
from node.export.archive import plan_archive, verify_archive, write_archive
from node.governance import create_proposal, load, sign, take_position
from node.store.store import STATUS_EQUIVOCATED


async def verified(tmp_path: Path, data: bytes, name: str = "a.cna") -> dict[str, Any]:
    path = tmp_path / name
    path.write_bytes(data)
    return (await verify_archive(path)).as_dict()


def problems(report: dict[str, Any], code: str) -> list[dict[str, Any]]:
    return [p for p in report["problems"] if p["problem"] == code]


async def test_a_faithful_archive_verifies_on_a_fresh_store(org: Org, tmp_path: Path) -> None:
    """Every op is re-ingested and re-verified; per-circle counts and decisions add up."""
    data = await archive_of(org.replica, [org.garden, org.den])
    report = await verified(tmp_path, data)
    assert report["ok"], report["problems"]
    stored = {c: len(await org.replica.store.all_ops(c)) for c in (org.garden, org.den)}
    assert report["ops"] == sum(stored.values()) == report["manifest"]["ops"]
    by_name = {c["name"]: c for c in report["circles"]}
    assert (by_name["Garden"]["verified"], by_name["Den"]["verified"]) == (
        stored[org.garden], stored[org.den],
    )  # fmt: skip
    assert by_name["Garden"]["decisions"] == 3  # the watering, the term and the keeper
    assert by_name["Garden"]["authors"] == 3
    assert report["manifest"]["verifier"] == "circle-node verify --archive FILE"


async def test_one_circle_can_be_archived_alone(org: Org, tmp_path: Path) -> None:
    """The Den alone verifies: its ops need nothing from the Garden."""
    report = await verified(tmp_path, await archive_of(org.replica, [org.den]))
    assert report["ok"], report["problems"]
    assert [c["name"] for c in report["circles"]] == ["Den"]


@pytest.mark.parametrize("kind", [OpKind.GENESIS, OpKind.AUTH, OpKind.RECORD])
async def test_a_flipped_byte_names_the_op(org: Org, tmp_path: Path, kind: OpKind) -> None:
    """One byte of one op's body flipped: that op is named by circle, author, seq, hash."""
    data = await archive_of(org.replica, [org.garden])
    _manifest, [(_circle, wires)] = sections_of(data)
    index = next(i for i, w in enumerate(wires) if decode_op(w).kind is kind)
    target = decode_op(wires[index])
    blob = bytearray(data)
    blob[frame_offset(data, index) + len(wires[index]) - 2] ^= 0x01  # inside the body
    report = await verified(tmp_path, bytes(blob))
    assert not report["ok"]
    (named,) = [p for p in report["problems"] if p.get("index") == index]
    assert (named["op"], named["circle"], named["author"], named["seq"]) == (
        target.op_id.hex(), org.garden.hex(), target.author.hex(), target.seq,
    )  # fmt: skip
    assert named["problem"] == "bad_signature"
    assert problems(report, "section_hash")  # the manifest disagrees too


async def test_a_removed_op_names_the_ops_that_need_it(org: Org, tmp_path: Path) -> None:
    """Bob's first position dropped (manifest rebuilt to match): his next op is named as
    waiting for it, and the head the manifest claims is not reached."""
    data = await archive_of(org.replica, [org.garden])
    manifest, [(circle, wires)] = sections_of(data)
    bobs = [i for i, w in enumerate(wires) if decode_op(w).author == org.bob.public]
    dropped, following = decode_op(wires[bobs[0]]), decode_op(wires[bobs[1]])
    kept = [w for i, w in enumerate(wires) if i != bobs[0]]
    heads = {circle: list(manifest.circles[0].heads)}
    report = await verified(tmp_path, build([(circle, kept)], heads))
    waiting = problems(report, "missing_predecessor")
    assert following.op_id.hex() in {p["op"] for p in waiting}
    assert dropped.op_id.hex() not in {p["op"] for p in report["problems"]}
    assert any(org.bob.public.hex()[:16] in p["detail"] for p in problems(report, "head_mismatch"))


async def test_a_decision_that_does_not_hold_is_named(org: Org, tmp_path: Path) -> None:
    """A member signs a decision citing only her own consent: every op verifies, but the
    decision is named as not holding against the signed positions."""
    body = ProposalRec(title="Paint", driver="the shed peels", text="paint it green")
    pid, version = await create_proposal(org.replica, org.alice, org.garden, body)
    await take_position(org.replica, org.alice, pid.hex(), "consent", "")
    (mine,) = [s.op_id for s in (await _positions(org, pid)) if s.member == org.alice.public]
    forged = await sign(
        org.replica, org.alice, org.garden,
        DecisionRec(proposal=pid, version=version, positions=[mine], review_date="2030-01-01"),
    )  # fmt: skip
    report = await verified(tmp_path, await archive_of(org.replica, [org.garden]))
    (named,) = problems(report, "decision_does_not_hold")
    assert (named["op"], named["author"], named["kind"]) == (
        forged.hex(), org.alice.public.hex(), "record",
    )  # fmt: skip


async def _positions(org: Org, pid: bytes) -> list[Any]:
    cg = await load(org.replica, org.garden)
    return cg.gov.proposals[pid].positions


async def test_an_outsiders_op_slipped_in_is_named(org: Org, tmp_path: Path) -> None:
    """An op signed by a key the circle never admitted, citing its auth heads: restricted."""
    data = await archive_of(org.replica, [org.garden])
    _manifest, [(circle, wires)] = sections_of(data)
    heads = (await org.replica.auth_log(org.garden)).heads()
    stranger = Author()
    body = encode_record(ProposalRec(title="Mine", driver="d", text="t"))
    forged = stranger.make(OpKind.RECORD, circle, body, deps=heads)
    report = await verified(tmp_path, build([(circle, [*wires, forged.wire()])]))
    (named,) = [p for p in report["problems"] if p["op"] == forged.op_id.hex()]
    assert (named["problem"], named["author"], named["seq"]) == (
        "restricted", stranger.public.hex(), 1,
    )  # fmt: skip


async def test_duplicates_and_misfiled_ops_are_named(org: Org, tmp_path: Path) -> None:
    data = await archive_of(org.replica, [org.garden, org.den])
    _manifest, [(garden, gw), (den, dw)] = sections_of(data)
    report = await verified(tmp_path, build([(garden, [*gw, gw[3]]), (den, [*dw, gw[4]])]))
    assert [p["op"] for p in problems(report, "duplicate")] == [decode_op(gw[3]).op_id.hex()]
    assert [p["op"] for p in problems(report, "wrong_section")] == [decode_op(gw[4]).op_id.hex()]


async def test_equivocated_ops_stay_out_of_archives(org: Org, tmp_path: Path) -> None:
    """Evidence of equivocation is not part of any chain: an archive leaves it out."""
    rows = await org.replica.store.all_ops(org.garden)
    assert all(r.status != STATUS_EQUIVOCATED for r in rows)  # the fixture holds none
    _manifest, [(_c, wires)] = sections_of(await archive_of(org.replica, [org.garden]))
    assert len(wires) == len(rows)


async def test_unreadable_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(NodeError, match="no archive"):
        await verify_archive(tmp_path / "missing.cna")
    (tmp_path / "empty.cna").write_bytes(b"")
    with pytest.raises(DecodeError, match="truncated"):
        await verify_archive(tmp_path / "empty.cna")


@pytest.fixture
async def sample(org: Org) -> bytes:
    """A real archive of the Den."""
    return await archive_of(org.replica, [org.den])


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_fuzz_verify_mutated_archives(sample: bytes, tmp_path: Path, data: st.DataObject) -> None:
    """Mutated real archives through the whole verifier: a report or a NodeError, never
    a crash, and never ``ok`` for bytes that differ inside an op."""
    blob = bytearray(sample)
    spot = data.draw(st.integers(0, len(blob) - 1))
    action = data.draw(st.sampled_from(["flip", "cut", "insert"]))
    if action == "flip":
        blob[spot] ^= data.draw(st.integers(1, 255))
    elif action == "cut":
        del blob[spot:]
    else:
        blob[spot:spot] = data.draw(st.binary(min_size=1, max_size=8))
    path = tmp_path / "fuzz.cna"
    path.write_bytes(bytes(blob))
    try:
        report = asyncio.run(verify_archive(path))
    except NodeError:
        return
    assert not report.ok or bytes(blob) == sample


async def test_ops_stored_after_planning_stay_out(org: Org, tmp_path: Path) -> None:
    """A running service may store ops while an export runs: the archive holds the
    store as of the plan, and still verifies."""
    plan = await plan_archive(org.replica, [org.garden], "hall")
    body = ProposalRec(title="Later", driver="d", text="arrives mid-export")
    await create_proposal(org.replica, org.bob, org.garden, body)
    out = io.BytesIO()
    assert await write_archive(org.replica, plan, out) == plan.manifest.total
    report = await verified(tmp_path, out.getvalue())
    assert report["ok"], report["problems"]
    assert report["ops"] == plan.manifest.total
    later = len(await org.replica.store.all_ops(org.garden))
    assert later == plan.manifest.total + 1


async def test_an_edited_header_is_named_with_its_original_id(org: Org, tmp_path: Path) -> None:
    """A flipped header byte changes the op's hash; the next op's backlink still names the
    original, and the report gives both."""
    data = await archive_of(org.replica, [org.garden])
    _manifest, [(_circle, wires)] = sections_of(data)
    ops = [decode_op(w) for w in wires]
    index = next(i for i, op in enumerate(ops) if op.author == org.bob.public and op.seq == 2)
    target = ops[index]
    ts_at = target.header_bytes.rindex(target.header.body_hash) - 3  # body_len, still valid
    spot = frame_offset(data, index) + wires[index].index(target.header_bytes) + ts_at
    blob = bytearray(data)
    blob[spot] ^= 0x01
    report = await verified(tmp_path, bytes(blob))
    (named,) = [p for p in report["problems"] if p.get("index") == index]
    assert (named["author"], named["seq"]) == (org.bob.public.hex(), 2)
    assert named["op"] != target.op_id.hex()
    assert named["original_op"] == target.op_id.hex()


async def test_doc_edits_verify_and_a_forged_client_id_is_named(org: Org, tmp_path: Path) -> None:
    """``y`` ops verify with their ycid binding; bob's own signed update written under
    alice's Yjs client id is named (it would make replicas diverge)."""
    doc = doc_id(org.garden, "notes")
    for key, text in ((org.alice, "water"), (org.bob, "weed"), (org.alice, "harvest")):
        await local.edit_doc(org.replica, key, org.garden, doc, _append(text))
    data = await archive_of(org.replica, [org.garden])
    report = await verified(tmp_path, data)
    assert report["ok"], report["problems"]

    state = await org.replica.auth_state(org.garden)
    alice_ycid, bob_ycid = state.ycid_of(org.alice.public), state.ycid_of(org.bob.public)
    assert alice_ycid is not None
    assert bob_ycid is not None
    seq, head = (await org.replica.heights(org.garden))[org.bob.public]
    forged = make_op(
        org.bob, kind=OpKind.Y, circle=org.garden, seq=seq + 1, backlink=head,
        deps=(await org.replica.auth_log(org.garden)).heads(), doc=doc, ycid=bob_ycid,
        body=YWriter(alice_ycid).set("k", "as alice"),
    )  # fmt: skip
    _manifest, [(circle, wires)] = sections_of(data)
    report = await verified(tmp_path, build([(circle, [*wires, forged.wire()])]), "y.cna")
    (named,) = [p for p in report["problems"] if p["op"] == forged.op_id.hex()]
    assert (named["kind"], named["author"], named["seq"]) == ("y", org.bob.public.hex(), seq + 1)
    assert named["problem"] in ("ycid_mismatch", "clock_mismatch")


def _append(text: str) -> Callable[[Any], None]:
    def change(doc: Any) -> None:
        doc.get("t", type=pycrdt.Text).insert(0, text)

    return change
