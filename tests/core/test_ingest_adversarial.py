"""Adversarial ingest: every hostile op is refused with its reason, the store untouched,
the process alive and ``verify_store`` still clean (node.ingest, docs/protocol.md "Ingest")."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import msgspec
import pycrdt
import pytest
from helpers import (
    PANIC_ANYWHERE,
    Author,
    YWriter,
    doc_view,
    dump,
    ingest,
    resign,
    statuses,
    zero_length_item,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node import ingest as ingest_module
from node.crypto.keys import KeyPair
from node.crypto.ops import MAX_OP_BYTES, OpKind, encode_wire, make_op
from node.domain.auth import Level
from node.domain.documents import doc_id
from node.ingest import Reason
from node.replica import Replica
from node.store.store import STATUS_EQUIVOCATED, STATUS_SOFT_FAILED, STATUS_VALID
from node.verify import verify_store


@dataclass
class World:
    """One replica holding a circle: founder ``a`` (manage), ``w`` (write), ``r`` (read);
    ``w`` has written "hello" into ``doc``."""

    replica: Replica
    circle: bytes
    doc: bytes
    a: Author
    w: Author
    r: Author
    heads: list[bytes]
    w_doc: YWriter
    first_y: bytes

    async def refused(self, wire: bytes, reason: Reason) -> None:
        """Ingest ``wire``: refused for ``reason``, store unchanged, store still verifies."""
        before = await dump(self.replica.store)
        view = doc_view(await self.replica.doc(self.circle, self.doc))
        report = await ingest(self.replica, [wire])
        assert (report.rejected, dict(report.reasons)) == (1, {reason.value: 1}), report.problems
        assert (report.added, report.soft_failed, report.pending) == (0, 0, 0)
        assert report.accepted == []
        assert await dump(self.replica.store) == before
        assert doc_view(await self.replica.doc(self.circle, self.doc)) == view
        assert (await verify_store(self.replica)).ok

    async def honest_edit(self, text: str) -> None:
        """``w`` still writes normally afterwards: the node is alive and unharmed."""
        op = self.w.y(self.circle, self.doc, self.w_doc.type(text), self.heads)
        report = await ingest(self.replica, [op])
        assert report.added == 1, report.problems
        assert str(self.w_doc.doc.get("t", type=pycrdt.Text)).endswith(text)
        assert doc_view(await self.replica.doc(self.circle, self.doc))["t"] == str(
            self.w_doc.doc.get("t", type=pycrdt.Text)
        )


@pytest.fixture
async def world(replica: Replica) -> World:
    a, w, r = Author(), Author(), Author()
    genesis = a.genesis()
    circle = genesis.circle
    add_w = a.set_member(circle, w, Level.WRITE, [genesis.op_id])
    add_r = a.set_member(circle, r, Level.READ, [add_w.op_id])
    doc = doc_id(circle, "profile")
    writer = YWriter(w.ycid)
    first = w.y(circle, doc, writer.type("hello"), [add_r.op_id])
    report = await ingest(replica, [genesis, add_w, add_r, first])
    assert report.added == 4, report.problems
    return World(replica, circle, doc, a, w, r, [add_r.op_id], writer, first.op_id)


# ---- signatures and encoding ---------------------------------------------------------------


async def test_forged_signature(world: World) -> None:
    """A valid op re-signed by another key but still naming the member: bad_signature."""
    update = YWriter(world.w.ycid).type("x")
    op = world.w.y(world.circle, world.doc, update, world.heads, advance=False)
    await world.refused(resign(op, KeyPair.generate()), Reason.BAD_SIGNATURE)
    await world.honest_edit(" world")


async def test_forger_signing_as_themselves_is_not_the_member(world: World) -> None:
    """An outsider signing an op with its own key is judged as the outsider: restricted."""
    outsider = Author(ycid=world.w.ycid)
    op = outsider.y(world.circle, world.doc, YWriter(world.w.ycid).type("x"), world.heads)
    await world.refused(op.wire(), Reason.RESTRICTED)


@pytest.mark.parametrize("body", [b"other record", b"same lengths"])
async def test_swapped_body(world: World, body: bytes) -> None:
    """A valid header and signature with another body (same or other length): bad_signature."""
    op = world.w.record(world.circle, world.heads, t="note", advance=False)
    assert op.body != body
    await world.refused(encode_wire(op.header_bytes, op.sig, body), Reason.BAD_SIGNATURE)


async def test_replay_into_another_circle_needs_a_new_signature(world: World) -> None:
    """Re-addressing a member's op to another circle it belongs to breaks the signature."""
    w = world.w
    a_elsewhere = Author(key=world.a.key, ycid=world.a.ycid)
    other_genesis = a_elsewhere.genesis(name="other")
    other = other_genesis.circle
    w_elsewhere = Author(key=w.key, ycid=w.ycid)
    add = a_elsewhere.set_member(other, w_elsewhere, Level.WRITE, [other_genesis.op_id])
    assert (await ingest(world.replica, [other_genesis, add])).added == 2
    op = w.record(world.circle, world.heads, t="note")
    fields = msgspec.msgpack.decode(op.header_bytes)
    assert fields[2] == world.circle
    fields[2] = other
    rewritten = msgspec.msgpack.encode(fields)
    await world.refused(encode_wire(rewritten, op.sig, op.body), Reason.BAD_SIGNATURE)
    assert (await ingest(world.replica, [op])).added == 1  # the original still belongs here


async def test_replayed_op_is_a_duplicate_not_reapplied(world: World) -> None:
    """Feeding an accepted op again counts a duplicate and changes nothing."""
    op = world.w.record(world.circle, world.heads, t="note")
    assert (await ingest(world.replica, [op])).added == 1
    before = await dump(world.replica.store)
    view = doc_view(await world.replica.doc(world.circle, world.doc))
    stored = [r for r in await world.replica.store.all_ops() if r.op_id == world.first_y]
    replay = encode_wire(stored[0].header, stored[0].sig, stored[0].body)
    report = await ingest(world.replica, [op.wire(), replay, op.wire()])
    assert (report.duplicates, report.added, report.rejected) == (3, 0, 0)
    assert await dump(world.replica.store) == before
    assert doc_view(await world.replica.doc(world.circle, world.doc)) == view


async def test_oversized_op(world: World) -> None:
    """An op over 64 KiB is refused as oversized before it is parsed."""
    op = world.w.record(
        world.circle, world.heads, t="note", fields={"pad": "x" * MAX_OP_BYTES}, advance=False
    )
    assert len(op.wire()) > MAX_OP_BYTES
    await world.refused(op.wire(), Reason.OVERSIZED)


@pytest.mark.parametrize(
    "garbage",
    [b"", b"\xc1", b"\x93\x01\x02\x03", b"\x93\xc4\x00\xc4\x00\xc4\x00", b"\xdd\xff\xff\xff\xff"],
)
async def test_malformed_msgpack(world: World, garbage: bytes) -> None:
    """Bytes that are not a wire op are refused as malformed."""
    await world.refused(garbage, Reason.MALFORMED)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(garbage=st.binary(min_size=1, max_size=300))
async def test_random_bytes_are_malformed(world: World, garbage: bytes) -> None:
    """Random bytes are refused (malformed) without touching the store."""
    before = await dump(world.replica.store)
    report = await ingest(world.replica, [garbage])
    assert report.rejected == 1
    assert set(report.reasons) <= {"malformed", "bad_signature"}
    assert await dump(world.replica.store) == before


async def test_malformed_body_of_auth_or_record(world: World) -> None:
    """A signed auth or record op whose body does not decode is refused as malformed."""
    auth = world.a.make(
        OpKind.AUTH, world.circle, b"\x81\xa4type\xa4nope", world.heads, advance=False
    )
    await world.refused(auth.wire(), Reason.MALFORMED)
    record = world.w.make(OpKind.RECORD, world.circle, b"\x92\x01\x02", world.heads, advance=False)
    await world.refused(record.wire(), Reason.MALFORMED)


# ---- chain rules ---------------------------------------------------------------------------


async def test_genesis_with_deps_is_invalid(replica: Replica) -> None:
    """A genesis op citing deps is refused as invalid and creates no circle."""
    founder = Author()
    good = founder.genesis()
    bad = make_op(
        founder.key,
        kind=OpKind.GENESIS,
        circle=bytes(16),
        seq=1,
        backlink=None,
        body=good.body,
        deps=[os.urandom(32)],
        ycid=founder.ycid,
    )
    before = await dump(replica.store)
    report = await ingest(replica, [bad])
    assert dict(report.reasons) == {"invalid": 1}
    assert await dump(replica.store) == before
    assert await replica.store.circles() == []


@pytest.mark.parametrize(
    "fields",
    [
        {"seq": 2, "backlink": None},
        {"seq": 1, "backlink": b"\x01" * 32},
        {"doc": b"\x02" * 16},
        {"ycid": 12345},  # differs from the ycid in the genesis body
    ],
)
async def test_malformed_genesis_is_invalid(replica: Replica, fields: dict[str, object]) -> None:
    """A genesis not at seq 1, with a backlink or doc, or a mismatched ycid is invalid."""
    founder = Author()
    good = founder.genesis()
    kwargs: dict[str, object] = {"seq": 1, "backlink": None, "ycid": founder.ycid, **fields}
    bad = make_op(founder.key, kind=OpKind.GENESIS, circle=bytes(16), body=good.body, **kwargs)  # type: ignore[arg-type]
    report = await ingest(replica, [bad])
    assert dict(report.reasons) == {"invalid": 1}
    assert await replica.store.max_lseq() == 0


async def test_bad_backlink(world: World) -> None:
    """The next seq with a backlink that is not the author's head: bad_backlink."""
    op = world.w.record(world.circle, world.heads, t="note", backlink=os.urandom(32), advance=False)
    await world.refused(op.wire(), Reason.BAD_BACKLINK)
    missing = world.w.record(world.circle, world.heads, t="note", backlink=None, advance=False)
    await world.refused(missing.wire(), Reason.BAD_BACKLINK)


async def test_kind_rules(world: World) -> None:
    """A y op without doc or ycid, an auth or record op with a doc: invalid."""
    update = YWriter(world.w.ycid).type("x")
    cases = [
        world.w.make(OpKind.Y, world.circle, update, world.heads, advance=False),
        world.w.make(
            OpKind.Y, world.circle, update, world.heads, doc=world.doc, ycid=0, advance=False
        ),
        world.w.make(
            OpKind.RECORD,
            world.circle,
            b"\x81\xa1t\xa4note",
            world.heads,
            doc=world.doc,
            advance=False,
        ),
    ]
    for op in cases:
        await world.refused(op.wire(), Reason.INVALID)


async def test_seq_zero_is_refused_without_a_trace(world: World) -> None:
    """An op at seq 0 is refused (the header schema starts seqs at 1) and leaves no evidence
    or frozen row behind."""
    # there is no conflicting op, so it is not equivocation; and any key could otherwise
    # write rows into evidence and frozen of every circle this node holds
    outsider = Author()
    op = outsider.record(world.circle, world.heads, t="note", seq=0, backlink=None)
    await world.refused(op.wire(), Reason.MALFORMED)


async def test_gap_waits_in_pending_then_releases(world: World) -> None:
    """An op ahead of its chain waits in pending, unapplied, until the missing op arrives."""
    skipped = world.w.y(world.circle, world.doc, world.w_doc.type(" a"), world.heads)
    ahead = world.w.y(world.circle, world.doc, world.w_doc.type(" b"), world.heads)
    report = await ingest(world.replica, [ahead])
    assert (report.pending, report.added) == (1, 0)
    assert await world.replica.store.pending_count() == 1
    assert doc_view(await world.replica.doc(world.circle, world.doc))["t"] == "hello"
    report = await ingest(world.replica, [skipped])
    assert report.added == 2
    assert [op.op_id for op in report.accepted] == [skipped.op_id, ahead.op_id]
    assert await world.replica.store.pending_count() == 0
    assert doc_view(await world.replica.doc(world.circle, world.doc))["t"] == "hello a b"
    assert (await verify_store(world.replica)).ok


# ---- authorization -------------------------------------------------------------------------


async def test_non_member_writes_are_restricted(world: World) -> None:
    """Ops by a key that is not a member, of every kind, are restricted."""
    outsider = Author()
    writer = YWriter(outsider.ycid)
    for op in [
        outsider.y(world.circle, world.doc, writer.type("x"), world.heads, advance=False),
        outsider.record(world.circle, world.heads, t="note", advance=False),
        outsider.set_member(world.circle, outsider, Level.MANAGE, world.heads, advance=False),
        outsider.set_device(world.circle, Author(), world.heads, advance=False),
    ]:
        await world.refused(op.wire(), Reason.RESTRICTED)


async def test_member_of_another_circle_is_a_stranger_here(world: World) -> None:
    """The founder of another circle has no rights in this one."""
    stranger = Author()
    elsewhere = stranger.genesis()
    assert (await ingest(world.replica, [elsewhere])).added == 1
    op = stranger.record(world.circle, world.heads, t="decision", seq=1, backlink=None)
    await world.refused(op.wire(), Reason.RESTRICTED)


async def test_read_member_cannot_write(world: World) -> None:
    """A read-level member's y op and write-level record are restricted; a note is allowed."""
    r = world.r
    y = r.y(world.circle, world.doc, YWriter(r.ycid).type("x"), world.heads, advance=False)
    await world.refused(y.wire(), Reason.RESTRICTED)
    decision = r.record(world.circle, world.heads, t="decision", advance=False)
    await world.refused(decision.wire(), Reason.RESTRICTED)
    note = r.record(world.circle, world.heads, t="note")
    assert (await ingest(world.replica, [note])).added == 1


async def test_write_member_cannot_manage(world: World) -> None:
    """A write member cannot add members or promote itself."""
    w = world.w
    for op in [
        w.set_member(world.circle, Author(), Level.WRITE, world.heads, advance=False),
        w.set_member(world.circle, w, Level.MANAGE, world.heads, register=False, advance=False),
    ]:
        await world.refused(op.wire(), Reason.RESTRICTED)


async def _revoke_w(world: World) -> bytes:
    """``a`` removes ``w`` with a cut at w's current seq; returns the removal's op id."""
    revoke = world.a.set_member(
        world.circle, world.w, Level.NONE, world.heads, cuts={world.w.public: world.w.seq}
    )
    assert (await ingest(world.replica, [revoke])).added == 1
    return revoke.op_id


async def test_write_after_revocation_citing_it_is_restricted(world: World) -> None:
    """After removal, an op above the cut whose deps include the removal is restricted."""
    revoke = await _revoke_w(world)
    op = world.w.y(world.circle, world.doc, world.w_doc.type("!"), [revoke], advance=False)
    await world.refused(op.wire(), Reason.RESTRICTED)
    record = world.w.record(world.circle, [revoke], t="note", advance=False)
    await world.refused(record.wire(), Reason.RESTRICTED)


async def test_write_after_revocation_with_stale_deps_is_soft_failed(world: World) -> None:
    """A write above the cut citing pre-removal deps is stored soft failed, unapplied."""
    await _revoke_w(world)
    view = doc_view(await world.replica.doc(world.circle, world.doc))
    op = world.w.y(world.circle, world.doc, world.w_doc.type(" late"), world.heads)
    report = await ingest(world.replica, [op])
    assert (report.added, report.soft_failed, report.rejected) == (0, 1, 0)
    assert report.accepted == []
    assert (await statuses(world.replica.store))[op.op_id] == STATUS_SOFT_FAILED
    assert doc_view(await world.replica.doc(world.circle, world.doc)) == view
    world.replica.invalidate()  # rebuilt from the store: still without the soft-failed op
    assert doc_view(await world.replica.doc(world.circle, world.doc)) == view
    assert (await world.replica.store.height(world.circle, world.w.public))[0] == 2
    assert (await verify_store(world.replica)).ok


async def test_ops_at_or_below_the_cut_stay_valid(world: World) -> None:
    """Revocation does not touch the member's ops at or below the cut."""
    await _revoke_w(world)
    assert (await statuses(world.replica.store))[world.first_y] == STATUS_VALID
    assert doc_view(await world.replica.doc(world.circle, world.doc))["t"] == "hello"


async def test_revocation_arriving_late_demotes_ops_above_the_cut(world: World) -> None:
    """A late removal demotes accepted ops above its cut and the doc is rebuilt without them."""
    late = world.w.y(world.circle, world.doc, world.w_doc.type(" late"), world.heads)
    assert (await ingest(world.replica, [late])).added == 1
    assert doc_view(await world.replica.doc(world.circle, world.doc))["t"] == "hello late"
    revoke = world.a.set_member(
        world.circle, world.w, Level.NONE, world.heads, cuts={world.w.public: 1}
    )
    assert (await ingest(world.replica, [revoke])).added == 1
    assert (await statuses(world.replica.store))[late.op_id] == STATUS_SOFT_FAILED
    assert doc_view(await world.replica.doc(world.circle, world.doc))["t"] == "hello"
    assert (await verify_store(world.replica)).ok


async def test_removed_manager_cannot_add_members_with_stale_deps(world: World) -> None:
    """A removed manager cannot add members by citing deps from before its removal: the
    op is kept in the auth log (so every replica folds the same set) but has no effect."""
    a, circle = world.a, world.circle
    b = Author()
    add_b = a.set_member(circle, b, Level.MANAGE, world.heads)
    remove_b = a.set_member(circle, b, Level.NONE, [add_b.op_id], cuts={b.public: 0})
    assert (await ingest(world.replica, [add_b, remove_b])).added == 2
    crony = Author()
    backdated = b.set_member(circle, crony, Level.WRITE, [add_b.op_id])  # b's seq 1 > cut 0
    await ingest(world.replica, [backdated])
    state = await world.replica.auth_state(circle)
    assert backdated.op_id in state.skipped
    assert state.level_at(crony.public, 1) == Level.NONE
    write = crony.record(circle, [backdated.op_id, remove_b.op_id], t="decision")
    report = await ingest(world.replica, [write])
    assert report.added == 0


# ---- y op bindings -------------------------------------------------------------------------


async def test_y_op_under_another_members_registered_ycid(world: World) -> None:
    """A y op whose header claims the founder's ycid: ycid_mismatch."""
    a_ycid = world.a.ycid
    op = world.w.y(
        world.circle, world.doc, YWriter(a_ycid).type("x"), world.heads, ycid=a_ycid, advance=False
    )
    await world.refused(op.wire(), Reason.YCID_MISMATCH)


async def test_y_op_whose_items_are_under_another_ycid(world: World) -> None:
    """A y op whose update items forge another member's ycid is a ycid_mismatch."""
    forged = YWriter(world.a.ycid).type("words put in a's mouth")
    op = world.w.y(world.circle, world.doc, forged, world.heads, advance=False)
    await world.refused(op.wire(), Reason.YCID_MISMATCH)


async def test_y_op_leaving_a_clock_gap(world: World) -> None:
    """An update that starts after the author's previous clock end: clock_mismatch."""
    world.w_doc.type(" never sent")
    gap = world.w_doc.type(" after a gap")
    op = world.w.y(world.circle, world.doc, gap, world.heads, advance=False)
    await world.refused(op.wire(), Reason.CLOCK_MISMATCH)


async def test_y_op_overlapping_previous_clock(world: World) -> None:
    """Re-sending the author's first update as a new op (clocks already used): clock_mismatch."""
    first = YWriter(world.w.ycid).type("hello")
    op = world.w.y(world.circle, world.doc, first, world.heads, advance=False)
    await world.refused(op.wire(), Reason.CLOCK_MISMATCH)


async def test_clock_is_per_doc(world: World) -> None:
    """The author's clock on another doc starts at 0 again; its first doc is unaffected."""
    other = doc_id(world.circle, "roles")
    op = world.w.y(world.circle, other, YWriter(world.w.ycid).type("roles"), world.heads)
    assert (await ingest(world.replica, [op])).added == 1
    await world.honest_edit(" again")


@pytest.mark.parametrize("update", [b"\xff" * 40, b"\x00", os.urandom(64), PANIC_ANYWHERE], ids=str)
async def test_malformed_update_in_a_signed_y_op(world: World, update: bytes) -> None:
    """A signed y op with garbage or pycrdt-panicking bytes is malformed_update; node lives on."""
    op = world.w.y(world.circle, world.doc, update, world.heads, advance=False)
    await world.refused(op.wire(), Reason.MALFORMED_UPDATE)
    await world.honest_edit(" still here")


async def test_update_that_panics_pycrdt_in_the_live_doc(world: World) -> None:
    """An update passing the binding check but panicking pycrdt live is malformed_update."""
    bad = zero_length_item(world.w.ycid, 5)  # w's clock is at 5 after "hello"
    op = world.w.y(world.circle, world.doc, bad, world.heads, advance=False)
    await world.refused(op.wire(), Reason.MALFORMED_UPDATE)
    await world.honest_edit(" and on")


# ---- equivocation --------------------------------------------------------------------------


async def test_equivocation(world: World) -> None:
    """A second op at a held seq is equivocation: evidence kept, author frozen, fork undone."""
    w, circle = world.w, world.circle
    second = w.y(circle, world.doc, world.w_doc.type(" two"), world.heads)
    third = w.y(circle, world.doc, world.w_doc.type(" three"), world.heads)
    assert (await ingest(world.replica, [second, third])).added == 2
    assert doc_view(await world.replica.doc(circle, world.doc))["t"] == "hello two three"
    twin = w.record(circle, world.heads, t="note", seq=2, backlink=world.first_y, advance=False)
    report = await ingest(world.replica, [twin])
    assert dict(report.reasons) == {"equivocation": 1}
    assert report.accepted == []
    evidence = await world.replica.store.evidence()
    assert (circle, w.public, 2, twin.op_id, second.op_id) in evidence
    assert await world.replica.store.frozen() == {(circle, w.public): 2}
    found = await statuses(world.replica.store)
    assert found[world.first_y] == STATUS_VALID
    for forked in (second.op_id, third.op_id):  # never valid again
        assert found.get(forked, STATUS_EQUIVOCATED) == STATUS_EQUIVOCATED
    assert twin.op_id not in found
    kept = {row[3] for row in evidence} | {k for k, v in found.items() if v == STATUS_EQUIVOCATED}
    assert {twin.op_id, second.op_id, third.op_id} <= kept  # both sides of the fork kept
    assert doc_view(await world.replica.doc(circle, world.doc))["t"] == "hello"
    world.replica.invalidate()
    assert doc_view(await world.replica.doc(circle, world.doc))["t"] == "hello"
    later = w.y(circle, world.doc, world.w_doc.type(" four"), world.heads)
    before = await dump(world.replica.store)
    report = await ingest(world.replica, [later])
    assert dict(report.reasons) == {"equivocation": 1}
    after = await dump(world.replica.store)
    # a frozen author's later op is kept as (void) evidence only; nothing else changes
    assert {k: v for k, v in after.items() if k != "evidence"} == {
        k: v for k, v in before.items() if k != "evidence"
    }
    assert later.op_id in {row[3] for row in await world.replica.store.evidence()}
    assert (await verify_store(world.replica)).ok


async def test_equivocation_within_one_batch_forwards_nothing_of_the_fork(world: World) -> None:
    """Forked ops arriving in the same batch as their twin are never reported as accepted."""
    w, circle = world.w, world.circle
    second = w.y(circle, world.doc, world.w_doc.type(" two"), world.heads)
    twin = w.record(circle, world.heads, t="note", seq=2, backlink=world.first_y, advance=False)
    note = world.r.record(circle, world.heads, t="note")
    report = await ingest(world.replica, [second, note, twin])
    assert [op.op_id for op in report.accepted] == [note.op_id]
    assert dict(report.reasons) == {"equivocation": 1}
    assert (await verify_store(world.replica)).ok


async def test_equivocating_manager_keeps_the_store_verifiable(world: World) -> None:
    """A manager forking on an auth op: the addition is undone and verify_store agrees."""
    a, circle = world.a, world.circle
    c = Author()
    add_c = a.set_member(circle, c, Level.WRITE, world.heads)
    c_edit = c.y(circle, world.doc, YWriter(c.ycid).type("c was here "), [add_c.op_id])
    assert (await ingest(world.replica, [add_c, c_edit])).added == 2
    twin = a.set_member(
        circle,
        Author(),
        Level.READ,
        world.heads,
        seq=add_c.seq,
        backlink=add_c.header.backlink,
        advance=False,
    )
    report = await ingest(world.replica, [twin])
    assert dict(report.reasons) == {"equivocation": 1}
    state = await world.replica.auth_state(circle)
    assert state.level_at(c.public, 1) == Level.NONE
    assert (await statuses(world.replica.store))[c_edit.op_id] != STATUS_VALID
    assert "c was here" not in doc_view(await world.replica.doc(circle, world.doc))["t"]
    result = await verify_store(world.replica)
    assert result.ok, result.problems


async def test_store_survives_a_reopen_after_hostile_input(tmp_path: Path) -> None:
    """After a stream of hostile ops the file reopens and verifies clean."""
    a, w = Author(), Author()
    genesis = a.genesis()
    add = a.set_member(genesis.circle, w, Level.WRITE, [genesis.op_id])
    junk = [
        b"\xc1",
        resign(w.record(genesis.circle, [add.op_id], t="note", advance=False), a.key),
        w.y(genesis.circle, b"d" * 16, PANIC_ANYWHERE, [add.op_id], advance=False).wire(),
    ]
    async with Replica.open(tmp_path / "node.db") as replica:
        report = await ingest(replica, [genesis, add, *junk])
        assert (report.added, report.rejected) == (2, 3)
    async with Replica.open(tmp_path / "node.db") as replica:
        assert (await verify_store(replica)).ok
        assert len(await replica.store.all_ops()) == 2


async def test_founder_forking_at_seq_one_does_not_erase_the_circle(world: World) -> None:
    """A founder's other op at seq 1 is invalid (its seq 1 is the genesis); the circle stays
    held and verifiable."""
    twin = world.a.record(
        world.circle, [world.heads[0]], t="note", seq=1, backlink=None, advance=False
    )
    before = await dump(world.replica.store)
    report = await ingest(world.replica, [twin])
    assert dict(report.reasons) == {"invalid": 1}
    assert await dump(world.replica.store) == before
    assert world.circle in await world.replica.store.circles()
    result = await verify_store(world.replica)
    assert result.ok, result.problems


async def test_strangers_citing_unknown_deps_get_a_small_pending_allowance(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Throwaway keys citing made-up deps share a small pending allowance, then are refused."""
    monkeypatch.setattr(ingest_module, "MAX_PENDING_STRANGERS", 5)
    ops = [Author().record(world.circle, [os.urandom(32)], t="note") for _ in range(7)]
    report = await ingest(world.replica, ops)
    assert report.pending == 5
    assert dict(report.reasons) == {"pending_full": 2}
    assert await world.replica.store.pending_with_reason("stranger") == 5
