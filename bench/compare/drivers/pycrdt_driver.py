"""pycrdt-websocket's side of the comparison (runs in the bench's own venv, not the project's).

One Yjs document (one room) per proposal, as pycrdt-websocket is designed: a Map with the
title, status, driver and text and a nested Map of the members' positions; plus an
``index`` room listing the rooms. Server: ``WebsocketServer`` behind its ``ASGIServer`` on
uvicorn, every room persisted by a ``SQLiteYStore`` (pycrdt-store) in one SQLite file.
Client: pycrdt's ``Provider`` over httpx-ws, one WebSocket per room, each room's updates
persisted to the client's own ``SQLiteYStore`` file.

Commands are the same as the other drivers (see ``circle_node_driver.py``).
"""

# A benchmark driver reads its few small files at startup, off any measured path.
# ruff: noqa: ASYNC240, ASYNC110

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import anyio
import httpx
import uvicorn
from httpx_ws import aconnect_ws
from pycrdt import Array, Doc, Map, Provider
from pycrdt.store import SQLiteYStore, YDocNotFound
from pycrdt.websocket import ASGIServer, WebsocketServer, YRoom, exception_logger
from pycrdt.websocket.websocket import HttpxWebsocket

CONCURRENCY = 64  # rooms synced at once by a client
INDEX = "index"
UNLIMITED = httpx.Limits(max_connections=None)  # one WebSocket per room, all open when live


def store_class(directory: Path) -> type[SQLiteYStore]:
    class Store(SQLiteYStore):
        db_path = str(directory / "ystore.db")
        checkpoint_interval = 100

    return Store


def room_name(index: int, circle: int) -> str:
    return f"c{circle}/p{index}"


async def load_doc(store: SQLiteYStore, doc: Doc) -> None:
    try:
        await store.apply_updates(doc)
    except YDocNotFound:
        pass


async def seed(workload_path: Path, directory: Path) -> dict[str, Any]:
    start = time.perf_counter()
    directory.mkdir(parents=True, exist_ok=True)
    data = json.loads(workload_path.read_text())
    store = store_class(directory)
    names = []
    for p in data["proposals"]:
        doc: Doc = Doc()
        proposal = doc.get("proposal", type=Map)
        with doc.transaction():
            for field in ("title", "status", "driver", "text"):
                proposal[field] = p[field]
            proposal["positions"] = Map(p["positions"])
        name = room_name(p["index"], p["circle"])
        names.append(name)
        async with store(path=name) as ystore:
            await ystore.encode_state_as_update(doc)
    index: Doc = Doc()
    rooms = index.get("rooms", type=Array)
    rooms.extend(names)
    async with store(path=INDEX) as ystore:
        await ystore.encode_state_as_update(index)
    return {"seconds": time.perf_counter() - start, "docs": len(names)}


class StoredServer(WebsocketServer):
    """Rooms load from and persist to the SQLite YStore (rooms stay open once loaded)."""

    def __init__(self, directory: Path) -> None:
        super().__init__(auto_clean_rooms=False, exception_handler=exception_logger)
        self.store = store_class(directory)

    async def get_room(self, name: str) -> YRoom:
        name = name.lstrip("/")  # the ASGI path of the WebSocket is the room name
        if name not in self.rooms:
            assert self._task_group is not None
            ystore = self.store(path=name)
            await self._task_group.start(ystore.start)
            doc: Doc = Doc()
            await load_doc(ystore, doc)
            if name not in self.rooms:
                self.rooms[name] = YRoom(
                    ready=True,
                    ystore=ystore,
                    ydoc=doc,
                    log=self.log,
                    exception_handler=exception_logger,
                )
        room = self.rooms[name]
        await self.start_room(room)
        return room


async def lines() -> Any:
    while line := await anyio.to_thread.run_sync(sys.stdin.readline):
        yield line.strip()


async def serve(directory: Path) -> None:
    data = {}
    names: list[str] = []
    server = StoredServer(directory)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(ASGIServer(server), log_level="warning", ws="websockets-sansio")
    web = uvicorn.Server(config)
    async with server, anyio.create_task_group() as tg:
        tg.start_soon(web.serve, [sock])
        while not web.started:
            await anyio.sleep(0.01)
        index = await server.get_room(INDEX)
        names = [str(n) for n in index.ydoc.get("rooms", type=Array)]
        by_index = {int(n.rsplit("/p", 1)[1]): n for n in names}
        print(f"READY {sock.getsockname()[1]}", flush=True)
        async for line in lines():
            if line.startswith("edit "):
                data = json.loads(Path(line[5:]).read_text())
                for i, text in data:
                    room = await server.get_room(by_index[int(i)])
                    room.ydoc.get("proposal", type=Map)["text"] = text
                print("OK", flush=True)
            elif line == "stop":
                break
        web.should_exit = True
        await anyio.sleep(0.2)  # let the ystore writers of the last edits finish
        tg.cancel_scope.cancel()


# One SQLite file: its per-room connections write one at a time (concurrent writers
# otherwise fail with "database is locked"); the first room opened creates the file.
DB_LOCK = anyio.Lock()


async def open_room(
    stack: AsyncExitStack, store: type[SQLiteYStore], name: str
) -> tuple[SQLiteYStore, Doc]:
    ystore = await stack.enter_async_context(store(path=name))
    doc: Doc = Doc()
    await load_doc(ystore, doc)
    return ystore, doc


async def sync_room(
    client: httpx.AsyncClient, port: int, store: type[SQLiteYStore], name: str
) -> Doc:
    """Load the room from the client's store, sync it with the server, persist the delta."""
    async with AsyncExitStack() as stack:
        ystore, doc = await open_room(stack, store, name)
        before = doc.get_state()
        async with aconnect_ws(f"http://127.0.0.1:{port}/{name}", client) as ws:
            async with Provider(doc, HttpxWebsocket(ws, name)) as provider:
                await provider.synced.wait()
        delta = doc.get_update(before)
        if delta != b"\x00\x00":
            async with DB_LOCK:
                await ystore.write(delta)
    return doc


async def sync(directory: Path, port: int) -> dict[str, Any]:
    start = time.perf_counter()
    directory.mkdir(parents=True, exist_ok=True)
    store = store_class(directory)
    limit = anyio.Semaphore(CONCURRENCY)
    async with httpx.AsyncClient(limits=UNLIMITED) as client:
        index = await sync_room(client, port, store, INDEX)
        names = [str(n) for n in index.get("rooms", type=Array)]

        async def one(name: str) -> None:
            async with limit:
                await sync_room(client, port, store, name)

        async with anyio.create_task_group() as tg:
            for name in names:
                tg.start_soon(one, name)
    return {"seconds": time.perf_counter() - start, "docs": len(names)}


async def live(directory: Path, port: int) -> None:
    """Keep every room open (one WebSocket each) and report when an expected text lands."""
    store = store_class(directory)
    changed = anyio.Event()
    docs: dict[int, Doc] = {}
    async with httpx.AsyncClient(limits=UNLIMITED) as client, anyio.create_task_group() as tg:
        index = await sync_room(client, port, store, INDEX)
        names = [str(n) for n in index.get("rooms", type=Array)]
        ready = anyio.Semaphore(0, max_value=len(names))
        limit = anyio.Semaphore(CONCURRENCY)  # rooms connecting at once
        stop = anyio.Event()

        async def write(ystore: SQLiteYStore, update: bytes) -> None:
            async with DB_LOCK:
                await ystore.write(update)

        async def hold(name: str) -> None:
            async with AsyncExitStack() as stack:
                ystore, doc = await open_room(stack, store, name)
                docs[int(name.rsplit("/p", 1)[1])] = doc
                await limit.acquire()
                async with (
                    aconnect_ws(f"http://127.0.0.1:{port}/{name}", client) as ws,
                    Provider(doc, HttpxWebsocket(ws, name)) as provider,
                ):
                    await provider.synced.wait()
                    limit.release()

                    def persist(event: Any) -> None:
                        nonlocal changed
                        tg.start_soon(write, ystore, event.update)
                        changed.set()

                    doc.observe(persist)
                    ready.release()
                    await stop.wait()

        for name in names:
            tg.start_soon(hold, name)
        for _ in names:
            await ready.acquire()
        print("SYNCED", flush=True)
        async for line in lines():
            if not line.startswith("expect "):
                break
            _, i, want = line.split(" ", 2)
            proposal = docs[int(i)].get("proposal", type=Map)
            while proposal.get("text") != want:
                changed = anyio.Event()
                await changed.wait()
            print("SEEN", flush=True)
        await anyio.sleep(0.2)  # the last edits' writes
        os._exit(0)  # closing 1,000 sockets one by one is not part of any figure


async def load(directory: Path) -> dict[str, Any]:
    start = time.perf_counter()
    store = store_class(directory)
    async with store(path=INDEX) as ystore:
        index: Doc = Doc()
        await load_doc(ystore, index)
    names = [str(n) for n in index.get("rooms", type=Array)]
    loaded = 0
    for name in names:
        async with store(path=name) as ystore:
            doc: Doc = Doc()
            await load_doc(ystore, doc)
            loaded += "text" in doc.get("proposal", type=Map)
    return {"seconds": time.perf_counter() - start, "docs": loaded}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("command", choices=["seed", "serve", "sync", "live", "load"])
    parser.add_argument("args", nargs="*")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    result = None
    if args.command == "seed":
        result = await seed(Path(args.args[0]), Path(args.args[1]))
    elif args.command == "serve":
        await serve(Path(args.args[0]))
    elif args.command == "sync":
        result = await sync(Path(args.args[0]), int(args.args[1]))
    elif args.command == "live":
        await live(Path(args.args[0]), int(args.args[1]))
    else:
        result = await load(Path(args.args[0]))
    if result is not None:
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    anyio.run(main)
