"""Tests for node.store and the replica caches over it: migrations, transactions, several
connections on one file, the doc cache and checkpoints (real SQLite files, no mocks)."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path
from typing import Any

import msgspec
import pycrdt
import pytest
from helpers import Author, YWriter, doc_view, dump, ingest, state_vector

from node import docs as docs_module
from node import local
from node.crypto.keys import KeyPair
from node.docs import CHECKPOINT_EVERY
from node.domain.auth import Level
from node.domain.documents import doc_id
from node.errors import StorageError
from node.replica import Replica
from node.store.schema import SCHEMA_VERSION
from node.store.store import OpRow, Store
from node.verify import verify_store

HOME = b"\x05" * 32


def _text(text: str) -> Any:
    def change(doc: pycrdt.Doc[Any]) -> None:
        t = doc.get("t", type=pycrdt.Text)
        t.insert(len(t), text)

    return change


def _user_version(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute("PRAGMA user_version").fetchone()[0])


# ---- migrations ----------------------------------------------------------------------------


async def test_migrations_set_user_version(tmp_path: Path) -> None:
    """A new store is migrated to the current schema and records it in user_version."""
    path = tmp_path / "node.db"
    async with Store.open(path) as store:
        tables = {r[0] for r in await store._all("SELECT name FROM sqlite_master")}
        (mode,) = await store._one("PRAGMA journal_mode")
    assert {"ops", "heights", "pending", "evidence", "frozen", "checkpoints"} <= tables
    assert mode == "wal"
    assert _user_version(path) == SCHEMA_VERSION >= 1


async def test_reopening_is_idempotent(tmp_path: Path) -> None:
    """Reopening a migrated store keeps its schema version and its data."""
    path = tmp_path / "node.db"
    async with Replica.open(path) as replica:
        circle = await local.create_circle(
            replica, KeyPair.generate(), name="c", creator_name="a", home=HOME
        )
        before = await dump(replica.store)
    for _ in range(2):
        async with Replica.open(path) as replica:
            assert await dump(replica.store) == before
            assert await replica.store.circles() == [circle]
    assert _user_version(path) == SCHEMA_VERSION


async def test_newer_schema_is_refused(tmp_path: Path) -> None:
    """A store written by a newer circle-node (higher user_version) is refused, untouched."""
    path = tmp_path / "node.db"
    async with Store.open(path):
        pass
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StorageError, match="newer"):
        async with Store.open(path):
            pass
    assert _user_version(path) == SCHEMA_VERSION + 1


async def test_a_file_that_is_not_a_store_is_refused(tmp_path: Path) -> None:
    """Opening a file that is not SQLite raises StorageError, not sqlite3's errors."""
    path = tmp_path / "node.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StorageError):
        async with Store.open(path):
            pass


# ---- transactions --------------------------------------------------------------------------


def _row(lseq: int) -> OpRow:
    return OpRow(
        lseq,
        bytes([lseq]) * 32,
        b"c" * 16,
        b"a" * 32,
        lseq,
        3,
        None,
        b"h",
        b"s",
        b"b",
        0,
        None,
        None,
    )


async def _write_then_fail(store: Store, error: BaseException) -> None:
    async with store.write():
        await store.insert_ops([_row(1), _row(2)])
        await store.set_heights({(b"c" * 16, b"a" * 32): (2, b"x" * 32)})
        await store.set_meta("k", b"v")
        raise error


@pytest.mark.parametrize("error", [RuntimeError("boom"), asyncio.CancelledError()])
async def test_failed_transaction_leaves_no_rows(tmp_path: Path, error: BaseException) -> None:
    """An exception (or cancellation) inside ``write()`` rolls back every write in it."""
    async with Store.open(tmp_path / "node.db") as store:
        before = await dump(store)
        with pytest.raises(type(error)):
            await _write_then_fail(store, error)
        assert await dump(store) == before
        async with store.write():  # the connection is usable afterwards
            await store.insert_ops([_row(1)])
        assert await store.max_lseq() == 1


# ---- several connections on one file -------------------------------------------------------


async def test_writes_from_one_connection_are_seen_by_the_other(tmp_path: Path) -> None:
    """Two replicas on one file see each other's commits, through already-filled caches too."""
    path = tmp_path / "node.db"
    a, w = KeyPair.generate(), KeyPair.generate()
    async with Replica.open(path) as cli, Replica.open(path) as service:
        assert not await service.store.changed_elsewhere()
        circle = await local.create_circle(cli, a, name="c", creator_name="a", home=HOME)
        assert await service.store.changed_elsewhere()
        assert not await service.store.changed_elsewhere()
        doc = doc_id(circle, "profile")
        await local.add_member(
            service, a, circle, member=w.public, name="w", level=Level.WRITE, home=HOME
        )
        assert (await cli.auth_state(circle)).level_at(w.public, 1) == Level.WRITE
        await local.edit_doc(cli, w, circle, doc, _text("one"))
        assert doc_view(await service.doc(circle, doc))["t"] == "one"  # cached now
        await local.edit_doc(cli, w, circle, doc, _text(" two"))
        assert doc_view(await service.doc(circle, doc))["t"] == "one two"
        await local.edit_doc(service, w, circle, doc, _text(" three"))
        assert doc_view(await cli.doc(circle, doc))["t"] == "one two three"
        assert await cli.store.heads_for(circle) == await service.store.heads_for(circle)
        assert (await verify_store(cli)).ok


async def test_own_commits_do_not_count_as_changes_elsewhere(tmp_path: Path) -> None:
    """A connection's own commits do not invalidate its caches."""
    async with Replica.open(tmp_path / "node.db") as replica:
        await replica.store.changed_elsewhere()
        await local.create_circle(
            replica, KeyPair.generate(), name="c", creator_name="a", home=HOME
        )
        assert not await replica.store.changed_elsewhere()


async def test_concurrent_records_from_two_connections_never_share_a_seq(tmp_path: Path) -> None:
    """One member's records through two connections at once get unique, gapless seqs."""
    path = tmp_path / "node.db"
    a = KeyPair.generate()
    async with Replica.open(path) as one, Replica.open(path) as two:
        circle = await local.create_circle(one, a, name="c", creator_name="a", home=HOME)
        body = msgspec.msgpack.encode({"t": "note"})
        ops = await asyncio.gather(
            *(local.author_record(r, a, circle, body) for _ in range(8) for r in (one, two))
        )
        seqs = sorted(op.seq for op in ops)
        assert seqs == list(range(2, 18))
        rows = await one.store.ops_by_author(circle, a.public)
        assert [r.seq for r in rows] == list(range(1, 18))
        assert (await verify_store(one)).ok
        assert (await verify_store(two)).ok


async def test_concurrent_edits_by_several_members_on_two_connections(tmp_path: Path) -> None:
    """Different members editing via two connections at once all land; docs agree."""
    path = tmp_path / "node.db"
    a, w = KeyPair.generate(), KeyPair.generate()
    async with Replica.open(path) as one, Replica.open(path) as two:
        circle = await local.create_circle(one, a, name="c", creator_name="a", home=HOME)
        await local.add_member(
            one, a, circle, member=w.public, name="w", level=Level.WRITE, home=HOME
        )
        doc = doc_id(circle, "profile")

        async def edits(replica: Replica, key: KeyPair, name: str) -> None:
            for i in range(4):  # one member's edits in turn; the two members race
                await local.edit_doc(replica, key, circle, doc, _text(f"{name}{i} "))

        await asyncio.gather(edits(one, a, "a"), edits(two, w, "w"))
        heads = await one.store.heads_for(circle)
        assert {heads[a.public][0], heads[w.public][0]} == {6, 4}
        view = doc_view(await one.doc(circle, doc))
        assert doc_view(await two.doc(circle, doc)) == view
        assert sorted(view["t"].split()) == sorted(
            [f"a{i}" for i in range(4)] + [f"w{i}" for i in range(4)]
        )
        assert (await verify_store(one)).ok


async def test_concurrent_edits_by_one_member_all_land(tmp_path: Path) -> None:
    """One member's concurrent edits via two connections all land with unique seqs."""
    path = tmp_path / "node.db"
    a = KeyPair.generate()
    async with Replica.open(path) as one, Replica.open(path) as two:
        circle = await local.create_circle(one, a, name="c", creator_name="a", home=HOME)
        doc = doc_id(circle, "profile")
        results = await asyncio.gather(
            *(
                local.edit_doc(r, a, circle, doc, _text(f"e{i} "))
                for i in range(3)
                for r in (one, two)
            ),
            return_exceptions=True,
        )
        assert (await verify_store(one)).ok
        rows = await one.store.ops_by_author(circle, a.public)
        assert len({r.seq for r in rows}) == len(rows)
        failures = [r for r in results if isinstance(r, BaseException)]
        assert failures == []
        assert len(doc_view(await one.doc(circle, doc))["t"].split()) == 6


# ---- doc cache and checkpoints -------------------------------------------------------------


async def test_doc_cache_eviction_and_reload_give_the_same_doc(tmp_path: Path) -> None:
    """An evicted doc reloads from the store equal to the one built incrementally."""
    a = KeyPair.generate()
    async with Replica.open(tmp_path / "node.db") as replica:
        replica.docs.capacity = 1
        circle = await local.create_circle(replica, a, name="c", creator_name="a", home=HOME)
        d1, d2 = doc_id(circle, "one"), doc_id(circle, "two")
        for i in range(3):
            await local.edit_doc(replica, a, circle, d1, _text(f"x{i}"))
            await local.edit_doc(replica, a, circle, d2, _text(f"y{i}"))
        assert replica.docs.cached(circle, d1) is None
        first = await replica.doc(circle, d1)
        assert replica.docs.cached(circle, d2) is None
        view, vector = doc_view(first), state_vector(first)
        assert view["t"] == "x0x1x2"
        await replica.doc(circle, d2)
        again = await replica.doc(circle, d1)
        assert again is not first
        assert (doc_view(again), state_vector(again)) == (view, vector)


async def test_checkpoint_is_written_and_loads_the_same_doc(tmp_path: Path) -> None:
    """After CHECKPOINT_EVERY updates a checkpoint is saved; a fresh replica loads the same doc."""
    path = tmp_path / "node.db"
    a, w = Author(), Author()
    genesis = a.genesis()
    circle = genesis.circle
    add = a.set_member(circle, w, Level.WRITE, [genesis.op_id])
    doc = doc_id(circle, "profile")
    writer = YWriter(w.ycid)
    edits = [
        w.y(circle, doc, writer.set(f"k{i}", i), [add.op_id]) for i in range(CHECKPOINT_EVERY + 5)
    ]
    async with Replica.open(path) as replica:
        assert (await ingest(replica, [genesis, add, *edits[:-3]])).added == len(edits) - 1
        checkpoint = await replica.store.checkpoint(circle, doc)
        assert checkpoint is not None
        state, covers = checkpoint
        assert covers == await replica.store.max_lseq()
        assert (await ingest(replica, edits[-3:])).added == 3
        live = doc_view(await replica.doc(circle, doc))
    assert live["m"] == {f"k{i}": i for i in range(len(edits))}
    async with Replica.open(path) as fresh:
        assert doc_view(await fresh.doc(circle, doc)) == live
        assert (await fresh.store.checkpoint(circle, doc)) == checkpoint
        assert (await verify_store(fresh)).ok
    with sqlite3.connect(path) as db:  # the checkpoint alone is not the whole doc
        db.execute("DELETE FROM checkpoints")
    async with Replica.open(path) as rebuilt:
        assert doc_view(await rebuilt.doc(circle, doc)) == live


async def test_checkpoint_keeps_updates_waiting_on_another_author(tmp_path: Path) -> None:
    """An update pycrdt parked (missing another author's edit) survives a checkpoint and restart."""
    path = tmp_path / "node.db"
    a, w, v = Author(), Author(), Author()
    genesis = a.genesis()
    circle = genesis.circle
    add_w = a.set_member(circle, w, Level.WRITE, [genesis.op_id])
    add_v = a.set_member(circle, v, Level.WRITE, [add_w.op_id])
    deps = [add_v.op_id]
    doc = doc_id(circle, "profile")
    w_writer, v_writer = YWriter(w.ycid), YWriter(v.ycid)
    base = w.y(circle, doc, w_writer.type("hello"), deps)
    v_writer.doc.apply_update(base.body)
    reply = v.y(circle, doc, v_writer.type(" world"), deps)  # its origin is w's text
    filler = [v.y(circle, doc, v_writer.set(f"k{i}", i), deps) for i in range(CHECKPOINT_EVERY)]
    async with Replica.open(path) as replica:
        await ingest(replica, [genesis, add_w, add_v, reply, *filler])
        assert await replica.store.checkpoint(circle, doc) is not None
    async with Replica.open(path) as replica:
        assert (await ingest(replica, [base])).added == 1
        text = doc_view(await replica.doc(circle, doc))["t"]
    assert text == "hello world"


async def test_checkpoint_keeps_a_deletion_waiting_for_its_item(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A deletion of an item this node has not seen yet survives a checkpoint and restart:
    when the item arrives it is deleted, as on a node that got both in order."""
    monkeypatch.setattr(docs_module, "CHECKPOINT_EVERY", 3)
    path = tmp_path / "node.db"
    a, w, v = Author(), Author(), Author()
    genesis = a.genesis()
    circle = genesis.circle
    add_w = a.set_member(circle, w, Level.WRITE, [genesis.op_id])
    add_v = a.set_member(circle, v, Level.WRITE, [add_w.op_id])
    deps = [add_v.op_id]
    doc = doc_id(circle, "profile")
    w_writer, v_writer = YWriter(w.ycid), YWriter(v.ycid)
    created = w.y(circle, doc, w_writer.set("gone", 1), deps)
    v_writer.doc.apply_update(created.body)

    def delete(d: pycrdt.Doc[Any]) -> None:
        del d.get("m", type=pycrdt.Map)["gone"]

    deletion = v.y(circle, doc, v_writer.edit(delete), deps)
    fillers = [v.y(circle, doc, v_writer.set(f"k{i}", i), deps) for i in range(3)]
    async with Replica.open(path) as replica:
        await ingest(replica, [genesis, add_w, add_v, deletion, *fillers])
        assert await replica.store.checkpoint(circle, doc) is not None
    async with Replica.open(path) as replica:
        assert (await ingest(replica, [created])).added == 1
        view = doc_view(await replica.doc(circle, doc))["m"]
    assert "gone" not in view
    assert view == {"k0": 0, "k1": 1, "k2": 2}


async def test_demotion_drops_a_stale_checkpoint(tmp_path: Path) -> None:
    """Demoting a checkpointed update drops the checkpoint; the doc is rebuilt without it."""
    path = tmp_path / "node.db"
    a, w = Author(), Author()
    genesis = a.genesis()
    circle = genesis.circle
    add = a.set_member(circle, w, Level.WRITE, [genesis.op_id])
    doc = doc_id(circle, "profile")
    writer = YWriter(w.ycid)
    edits = [w.y(circle, doc, writer.set(f"k{i}", i), [add.op_id]) for i in range(CHECKPOINT_EVERY)]
    revoke = a.set_member(circle, w, Level.NONE, [add.op_id], cuts={w.public: 10})
    async with Replica.open(path) as replica:
        await ingest(replica, [genesis, add, *edits])
        assert await replica.store.checkpoint(circle, doc) is not None
        assert (await ingest(replica, [revoke])).added == 1
        assert await replica.store.checkpoint(circle, doc) is None
        expected = {f"k{i}": i for i in range(10)}
        assert doc_view(await replica.doc(circle, doc))["m"] == expected
    async with Replica.open(path) as fresh:
        assert doc_view(await fresh.doc(circle, doc))["m"] == expected
        assert (await verify_store(fresh)).ok


async def test_cancelled_write_never_leaves_the_connection_in_a_transaction(
    tmp_path: Path,
) -> None:
    """A task cancelled anywhere in a write transaction (during BEGIN, a statement or
    COMMIT) leaves the connection usable: the next write starts and commits."""
    async with Replica.open(tmp_path / "cancel.db") as replica:
        store = replica.store
        for steps in range(12):

            async def writer(n: int = steps) -> None:
                async with store.write():
                    await store.set_meta(f"k{n}", b"v")
                    await asyncio.sleep(0.05)

            task = asyncio.create_task(writer())
            for _ in range(steps):
                await asyncio.sleep(0)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            async with store.write():
                await store.set_meta("after", str(steps).encode())
            assert await store.meta("after") == str(steps).encode()
