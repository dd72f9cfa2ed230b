"""Ray Serve on its own, the peer row ``rayserve`` (argument: the port).

A local Ray instance (loopback, no dashboard), Serve's HTTP proxy on 127.0.0.1:PORT, and one
deployment (one replica) answering champion's request shapes at ``POST /predict`` with the
same ``predict`` function champion deploys (once per row for a batch), like the floor. So
``champion-ray`` / ``rayserve`` is champion's cost over Ray Serve's own HTTP path.
Stops (Serve and Ray shut down) on SIGTERM.
"""

from __future__ import annotations

import os
import signal
import sys
import threading


def main() -> None:
    port = int(sys.argv[1])
    import ray
    from ray import serve

    ray.init(include_dashboard=False, _node_ip_address="127.0.0.1", logging_level="WARNING",
             num_cpus=os.cpu_count() or 2)
    serve.start(http_options={"host": "127.0.0.1", "port": port})

    @serve.deployment(num_replicas=1, max_ongoing_requests=64,
                      logging_config={"enable_access_log": False, "log_level": "WARNING"})
    class Model:
        def __init__(self, pickle_path: str) -> None:
            import pickle

            from benchmarks import model as m

            with open(pickle_path, "rb") as f:
                m.MODEL = pickle.load(f)
            self.m = m

        async def __call__(self, request):  # type: ignore[no-untyped-def]
            import orjson
            from starlette.responses import Response

            data = orjson.loads(await request.body())["data"]
            if data and isinstance(data[0], list):  # batch: [[id, x], ...]
                out = [[i, self.m.predict(x)] for i, x in data]
            else:
                out = self.m.predict(data)
            return Response(orjson.dumps({"data": out}), media_type="application/json")

    serve.run(Model.bind(os.environ["BENCH_MODEL_PICKLE"]), name="bench",
              route_prefix="/predict")
    print(f"rayserve ready on 127.0.0.1:{port}", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    try:
        serve.shutdown()
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main()
