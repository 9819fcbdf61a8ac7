"""Local edits: the acting member signs a new op, which then takes the ingest pipeline.

Each function runs in one write transaction: it reads the member's height, head and the
circle's auth heads, signs the op and ingests it, so two processes sharing the store can
never hand out the same seq. A local op that the pipeline refuses raises with its reason.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Awaitable, Callable

from node.crypto.ops import Op, OpKind, Signer, make_op
from node.domain.auth import (
    AuthBody,
    Genesis,
    Level,
    SetMember,
    decode_auth_body,
    decode_genesis,
    encode_body,
)
from node.domain.authorize import AuthLog, Verdict, judge, judge_auth, record_required_level
from node.domain.documents import YDoc, edit_as
from node.errors import AuthorizationError, DecodeError, NodeError, NotFound
from node.ingest import Batch, IngestReport
from node.replica import Replica

MAX_YCID = 2**53 - 1


def new_ycid() -> int:
    """A random Yjs client id for a key joining a circle (collisions are refused)."""
    return secrets.randbelow(MAX_YCID) + 1


def _encode_checked(body: Genesis | AuthBody) -> bytes:
    """Encode a body, refusing one the pipeline would refuse (before anything is signed)."""
    data = encode_body(body)
    try:
        if isinstance(body, Genesis):
            decode_genesis(data)
        else:
            decode_auth_body(data)
    except DecodeError as exc:
        raise NodeError(f"invalid {type(body).__name__.lower()}: {exc}") from exc
    return data


def _precheck(log: AuthLog, op: Op) -> None:
    """Refuse, before anything is stored, a local op the pipeline would refuse or keep
    only as a soft-failed record (a member whose access was revoked)."""
    deps = tuple(op.header.deps)
    if op.kind is OpKind.AUTH:
        verdict = judge_auth(
            log, author=op.author, seq=op.seq, deps=deps, body=decode_auth_body(op.body)
        )
    else:
        needed = Level.WRITE if op.kind is OpKind.Y else record_required_level(op.body)
        verdict = judge(log, author=op.author, seq=op.seq, deps=deps, needed=needed)
    if verdict is not Verdict.VALID:
        raise AuthorizationError(
            "not allowed: your access level in this circle does not permit this"
        )


async def _commit(
    replica: Replica,
    build: Callable[[int, bytes | None, list[bytes]], Awaitable[Op]],
    circle: bytes | None,
    author: bytes,
) -> Op:
    report = IngestReport()
    async with replica.store.write():
        try:
            await replica.refresh()
            deps: list[bytes] = []
            height, head = 0, None
            if circle is not None:
                if circle not in await replica.circles():
                    raise NotFound(f"this node does not hold circle {circle.hex()}")
                height, head = (await replica.heights(circle)).get(author, (0, None))
                deps = (await replica.auth_log(circle)).heads()[:20]
            op = await build(height + 1, head, deps)
            if circle is not None:
                _precheck(await replica.auth_log(circle), op)
            batch = await Batch.start(replica, report)
            await batch.run([op])
        except BaseException:
            replica.invalidate()
            raise
    replica.notify_committed(len(report.accepted))
    if report.rejected:
        problem = report.problems[0]
        if problem["reason"] == "restricted":
            raise AuthorizationError(f"not allowed: {problem['detail']}")
        raise NodeError(f"the op was refused ({problem['reason']}): {problem['detail']}")
    return op


async def create_circle(
    replica: Replica,
    key: Signer,
    *,
    name: str,
    creator_name: str,
    home: bytes,
    purpose: str = "",
    parent: bytes | None = None,
) -> bytes:
    """Sign a genesis op; the new circle's id is the first 16 bytes of its op id."""
    ycid = new_ycid()
    genesis = Genesis(
        name=name,
        creator_name=creator_name,
        home=home,
        ycid=ycid,
        nonce=os.urandom(16),
        purpose=purpose,
        parent=parent,
    )

    async def build(seq: int, head: bytes | None, deps: list[bytes]) -> Op:
        return make_op(
            key,
            kind=OpKind.GENESIS,
            circle=bytes(16),
            seq=1,
            backlink=None,
            body=_encode_checked(genesis),
            ycid=ycid,
            ts=int(time.time()),
        )

    op = await _commit(replica, build, None, key.public)
    return op.circle


async def author_auth(replica: Replica, key: Signer, circle: bytes, body: AuthBody) -> Op:
    """Sign and ingest an auth op (membership, device, hosting)."""

    async def build(seq: int, head: bytes | None, deps: list[bytes]) -> Op:
        return make_op(
            key,
            kind=OpKind.AUTH,
            circle=circle,
            seq=seq,
            backlink=head,
            deps=deps,
            body=_encode_checked(body),
            ts=int(time.time()),
        )

    return await _commit(replica, build, circle, key.public)


async def add_member(
    replica: Replica,
    key: Signer,
    circle: bytes,
    *,
    member: bytes,
    name: str,
    level: Level,
    home: bytes | None,
    decision: bytes | None = None,
) -> Op:
    """Add a member (or change its level), cutting its keys at the heights we hold."""
    state = await replica.auth_state(circle)
    heights = await replica.heights(circle)
    known = state.keys.get(member)
    cuts = {
        author: heights.get(author, (0, b""))[0]
        for author, ks in state.keys.items()
        if ks.member == member
    }
    body = SetMember(
        member=member,
        level=level,
        name=name,
        cuts=cuts,
        home=home,
        ycid=None if known else new_ycid(),
        decision=decision,
    )
    return await author_auth(replica, key, circle, body)


async def author_record(replica: Replica, key: Signer, circle: bytes, body: bytes) -> Op:
    """Sign and ingest a record (a msgpack map with a ``t`` field)."""

    async def build(seq: int, head: bytes | None, deps: list[bytes]) -> Op:
        return make_op(
            key,
            kind=OpKind.RECORD,
            circle=circle,
            seq=seq,
            backlink=head,
            deps=deps,
            body=body,
            ts=int(time.time()),
        )

    return await _commit(replica, build, circle, key.public)


async def edit_doc(
    replica: Replica,
    key: Signer,
    circle: bytes,
    doc: bytes,
    change: Callable[[YDoc], None],
) -> Op:
    """Make ``change`` to a circle doc as the acting member; it becomes a signed ``y`` op.

    The edit runs inside the write transaction, on the doc as it is then, so concurrent
    edits by the same member (two processes, or two tasks) each continue its clock."""

    async def build(seq: int, head: bytes | None, deps: list[bytes]) -> Op:
        ycid = (await replica.auth_log(circle)).full().ycid_of(key.public)
        if ycid is None:
            raise AuthorizationError("you are not a member of this circle")
        current = (await replica.docs.get(circle, doc)).doc
        update = edit_as(current, ycid, change)
        return make_op(
            key,
            kind=OpKind.Y,
            circle=circle,
            seq=seq,
            backlink=head,
            deps=deps,
            body=update,
            doc=doc,
            ycid=ycid,
            ts=int(time.time()),
        )

    return await _commit(replica, build, circle, key.public)
