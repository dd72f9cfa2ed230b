"""Request ids: time-ordered, unguessable, and signed by the server.

``<12 hex ms since epoch><12 hex random>-<10 hex HMAC>``. The signature lets the feedback
API reject ids this server never issued without a database look-up, and so accept feedback
that arrives before its request's log entry is written.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time


class RequestIds:
    def __init__(self, secret: str) -> None:
        self._key = bytes.fromhex(secret) if len(secret) % 2 == 0 else secret.encode()

    def _sign(self, base: str) -> str:
        return hmac.new(self._key, base.encode(), hashlib.sha256).hexdigest()[:10]

    def new(self) -> str:
        base = f"{int(time.time() * 1000):012x}{os.urandom(6).hex()}"
        return f"{base}-{self._sign(base)}"

    def valid(self, request_id: str) -> bool:
        base, sep, mac = request_id.partition("-")
        if not sep or len(base) != 24 or len(mac) != 10:
            return False
        return hmac.compare_digest(mac, self._sign(base))
