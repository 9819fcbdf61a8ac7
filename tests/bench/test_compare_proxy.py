"""The comparison's counting proxy: exact bytes each way and round trips, on loopback."""

from __future__ import annotations

import asyncio

from proxy import DOWN, UP, Conn, CountingProxy


async def _echo_server() -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data * 2)  # answers with twice what it got
            await writer.drain()
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


async def _exchange(port: int, messages: list[bytes]) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    got = b""
    for message in messages:
        writer.write(message)
        await writer.drain()
        got += await reader.readexactly(2 * len(message))
    writer.close()
    await writer.wait_closed()
    return got


async def test_counts_bytes_each_way_and_round_trips() -> None:
    server = await _echo_server()
    port = server.sockets[0].getsockname()[1]
    async with server, CountingProxy(port) as proxy:
        messages = [b"a" * 10, b"b" * 1000, b"c" * 70_000]
        got = await _exchange(proxy.port, messages)
        assert got == b"".join(m * 2 for m in messages)  # forwarded unchanged
        await asyncio.sleep(0.05)
        counts = proxy.counts()
    assert counts.connections == 1
    assert counts.bytes_up == 71_010
    assert counts.bytes_down == 142_020
    assert counts.round_trips == 3  # each request waited for its answer
    assert counts.max_round_trips == 3


async def test_sums_connections_and_reset_starts_a_new_window() -> None:
    server = await _echo_server()
    port = server.sockets[0].getsockname()[1]
    async with server, CountingProxy(port) as proxy:
        await asyncio.gather(*(_exchange(proxy.port, [b"x" * 100]) for _ in range(4)))
        await asyncio.sleep(0.05)
        counts = proxy.counts()
        assert (counts.connections, counts.bytes_up, counts.bytes_down) == (4, 400, 800)
        assert (counts.round_trips, counts.max_round_trips) == (4, 1)
        proxy.reset()
        await _exchange(proxy.port, [b"y" * 7, b"z" * 3])
        await asyncio.sleep(0.05)
        counts = proxy.counts()
    assert (counts.connections, counts.bytes_up, counts.bytes_down) == (1, 10, 20)
    assert counts.round_trips == 2


async def test_reset_keeps_counting_an_open_connection() -> None:
    """A live session's connection, opened before the window, counts from the reset on."""
    server = await _echo_server()
    port = server.sockets[0].getsockname()[1]
    async with server, CountingProxy(port) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(b"before")
        await reader.readexactly(12)
        proxy.reset()
        writer.write(b"after!!")
        await reader.readexactly(14)
        await asyncio.sleep(0.05)
        counts = proxy.counts()
        writer.close()
        await writer.wait_closed()
    assert (counts.connections, counts.bytes_up, counts.bytes_down) == (1, 7, 14)
    assert counts.round_trips == 1


def test_round_trip_rule() -> None:
    """Turns from client->server to server->client; a server that speaks first adds none."""
    conn = Conn()
    for direction, size in [(DOWN, 5), (UP, 3), (UP, 4), (DOWN, 1), (DOWN, 2), (UP, 1), (DOWN, 0)]:
        conn.record(direction, size)
    assert (conn.bytes_up, conn.bytes_down, conn.round_trips) == (8, 8, 1)
    conn.record(DOWN, 9)
    assert conn.round_trips == 2


async def test_unreachable_target_closes_the_client_cleanly() -> None:
    sock_server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = sock_server.sockets[0].getsockname()[1]
    sock_server.close()
    await sock_server.wait_closed()
    async with CountingProxy(port) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        assert await reader.read() == b""  # the proxy hangs up instead of hanging
        writer.close()
        counts = proxy.counts()
    assert (counts.connections, counts.bytes_up, counts.bytes_down) == (1, 0, 0)
