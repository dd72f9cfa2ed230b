"""A local Ray instance for the tests, owned by this process: ``python -m tests.e2e.ray_head``.

Started once per test session (tests/conftest.py, ``ray_cluster``): ``ray.init()`` on loopback,
sized for a 2-core machine (2 CPUs, a 150 MB object store, no dashboard). Prints the address
for ``champion serve --ray-address``, then answers one command per line on stdin (``apps``:
the Serve applications; ``calls APP``: the calls one replica of APP has taken; as JSON)
until stdin closes; then Ray is shut down. Ray's own
processes share this process's fate, so nothing outlives the session.
"""

from __future__ import annotations

import json
import sys


def main() -> None:
    import ray

    ray.init(num_cpus=2, object_store_memory=150 * 1024 * 1024, include_dashboard=False,
             _node_ip_address="127.0.0.1", logging_level="ERROR", log_to_driver=False,
             namespace="champion-tests")
    print(json.dumps({"address": ray.get_runtime_context().gcs_address}), flush=True)
    try:
        for line in sys.stdin:
            if line.strip() == "apps":
                from ray import serve

                try:
                    apps = sorted(serve.status().applications)
                except Exception as exc:  # Serve not started yet
                    apps = [f"error: {exc}"] if "not" not in str(exc).lower() else []
                print(json.dumps({"apps": apps}), flush=True)
            elif line.startswith("calls "):  # what one replica of an application has taken
                from ray import serve

                handle = serve.get_app_handle(line.split(" ", 1)[1].strip())
                try:
                    info = handle.info.remote().result(timeout_s=10)
                    print(json.dumps({"calls": info["calls"]}), flush=True)
                except Exception as exc:  # the test reads the reason
                    print(json.dumps({"error": type(exc).__name__}), flush=True)
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main()
