"""``champion demo``: a server on a temporary data dir, two model versions, some traffic."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from rich.console import Console

console = Console(stderr=True, highlight=False)


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("champion demo: the server exited while starting")
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise SystemExit("champion demo: the server did not become ready")


def _sign_in_link(url: str, token: str) -> str:
    """A one-time link that signs a browser in to the dashboard (the token is not in it)."""
    try:
        r = httpx.post(url + "/api/ui/sign-in-link", headers={"authorization": f"Bearer {token}"},
                       timeout=10)
        r.raise_for_status()
        return url + str(r.json()["path"])
    except (httpx.HTTPError, KeyError, ValueError):
        return f"{url}/ui/login (sign in with the admin token)"


def run_demo(host: str = "127.0.0.1", port: int = 8000, n_requests: int = 200,
             serve_forever: bool = True) -> None:
    import numpy as np
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression

    from champion.client import Client

    # SIGTERM ends the demo like Ctrl-C does: through the clean-up below, server included.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    if not _port_free(host, port):
        raise SystemExit(f"champion demo: port {port} is in use; try --port {port + 1}")
    data_dir = Path(tempfile.mkdtemp(prefix="champion-demo-"))
    token = "demo-" + secrets.token_hex(8)
    url = f"http://{host}:{port}"
    env = {**os.environ, "CHAMPION_TOKEN": token, "CHAMPION_HOME": str(data_dir)}
    env.pop("CHAMPION_DATABASE_URL", None)
    console.print(f"[bold]champion demo[/]: starting a server on {url} (data in {data_dir})")
    proc = subprocess.Popen(
        [sys.executable, "-m", "champion", "serve", "--host", host, "--port", str(port),
         "--log-level", "warning"],
        env=env,
    )
    try:
        _wait_ready(url, proc)
        rng = np.random.default_rng(7)
        X = rng.normal(size=(2000, 5))
        logits = 1.5 * X[:, 0] - X[:, 1] + 0.5 * X[:, 2] * X[:, 3]
        y = (logits + rng.normal(scale=0.5, size=2000) > 0).astype(int)

        v1_model = LogisticRegression().fit(X, y)
        v2_model = GradientBoostingClassifier(random_state=0).fit(X, y)
        feature_names = ["tenure", "support_calls", "usage", "discount", "age"]

        def churn(customer: dict) -> dict:
            row = [[float(customer.get(k, 0.0)) for k in feature_names]]
            p = float(model.predict_proba(row)[0, 1])
            return {"churn_probability": round(p, 4), "will_churn": p > 0.5}

        client = Client(url, token)
        model = v1_model
        t0 = time.perf_counter()
        v1 = client.deploy(churn, "churn")
        console.print(f"deployed [bold]{v1}[/] (logistic regression) in "
                      f"{time.perf_counter() - t0:.1f} s: now production")
        model = v2_model
        v2 = client.deploy(churn, "churn")
        console.print(f"deployed [bold]{v2}[/] (gradient boosting): reachable as "
                      f"/v1/churn/{v2.version} and /v1/churn/latest")

        sent = 0
        agree = 0
        t0 = time.perf_counter()
        for i in range(n_requests):
            customer = dict(zip(feature_names, map(float, rng.normal(size=5)), strict=True))
            a = client.predict("churn", customer, unit=f"user-{i}")
            b = client.predict("churn", customer, version=2)
            agree += a["will_churn"] == b["will_churn"]
            sent += 2
        elapsed = time.perf_counter() - t0
        console.print(f"sent {sent} requests in {elapsed:.1f} s; versions 1 and 2 agreed on "
                      f"{agree}/{n_requests} customers")
        client.close()
        sign_in = _sign_in_link(url, token)

        example = '{"data": {"tenure": 1.2, "support_calls": -0.3, "usage": 0.5}}'
        print(f"""
Dashboard: {url}/ui/
  sign this browser in once (the link works once, for 10 minutes):
  {sign_in}

Try it, in another shell (admin token: {token}):

  export CHAMPION_URL={url} CHAMPION_TOKEN={token}

  curl -s -X POST $CHAMPION_URL/v1/churn -H 'Content-Type: application/json' \\
       -d '{example}'
  champion deployments
  champion versions churn
  champion logs churn
  champion metrics churn                # requests, errors, latency per version

Report an outcome for a request (its id is in every answer), then test version 2 on live
traffic:

  champion predict churn -d '{{"tenure": 2.0}}' --unit user-1 --full
  champion feedback churn --request-id REQUEST_ID --reward 1
  champion experiment create churn --variant control=churn:1 --variant candidate=churn:2 \\
      --primary reward
  champion experiment report EXPERIMENT_ID
  champion experiment create churn --strategy canary --variant stable=churn:1 \\
      --variant canary=churn:2 --steps 5,25,50,100    # after stopping the A/B test
  champion promote churn 2              # or by hand

  python -c "import champion; print(champion.predict('churn', {{'tenure': 2.0}}))"
""", flush=True)
        if not serve_forever:
            return
        console.print("serving until Ctrl-C ...")
        proc.wait()
    except KeyboardInterrupt:
        pass
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(data_dir, ignore_errors=True)
