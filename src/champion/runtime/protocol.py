"""The wire between the server and a worker process.

A frame is a 4-byte big-endian length, then one kind byte, a 4-byte message id and an
orjson body. Both ends are ours; user objects never cross as pickles (the server never
unpickles what user code produced).

server -> worker: LOAD {"manifest", "artifacts"}, CALL {"calls": [[args, kwargs], ...],
"ids": null | [...]}, CALL_BY: a CALL whose body starts with an 8-byte big-endian double,
the Unix time after which its caller no longer waits (the worker skips it, answering
ERROR {"type": "Expired"})
worker -> server: READY {"pid"}, FAILED {"type", "message"}, RESULT <json value>,
ERROR {"type", "message", "index"}
"""

from __future__ import annotations

import struct

HEADER = struct.Struct(">IBI")  # length of (kind + id + body), kind, message id
LENGTH = struct.Struct(">I")

LOAD = 1
CALL = 2
CALL_BY = 3
READY = 10
FAILED = 11
RESULT = 12
ERROR = 13

MAX_FRAME = 1 << 30
DEADLINE = struct.Struct(">d")
EXPIRED = "Expired"


def frame(kind: int, msg_id: int, body: bytes) -> bytes:
    return HEADER.pack(len(body) + 5, kind, msg_id) + body
