"""The garbage collector told that a long-lived process has finished starting.

A server or worker holds hundreds of thousands of objects made at start (the libraries'
modules and classes, a model's arrays and estimators) that will never be garbage. CPython's
collector still walks them in every older-generation collection, and a request that
allocates a few thousand containers (a 100-row batch parsed from JSON) set one off every few
requests: measured with py-spy, collections cost the server ~10 % of its time on batch
requests, spread over whatever line allocated next.

``settle()`` moves everything alive now into the permanent generation (``gc.freeze``: never
walked again, and in a fork server never written to, so forked workers keep sharing those
pages) and lets the youngest generation grow to 10,000 objects before it is collected.
Cycles made later are still collected; only the start-up heap is left alone.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000


def settle() -> None:
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, older, oldest)
