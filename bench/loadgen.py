"""Open-loop HTTP/1.1 load over loopback, cheap enough not to compete with the server it measures.

A request is due every 1/rate s whether or not earlier ones have answered (open loop, so a slow server
cannot slow the schedule down and hide its own queueing). Requests are pre-built byte strings (tokens
minted beforehand) written to keep-alive connections with asyncio streams: a few tens of microseconds of
client CPU per request, where an HTTP client library in threads cost about a millisecond and, on two
cores, took that from the server.

Latency is measured from when a request was *due*, not from when it was sent: if the client falls behind
its schedule, that delay counts against the figure rather than disappearing (coordinated omission).
"""

from __future__ import annotations

import asyncio
import gc
import statistics
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

# Connections opened before the clock starts; more are opened if all are busy when a request is due.
_WARM_CONNECTIONS = 16


def build_request(
    method: str, host: str, port: int, path: str, headers: dict[str, str], body: bytes = b""
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}", *(f"{k}: {v}" for k, v in headers.items())]
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


@dataclass
class LoadResult:
    latencies_ms: list[float] = field(default_factory=list)  # due -> whole answer read, accepted answers
    due_s: list[float] = field(default_factory=list)  # when each of those was due, from the first
    lag_ms: list[float] = field(default_factory=list)  # due -> request started
    statuses: Counter[int] = field(default_factory=Counter)
    rejected: int = 0  # answers the check refused (wrong status or body)
    connections: int = 0

    def figures(self) -> dict[str, Any]:
        return {
            "requests": sum(self.statuses.values()),
            "failures": self.rejected,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "p50_ms": round(statistics.median(self.latencies_ms), 2),
            "p90_ms": round(percentile(self.latencies_ms, 90), 2),
            "p99_ms": round(percentile(self.latencies_ms, 99), 2),
            "max_ms": round(max(self.latencies_ms), 2),
            "client_lag_p99_ms": round(percentile(self.lag_ms, 99), 2),
            "connections": self.connections,
            # When the slowest answers were due: one cluster is one stall (a pause every waiting request
            # shares), spread-out ones are queueing.
            "slowest_at_s_ms": [
                [round(due, 2), round(ms, 1)]
                for ms, due in sorted(zip(self.latencies_ms, self.due_s, strict=True), reverse=True)[:8]
            ],
        }


def percentile(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """Status, body and whether the server keeps the connection open (Content-Length framing only)."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length, keep_alive = 0, True
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection" and value.strip().lower() == b"close":
            keep_alive = False
        elif name == b"transfer-encoding":
            raise RuntimeError("chunked answers are not supported by this load generator")
    return status, await reader.readexactly(length), keep_alive


Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def _fire(
    host: str,
    port: int,
    requests: Sequence[bytes],
    rate: float,
    accept: Callable[[int, bytes], bool],
) -> LoadResult:
    result = LoadResult()
    idle: list[Connection] = []
    loop = asyncio.get_running_loop()

    async def connect() -> Connection:
        result.connections += 1
        return await asyncio.open_connection(host, port)

    async def exchange(request: bytes) -> tuple[Connection, int, bytes, bool]:
        reused = bool(idle)
        connection = idle.pop() if reused else await connect()
        connection[1].write(request)
        try:
            return (connection, *await _read_response(connection[0]))
        except (asyncio.IncompleteReadError, ConnectionResetError):
            if not reused:
                raise
            # The server closed an idle keep-alive connection before reading the request (as HTTP
            # clients do, send it again on a new one: nothing of it was processed).
            connection[1].close()
            connection = await connect()
            connection[1].write(request)
            return (connection, *await _read_response(connection[0]))

    async def one(request: bytes, due: float) -> None:
        result.lag_ms.append((loop.time() - due) * 1000)
        (reader, writer), status, body, keep_alive = await exchange(request)
        result.statuses[status] += 1
        if accept(status, body):
            result.latencies_ms.append((loop.time() - due) * 1000)
            result.due_s.append(due - begin)
        else:
            result.rejected += 1
        if keep_alive:
            idle.append((reader, writer))
        else:
            writer.close()

    idle.extend(await asyncio.gather(*(connect() for _ in range(_WARM_CONNECTIONS))))
    tasks = []
    begin = loop.time() + 0.05
    for i, request in enumerate(requests):
        due = begin + i / rate
        pause = due - loop.time()
        if pause > 0:
            await asyncio.sleep(pause)
        tasks.append(asyncio.create_task(one(request, due)))
    await asyncio.gather(*tasks)
    for _, writer in idle:
        writer.close()
    return result


def fire(
    host: str,
    port: int,
    requests: Sequence[bytes],
    rate: float,
    accept: Callable[[int, bytes], bool] = lambda status, _body: status == 200,
) -> LoadResult:
    """Send `requests` in order, one every 1/rate s; `accept` decides which answers count as served.

    The client's own cyclic garbage collector is off for the run: the benchmark process holds the whole
    generated population (hundreds of thousands of dicts), and one full collection of it pauses this
    process for tens of milliseconds, which would count against every answer then in flight as if the
    server had paused."""
    gc.collect()
    gc.disable()
    try:
        return asyncio.run(_fire(host, port, requests, rate, accept))
    finally:
        gc.enable()
