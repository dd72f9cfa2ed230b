"""Run by ``bentoml serve bentoml_service:Model`` in the BentoML virtualenv.

One API, ``POST /predict`` with champion's body shapes (``{"data": x}`` or
``{"data": [[id, x], ...]}``); a batch is scored with one vectorised ``predict_proba`` call,
the idiomatic BentoML way. The model is the suite's pickle (path in BENCH_MODEL_PICKLE).
"""

from __future__ import annotations

import os
import pickle
from typing import Any

import bentoml
import numpy as np


@bentoml.service(
    workers=int(os.environ.get("BENCH_WORKERS", "1")),
    logging={"access": {"enabled": False}},  # no per-request log line, like the others
)
class Model:
    def __init__(self) -> None:
        with open(os.environ["BENCH_MODEL_PICKLE"], "rb") as f:
            self.model = pickle.load(f)

    @bentoml.api
    def predict(self, data: list[Any]) -> Any:
        if data and isinstance(data[0], list):
            ids = [row[0] for row in data]
            p = self.model.predict_proba(np.asarray([row[1] for row in data], dtype=float))[:, 1]
            return [[i, float(v)] for i, v in zip(ids, p, strict=True)]
        return float(self.model.predict_proba(np.asarray(data, dtype=float).reshape(1, -1))[0, 1])
