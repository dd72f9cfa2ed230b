"""The model every system serves: a seeded scikit-learn LogisticRegression on 20 features.

``predict`` is the function champion deploys and the floor calls in-process: one row (a list of
20 floats) in, the probability of class 1 out. MLflow and BentoML serve the same pickled model
with their own, vectorised, batch path (see the caveats in docs/benchmarks.md).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

N_FEATURES = 20
N_SAMPLES = 5000
SEED = 20240607
BATCH_ROWS = 100

# Set by train() in the orchestrator, or by load() in a server process.
MODEL: Any = None


def train(seed: int = SEED) -> Any:
    """Fit the model on generated data (deterministic for a seed)."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N_SAMPLES, N_FEATURES))
    w = rng.normal(size=N_FEATURES)
    y = (x @ w + rng.normal(scale=0.5, size=N_SAMPLES) > 0).astype(int)
    model = LogisticRegression(max_iter=1000).fit(x, y)
    return model


def predict(x):  # type: ignore[no-untyped-def]
    """Probability of class 1 for one row of 20 features."""
    return float(MODEL.predict_proba(np.asarray(x, dtype=float).reshape(1, -1))[0, 1])


def predict_many(xs):  # type: ignore[no-untyped-def]
    """The vectorised form (for micro-batching): a list of rows in, their probabilities out."""
    return MODEL.predict_proba(np.asarray(xs, dtype=float))[:, 1].tolist()


# The ranker: 20 candidate items around the request's row (item 0 is the row itself), scored
# with the model in one vectorised call. rank_reversed ranks the same scores worst first, so
# that interleaving the two really merges two different lists.
N_CANDIDATES = 20
OFFSETS = np.vstack([np.zeros(N_FEATURES),
                     np.random.default_rng(SEED + 2).normal(scale=0.5,
                                                            size=(N_CANDIDATES - 1, N_FEATURES))])


def rank(x):  # type: ignore[no-untyped-def]
    """The candidates best first: [{"id": "i3", "score": 0.97}, ...]."""
    scores = MODEL.predict_proba(np.asarray(x, dtype=float).reshape(1, -1) + OFFSETS)[:, 1]
    return [{"id": f"i{j}", "score": float(scores[j])} for j in np.argsort(-scores)]


def rank_reversed(x):  # type: ignore[no-untyped-def]
    """The same candidates and scores, worst first."""
    scores = MODEL.predict_proba(np.asarray(x, dtype=float).reshape(1, -1) + OFFSETS)[:, 1]
    return [{"id": f"i{j}", "score": float(scores[j])} for j in np.argsort(scores)]


def rank_io(x):  # type: ignore[no-untyped-def]
    """rank() after 5 ms of waiting, like a ranker that queries an index or a feature store."""
    import time

    time.sleep(0.005)
    scores = MODEL.predict_proba(np.asarray(x, dtype=float).reshape(1, -1) + OFFSETS)[:, 1]
    return [{"id": f"i{j}", "score": float(scores[j])} for j in np.argsort(-scores)]


def rank_io_reversed(x):  # type: ignore[no-untyped-def]
    """rank_reversed() after 5 ms of waiting."""
    import time

    time.sleep(0.005)
    scores = MODEL.predict_proba(np.asarray(x, dtype=float).reshape(1, -1) + OFFSETS)[:, 1]
    return [{"id": f"i{j}", "score": float(scores[j])} for j in np.argsort(scores)]


def rows(n: int, seed: int = SEED + 1) -> list[list[float]]:
    """N request rows, rounded so the JSON stays short and identical everywhere."""
    rng = np.random.default_rng(seed)
    return [[round(float(v), 4) for v in row] for row in rng.normal(size=(n, N_FEATURES))]


def bodies() -> dict[str, dict[str, Any]]:
    """The request bodies in champion's shape: {"data": x} and {"data": [[id, x], ...]}."""
    batch = rows(BATCH_ROWS)
    return {
        "single": {"data": batch[0]},
        "batch": {"data": [[i, r] for i, r in enumerate(batch)]},
    }


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()
