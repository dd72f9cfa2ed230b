"""A small keep-alive HTTP/1.1 client for tests that send tens of thousands of requests.

httpx costs about a millisecond of client CPU per request, which would dominate such tests
on two cores; this sends pre-built requests over a few connections and parses only the
status line, Content-Length and the JSON body.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import orjson


def _request(path: str, body: bytes, headers: dict[str, str]) -> bytes:
    head = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json",
            f"Content-Length: {len(body)}"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionResetError("the server closed the connection")
    status = int(status_line.split(b" ", 2)[1])
    length = 0
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return status, await reader.readexactly(length)


def post_many(port: int, path: str, bodies: Sequence[Any],
              headers: Sequence[dict[str, str]], *, connections: int = 8
              ) -> list[tuple[int, Any]]:
    """POST each body (with its headers) and return (status, parsed JSON) in order."""
    requests = [_request(path, orjson.dumps(b), h) for b, h in zip(bodies, headers, strict=True)]
    results: list[tuple[int, Any]] = [(0, None)] * len(requests)
    next_index = 0

    async def worker() -> None:
        nonlocal next_index
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while next_index < len(requests):
                i = next_index
                next_index += 1
                writer.write(requests[i])
                status, body = await _read_response(reader)
                results[i] = (status, orjson.loads(body) if body else None)
        finally:
            writer.close()

    async def run() -> None:
        await asyncio.gather(*(worker() for _ in range(connections)))

    asyncio.run(run())
    return results
