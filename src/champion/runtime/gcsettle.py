"""The garbage collector told that a long-lived process has finished starting.

A server or worker holds hundreds of thousands of objects made at start (the libraries'
modules and classes, a model's arrays and estimators) that will never be garbage. CPython's
collector still walks them in every older-generation collection, and a request that
allocates a few thousand containers (a 100-row batch parsed from JSON) set one off every few
requests: measured with py-spy, collections cost the server ~10 % of its time on batch
requests, spread over whatever line allocated next.

``settle()`` moves everything alive now into the permanent generation (``gc.freeze``: never
walked again, and in a fork server never written to, so forked workers keep sharing those
pages). Cycles made later are still collected, on CPython's usual schedule: a youngest
generation of 10,000 instead of 700 was measured too, and it made a canary's p99 latency
several times its control's on three replicas (tests/e2e/test_replicas.py), so the
thresholds are left alone.
"""

from __future__ import annotations

import gc


def settle() -> None:
    gc.freeze()
