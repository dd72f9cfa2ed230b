"""Screenshots of every dashboard page, from a seeded demo, into docs/img/.

    python scripts/screenshots.py [--out docs/img] [--scheme light|dark]

Starts ``champion serve`` on a temporary data directory, deploys two versions of a churn
model, adds an hour of past traffic to the request log (so the charts have a history), starts
an A/B experiment and sends it live traffic with feedback, signs a browser in (Playwright
driving Debian's ``chromium``) and saves one PNG per page. The last picture is an experiment
whose report carries a presentation section (``view``): the example of the contract in
tests/e2e/fixtures/, served to the page in place of the real report.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "e2e" / "fixtures"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(data: Path, token: str, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "CHAMPION_TOKEN": token}
    env.pop("CHAMPION_DATABASE_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "champion.cli", "serve", "--port", str(port), "--data-dir",
         str(data), "--log-level", "warning"], env=env)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    proc.kill()
    raise SystemExit("the server did not start")


def past_traffic(data: Path, name: str, now: float) -> None:
    """An hour of requests to versions 1 and 2, written to the log as the server would."""
    from champion.store import Store

    store = Store.open(data)
    rng = random.Random(7)
    rows = []
    for minute in range(60, 0, -1):
        start = now - minute * 60
        for version, n, slow, fail in ((1, 40 + rng.randint(-8, 8), 4.0, 0.01),
                                       (2, 0 if minute > 35 else 12 + rng.randint(-3, 3),
                                        2.5, 0.03 if minute > 20 else 0.004)):
            for i in range(n):
                status = 500 if rng.random() < fail else 200
                rows.append({
                    "request_id": f"seed{version}{minute:03d}{i:04d}{secrets.token_hex(4)}",
                    "ts": start + rng.random() * 60, "deployment": name, "version": version,
                    "target": "production" if version == 1 else "2", "status": status,
                    "latency_ms": rng.lognormvariate(0, 0.5) * slow, "batch_size": 1,
                    "unit": f"past-{i}", "experiment": None, "arm": None,
                    "variant": f"{name}:{version}", "input": '{"data":{"tenure":1.0}}',
                    "output": None if status == 500 else '{"churn_probability":0.2}',
                    "error": "model_error: ValueError: bad input" if status == 500 else None,
                })
    store.insert_requests(rows)
    store.close()


def seed(url: str, token: str, data: Path) -> dict[str, str]:
    from champion.client import Client

    client = Client(url, token)
    threshold = 0.5

    def churn(customer: dict) -> dict:
        p = min(1.0, max(0.0, 0.3 + 0.1 * float(customer.get("support_calls", 0))
                         - 0.05 * float(customer.get("tenure", 0))))
        return {"churn_probability": round(p, 4), "will_churn": p > threshold}

    client.deploy(churn, "churn")
    threshold = 0.4

    def churn(customer: dict) -> dict:
        calls = float(customer.get("support_calls", 0))
        p = min(1.0, max(0.0, 0.25 + 0.12 * calls - 0.05 * float(customer.get("tenure", 0))))
        return {"churn_probability": round(p, 4), "will_churn": p > threshold}

    client.deploy(churn, "churn")

    def ranker(items: list) -> list:
        return sorted(items)

    client.deploy(ranker, "ranker")
    client.set_alias("churn", "staging", 2)
    past_traffic(data, "churn", time.time())
    e = client.create_experiment("churn", "ab", {"control": "churn:1", "candidate": "churn:2"},
                                 name="threshold 0.4", metrics={"primary": "reward"})
    rng = random.Random(11)
    feedback = []
    with httpx.Client(base_url=url, timeout=30) as http:
        for i in range(600):
            r = http.post("/v1/churn", json={"data": {"tenure": rng.random() * 5,
                                                      "support_calls": rng.randint(0, 4)}},
                          headers={"x-champion-unit": f"user-{i}"}).json()
            rate = 0.22 if r["variant"] == "control" else 0.3
            if rng.random() < rate:
                feedback.append({"request_id": r["request_id"], "reward": 1})
        for _ in range(40):
            http.post("/v1/ranker", json={"data": [[3, 1, 2]]})
    client.feedback("churn", items=feedback)
    old = client.create_experiment("churn", "shadow", {"control": "churn:1", "shadow": "churn:2"},
                                   name="shadow check", start=False)
    client.stop_experiment(old["id"], reason="replaced by the A/B test")
    client.close()
    time.sleep(1.5)  # the request log's group commit
    return {"experiment": e["id"]}


def shoot(url: str, token: str, out: Path, seeded: dict[str, str], scheme: str) -> list[Path]:
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    if chromium is None:
        raise SystemExit("chromium is not installed (apt-get install chromium)")
    suffix = "" if scheme == "light" else "-dark"
    saved: list[Path] = []
    report = json.loads((FIXTURES / "view_report.json").read_text())
    timeline = json.loads((FIXTURES / "view_timeline.json").read_text())
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1200, "height": 760},
                                      color_scheme=scheme)
        page = context.new_page()

        def save(name: str, *, full: bool = False) -> None:
            page.wait_for_timeout(1200)  # the figures' first fetch and draw
            path = out / f"dashboard-{name}{suffix}.png"
            page.screenshot(path=str(path), full_page=full)
            saved.append(path)

        page.goto(url + "/ui/login")
        save("sign-in")
        page.fill("#token", token)
        page.click("form button[type=submit]")
        page.wait_for_url("**/ui/")
        page.goto(url + "/ui/")
        save("deployments")
        page.goto(url + "/ui/deployments/churn")
        save("deployment")
        page.evaluate("document.getElementById('figures').scrollIntoView()")
        save("deployment-figures")
        page.evaluate("document.getElementById('diff').scrollIntoView()")
        save("deployment-diff")
        page.goto(url + "/ui/experiments")
        save("experiments")
        page.goto(url + f"/ui/experiments/{seeded['experiment']}")
        page.wait_for_selector("#report-body section")
        page.evaluate("document.getElementById('report').scrollIntoView()")
        save("experiment")
        page.route("**/report", lambda r: r.fulfill(status=200, content_type="application/json",
                                                     body=json.dumps(report)))
        page.route("**/timeline*", lambda r: r.fulfill(
            status=200, content_type="application/json", body=json.dumps(timeline)))
        page.goto(url + f"/ui/experiments/{seeded['experiment']}")
        page.wait_for_selector("figure[data-chart=pvalue]")
        page.evaluate("document.getElementById('report').scrollIntoView()")
        save("experiment-view")
        browser.close()
    return saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    parser.add_argument("--scheme", choices=("light", "dark"), default="light")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    data = Path(tempfile.mkdtemp(prefix="champion-shots-"))
    token = "shots-" + secrets.token_hex(8)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start_server(data, token, port)
    try:
        seeded = seed(url, token, data)
        for path in shoot(url, token, args.out, seeded, args.scheme):
            print(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path} "
                  f"({path.stat().st_size // 1024} KiB)")
    finally:
        proc.terminate()
        proc.wait(20)
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
