"""Request ids: time-ordered, unguessable, signed by the server, and carrying attribution.

``<12 hex ms><12 hex random>[.v<version, hex>][.e<experiment hex>][.a<arm>]-<10 hex HMAC>``,
e.g. ``01a232aec912aa8f1bb728a0.v3.e0f2e3d4c.a2-6bccfa6a68``.

The first 24 characters are the request's *key*: its time and randomness, fixed before the
request is routed (routing policies hash it). The tagged fields say what served the
request, so that feedback can be credited from the id alone, without the request log
(whose row a hard kill can lose): ``v`` the endpoint's version that answered (hex),
``e`` the experiment (the hex part of ``exp_…``), ``a`` the index of the arm in the
experiment's variants (decimal). The HMAC covers everything before the dash, so none of it
can be forged, and the feedback API rejects ids this server never issued without a database
look-up (and so accepts feedback that arrives before its request's log entry is written).

Ids of the first format (``<key>-<HMAC>``, no fields) are the same format with no field, and
stay valid. An id is at most 63 characters (the store's columns hold 64).
"""

from __future__ import annotations

import hmac
import os
import re
import time
from dataclasses import dataclass

KEY_LENGTH = 24
MAX_LENGTH = 64
_EXPERIMENT = re.compile(r"^exp_([0-9a-f]{1,12})$")
_FIELD = re.compile(r"^([vea])([0-9a-f]{1,12})$")
_KEY = re.compile(r"^[0-9a-f]{24}$")


@dataclass(frozen=True)
class Attribution:
    """What a request id says about its request (None: not carried)."""

    served_at: float
    version: int | None = None
    experiment: str | None = None
    arm: int | None = None


def _suffix(version: int | None, experiment: str | None, arm: int | None) -> str:
    """What an id carries after its key: ``.v<version>.e<experiment>.a<arm>``, each part
    only when it can be carried."""
    out = ""
    if version is not None and 0 <= version < 16 ** 12:
        out += f".v{version:x}"
    match = _EXPERIMENT.match(experiment or "")
    if match is not None:
        out += f".e{match.group(1)}"
        if arm is not None and 0 <= arm < 1000:
            out += f".a{arm}"
    return out


class RequestIds:
    def __init__(self, secret: str) -> None:
        self._key = bytes.fromhex(secret) if len(secret) % 2 == 0 else secret.encode()
        self._suffixes: dict[tuple[int | None, str | None, int | None], str] = {}

    def _sign(self, base: str) -> str:
        # hmac.digest: the one-shot C path (no HMAC object per request)
        return hmac.digest(self._key, base.encode(), "sha256").hex()[:10]

    @staticmethod
    def key() -> str:
        """A new request's key: 12 hex digits of milliseconds, 12 of randomness."""
        return f"{int(time.time() * 1000):012x}{os.urandom(6).hex()}"

    def issue(self, key: str, *, version: int | None = None, experiment: str | None = None,
              arm: int | None = None) -> str:
        """The signed id of the request ``key``, carrying what served it.

        An experiment id not of champion's ``exp_<hex>`` form, or an arm without an
        experiment, is left out (feedback is then attributed through the request log).
        """
        what = (version, experiment, arm)
        suffix = self._suffixes.get(what)
        if suffix is None:
            suffix = _suffix(version, experiment, arm)
            if len(self._suffixes) >= 4096:  # experiments come and go: a bounded memo
                self._suffixes.clear()
            self._suffixes[what] = suffix
        base = key + suffix
        return f"{base}-{self._sign(base)}"

    def new(self) -> str:
        """A request id that carries nothing but its time (the first format)."""
        return self.issue(self.key())

    def valid(self, request_id: str) -> bool:
        return self.attribution(request_id) is not None

    def attribution(self, request_id: str) -> Attribution | None:
        """What the id carries, or None when this server did not issue it."""
        if (not isinstance(request_id, str) or len(request_id) > MAX_LENGTH
                or not request_id.isascii()):  # compare_digest takes ASCII strings only
            return None
        base, sep, mac = request_id.rpartition("-")
        if not sep or len(mac) != 10 or len(base) < KEY_LENGTH:
            return None
        if not hmac.compare_digest(mac, self._sign(base)):
            return None
        key, *fields = base.split(".")
        if not _KEY.match(key):
            return None
        found: dict[str, str] = {}
        for item in fields:
            m = _FIELD.match(item)
            if m is None or m.group(1) in found:
                return None
            found[m.group(1)] = m.group(2)
        arm = found.get("a")
        if arm is not None and not arm.isdigit():
            return None
        return Attribution(
            served_at=int(key[:12], 16) / 1000.0,
            version=int(found["v"], 16) if "v" in found else None,
            experiment=f"exp_{found['e']}" if "e" in found else None,
            arm=int(arm) if arm is not None else None)

    @staticmethod
    def key_of(request_id: str) -> str:
        """The key (time and randomness) of an id: what routing policies hashed."""
        return request_id[:KEY_LENGTH]
