"""The floor: a minimal Starlette app calling the model in-process.

Run by the suite as ``uvicorn benchmarks.servers.floor_app:app --loop uvloop --http httptools``
with 1 or 2 workers. It answers champion's request shapes at ``POST /predict`` and calls the
same ``predict`` function champion deploys (once per row for a batch), so a champion/floor
ratio is the cost of champion itself. Nothing else: no logging, no validation, no ids.
With BENCH_FLOOR_BATCH=vectorised a batch is one ``predict_proba`` call instead (``floor-vec``).
"""

from __future__ import annotations

import os
import pickle

import numpy as np
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from benchmarks import model as m

with open(os.environ["BENCH_MODEL_PICKLE"], "rb") as f:
    m.MODEL = pickle.load(f)
VECTORISED = os.environ.get("BENCH_FLOOR_BATCH") == "vectorised"


async def predict(request: Request) -> Response:
    data = orjson.loads(await request.body())["data"]
    if data and isinstance(data[0], list):  # batch: [[id, x], ...]
        if VECTORISED:
            p = m.MODEL.predict_proba(np.asarray([x for _, x in data], dtype=float))[:, 1]
            out = [[row[0], float(v)] for row, v in zip(data, p, strict=True)]
        else:
            out = [[i, m.predict(x)] for i, x in data]
    else:
        out = m.predict(data)
    return Response(orjson.dumps({"data": out}), media_type="application/json")


app = Starlette(routes=[Route("/predict", predict, methods=["POST"])])
