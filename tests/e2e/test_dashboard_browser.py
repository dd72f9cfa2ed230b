"""The dashboard in a real browser (Playwright driving Debian's chromium) against a real server.

Skipped, with the reason, only when no ``chromium`` is on PATH (CI installs it).
"""

from __future__ import annotations

import concurrent.futures
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.rawhttp import post_many

CHROMIUM = shutil.which("chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
FIXTURES = Path(__file__).parent / "fixtures"

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (apt-get install chromium): the "
    "dashboard's browser tests drive Debian's chromium and never download a browser")


def score(x):
    return 1


def score_v2(x):
    return 2


def send(server, name: str, units: list[str], headers: dict[str, str] | None = None) -> list:
    """POST /v1/NAME once per unit (in a thread: Playwright's sync API holds this one's loop)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        results = pool.submit(post_many, server.port, f"/v1/{name}", [{"data": 0}] * len(units),
                              [{"X-Champion-Unit": u, **(headers or {})} for u in units]).result()
    assert all(status == 200 for status, _ in results), results[:3]
    return [body for _, body in results]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


class Tab:
    """A browser tab that records console errors and uncaught exceptions."""

    def __init__(self, browser: Any, server: Any, **context: Any) -> None:
        self.server = server
        self.context = browser.new_context(viewport={"width": 1280, "height": 900}, **context)
        self.page = self.context.new_page()
        self.page.set_default_timeout(15_000)
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))

    def go(self, path: str) -> Any:
        self.page.goto(self.server.url + path)
        return self.page

    def sign_in(self, then: str = "/ui/") -> Any:
        self.go("/ui/login?next=" + then)
        self.page.fill("#token", self.server.token)
        self.page.click("form button[type=submit]")
        self.page.wait_for_url(lambda url: "/ui/login" not in url)
        return self.page

    def chart(self, chart_id: str) -> dict[str, Any]:
        """What the page plotted for ``chart_id`` (kept by the page's script)."""
        self.page.wait_for_function(
            "id => window.champion && window.champion.charts[id] !== undefined", arg=chart_id)
        return self.page.evaluate(
            "id => { const c = window.champion.charts[id];"
            " return {series: c.series, data: c.data, source: c.source || null, cats: c.cats}; }",
            chart_id)

    def confirm(self) -> None:
        self.page.wait_for_selector("#confirm-dialog[open]")
        self.page.click("#confirm-ok")

    def close(self) -> None:
        self.context.close()


@pytest.fixture()
def tab(browser, server) -> Iterator[Tab]:
    t = Tab(browser, server)
    yield t
    t.close()


@pytest.fixture()
def seeded(server, client, unique_name) -> dict[str, Any]:
    """Two versions, an A/B experiment with traffic and feedback."""
    name = unique_name
    client.deploy(score, name)
    client.deploy(score_v2, name)
    e = client.create_experiment(name, "ab", {"control": f"{name}:1", "candidate": f"{name}:2"},
                                 metrics={"primary": "reward"})
    bodies = send(server, name, [f"user-{i}" for i in range(200)])
    client.feedback(name, items=[{"request_id": b["request_id"], "reward": 1} for b in bodies[::3]])
    return {"name": name, "experiment": e["id"], "bodies": bodies}


def wait_for_requests(client, name: str, n: int) -> None:
    import time

    for _ in range(200):
        m = client.metrics(name)
        if sum(v["totals"]["requests"] for v in m["versions"]) >= n:
            return
        time.sleep(0.05)
    raise AssertionError("the request log did not catch up")


# ------------------------------------------------------------------ sign-in


def test_sign_in_and_sign_out_in_the_browser(tab):
    page = tab.go("/ui/experiments")
    assert "/ui/login?next=" in page.url, "no session: the sign-in form"
    assert page.locator("input[name=token][type=password]").count() == 1
    page.fill("#token", "wrong")
    page.click("form button[type=submit]")
    assert page.locator("#login-error").inner_text().startswith("That is not the admin token")
    page.fill("#token", tab.server.token)
    page.click("form button[type=submit]")
    page.wait_for_url("**/ui/experiments")
    assert page.locator("h1").inner_text().startswith("Experiments")
    cookies = {c["name"]: c for c in tab.context.cookies()}
    assert cookies["champion_session"]["httpOnly"] is True
    assert cookies["champion_session"]["sameSite"] == "Strict"
    assert page.evaluate("document.cookie").find("champion_session") == -1
    page.click("text=Sign out")
    page.wait_for_url("**/ui/login?signed_out=1")
    assert "You are signed out" in page.inner_text("main")
    tab.go("/ui/")
    assert "/ui/login" in page.url
    assert tab.errors == [] or all("401" in e for e in tab.errors), tab.errors


# ------------------------------------------------------------------ the pages


def test_every_page_shows_its_names_and_figures_without_console_errors(tab, client, seeded):
    name, exp_id = seeded["name"], seeded["experiment"]
    wait_for_requests(client, name, 200)
    page = tab.sign_in()

    page.wait_for_function(
        "name => { const c = document.querySelector(`tr[data-deployment='${name}'] "
        "[data-field=requests]`); return c && c.textContent !== '…'; }", arg=name)
    row = page.locator(f"tr[data-deployment='{name}']")
    assert row.locator("th a").inner_text() == name
    assert row.locator("[data-field=requests]").inner_text() == "200"
    assert row.locator("[data-field=error_rate]").inner_text() == "0.00%"
    assert exp_id in row.locator("td").last.inner_html()

    tab.go(f"/ui/deployments/{name}")
    assert page.locator("h1").inner_text() == name
    page.wait_for_selector("#version-totals tbody tr th")
    totals = page.locator("#version-totals tbody tr")
    assert totals.count() == 2
    page.wait_for_selector("#latest-requests tbody tr[data-request]")
    rows = page.locator("#latest-requests tbody tr[data-request]")
    assert rows.count() == 25
    shown = {rows.nth(i).get_attribute("data-request") for i in range(25)}
    rewarded = {b["request_id"] for b in seeded["bodies"][::3]}
    with_feedback = [rows.nth(i) for i in range(25)
                     if rows.nth(i).get_attribute("data-request") in rewarded]
    assert shown & rewarded and all("reward: 1" in r.inner_text() for r in with_feedback)
    assert page.locator("#versions tbody tr").count() == 2
    assert "def score_v2" in page.locator("#source pre").inner_text() or \
        "def score" in page.locator("#source pre").inner_text()
    assert page.locator("#diff .d-add").count() >= 1, "a diff between the two versions"

    tab.go("/ui/experiments")
    assert page.locator(f"a[href='/ui/experiments/{exp_id}']").count() == 1
    assert page.locator("#status-running").count() == 1

    tab.go(f"/ui/experiments/{exp_id}")
    page.wait_for_selector("#report-body section[data-key]")
    assert exp_id in page.locator("h1").inner_text()
    assert page.locator("#variants tbody tr").count() == 2
    assert page.locator("#headline").inner_text() != ""
    body = page.locator("#report-body").inner_text()
    assert "control" in body and "candidate" in body
    assert page.locator("#experiment-history tbody tr").count() == 2
    assert tab.errors == [], tab.errors


def test_a_chart_has_the_points_the_api_returns(tab, server, client, seeded):
    name = seeded["name"]
    wait_for_requests(client, name, 200)
    tab.sign_in(f"/ui/deployments/{name}")
    plotted = tab.chart("requests")
    assert plotted["source"].startswith(f"/api/deployments/{name}/metrics?")
    with server.admin() as http:
        api = http.get(plotted["source"]).json()
    expected = [{"label": f"version {v['version']}",
                 "x": [b["start"] for b in v["buckets"]],
                 "y": [b["requests"] for b in v["buckets"]]} for v in api["versions"]]
    assert [{k: s[k] for k in ("label", "x", "y")} for s in plotted["series"]] == expected
    assert sum(sum(s["y"]) for s in expected) == 200
    # uPlot holds the same points: its x row is the union of the buckets
    assert plotted["data"][0] == sorted({x for s in expected for x in s["x"]})
    latency = tab.chart("latency")
    p90 = {s["label"]: s["y"] for s in latency["series"] if s["label"].endswith("p90")}
    assert p90 == {f"version {v['version']} p90": [b["latency_ms"]["p90"] for b in v["buckets"]]
                   for v in api["versions"]}
    assert tab.errors == [], tab.errors


def test_the_pages_ask_for_metrics_up_to_now(tab, seeded):
    """A range that ends at the floor of the browser's second leaves out the requests of the
    last fraction of a second, and all of the current minute when that floor is a minute's
    start (the per-minute rollup ends at the first minute on or after ``until``). The deployment
    page and the list ask for metrics up to the ceiling of now."""
    import datetime
    import time
    from urllib.parse import parse_qs, urlsplit

    name = seeded["name"]
    now = int(time.time()) + 0.5  # half a second past, where floor and ceiling differ
    tab.context.clock.set_fixed_time(datetime.datetime.fromtimestamp(now, datetime.UTC))
    asked: list[str] = []
    tab.page.on("request", lambda r: asked.append(r.url) if "/metrics?" in r.url else None)
    page = tab.sign_in(f"/ui/deployments/{name}")
    tab.chart("requests")
    tab.go("/ui/")
    page.wait_for_function(
        "name => { const c = document.querySelector(`tr[data-deployment='${name}'] "
        "[data-field=requests]`); return c && c.textContent !== '…'; }", arg=name)
    ours = [u for u in asked if urlsplit(u).path == f"/api/deployments/{name}/metrics"]
    assert any("bucket=60" in u for u in ours) and any("bucket=" not in u for u in ours), asked
    for u in asked:
        until = float(parse_qs(urlsplit(u).query)["until"][0])
        assert now <= until < now + 2, u
    assert tab.errors == [], tab.errors


# ------------------------------------------------------------------ actions


def test_promote_from_the_page_moves_production(tab, client, seeded):
    name = seeded["name"]
    page = tab.sign_in(f"/ui/deployments/{name}")
    page.select_option("#promote-version", "2")
    page.fill("#promote-reason", "faster in the A/B")
    page.click("#promote-button")
    tab.confirm()
    page.wait_for_selector(".flash-success")
    assert "Version 2 of" in page.inner_text(".flash-success")
    assert client.deployment(name)["aliases"]["production"] == 2
    entry = client.history(name, limit=1)[0]
    assert (entry["actor"], entry["detail"]["reason"]) == ("dashboard", "faster in the A/B")
    # cancelling the dialog changes nothing
    page.select_option("#promote-version", "1")
    page.click("#promote-button")
    page.wait_for_selector("#confirm-dialog[open]")
    page.keyboard.press("Escape")
    page.wait_for_timeout(300)
    assert client.deployment(name)["aliases"]["production"] == 2
    assert tab.errors == [], tab.errors


def test_stop_from_the_page_stops_the_experiment_and_promotes(tab, client, seeded):
    name, exp_id = seeded["name"], seeded["experiment"]
    page = tab.sign_in(f"/ui/experiments/{exp_id}")
    page.select_option("#stop-decision", "promote:candidate")
    page.fill("#stop-reason", "the candidate wins")
    page.click("#stop-button")
    tab.confirm()
    page.wait_for_selector(".flash-success")
    after = client.experiment(exp_id)
    assert after["status"] == "stopped"
    assert after["decision"] == {"action": "promote", "variant": "candidate", "version": 2}
    last = after["history"][-1]
    assert (last["actor"], last["reason"]) == ("dashboard", "the candidate wins")
    assert client.deployment(name)["aliases"]["production"] == 2
    assert page.locator("#experiment-status").inner_text() == "stopped"
    assert page.locator("#actions").count() == 0, "a stopped experiment offers no action"
    assert tab.errors == [], tab.errors


def test_pages_follow_changes_made_elsewhere_without_a_reload(tab, client, seeded):
    exp_id = seeded["experiment"]
    page = tab.sign_in(f"/ui/experiments/{exp_id}")
    page.evaluate("window.notReloaded = true")
    client.pause_experiment(exp_id, reason="from a notebook")
    page.wait_for_function("() => document.getElementById('experiment-status').textContent"
                           " === 'paused'", timeout=15_000)
    assert "from a notebook" in page.locator("#experiment-history").inner_text()
    assert page.locator("#resume-button").count() == 1
    tab.go("/ui/experiments?endpoint=" + seeded["name"])
    page.evaluate("window.notReloaded = true")
    assert page.locator("#status-paused").count() == 1
    client.stop_experiment(exp_id)
    page.wait_for_selector("#status-stopped", timeout=15_000)
    assert page.locator("#status-paused").count() == 0
    assert page.evaluate("window.notReloaded") is True
    assert tab.errors == [], tab.errors


def test_a_post_without_the_csrf_token_is_refused_in_the_browser(tab, client, seeded):
    name = seeded["name"]
    page = tab.sign_in(f"/ui/deployments/{name}")
    page.evaluate("document.querySelectorAll('input[name=csrf]').forEach(i => i.value = 'x')")
    page.select_option("#promote-version", "2")
    page.click("#promote-button")
    tab.confirm()
    page.wait_for_selector("main h1:text('Refused')")
    assert "no valid CSRF token" in page.inner_text("main")
    assert client.deployment(name)["aliases"]["production"] == 1
    status = page.evaluate(
        "async n => (await fetch(`/api/deployments/${n}/promote`, {method: 'POST', "
        "headers: {'content-type': 'application/json'}, body: '{\"version\": 2}'})).status",
        name)
    assert status == 403
    assert client.deployment(name)["aliases"]["production"] == 1


# ------------------------------------------------------------------ reports


def test_an_srm_banner_appears_on_a_corrupted_split(tab, server, client, unique_name):
    name = unique_name
    client.deploy(score, name)
    client.deploy(score_v2, name)
    e = client.create_experiment(name, "ab", {"control": f"{name}:1", "candidate": f"{name}:2"})
    # an admin forces the candidate for 300 units: the 50/50 split is broken
    forced = {"X-Champion-Variant": "candidate", "Authorization": f"Bearer {server.token}"}
    send(server, name, [f"forced-{i}" for i in range(300)], forced)
    send(server, name, [f"user-{i}" for i in range(100)])
    for _ in range(100):
        if client.report(e["id"])["srm"]["fired"]:
            break
        import time

        time.sleep(0.05)
    page = tab.sign_in(f"/ui/experiments/{e['id']}")
    banner = page.wait_for_selector("#alerts .alert-error[role=alert]")
    assert "SRM" in banner.inner_text() and "mismatch" in banner.inner_text().lower()
    # the report's view greys the comparisons table and the lift charts
    comparisons = page.locator(
        "#report-body section[data-key=\"table:comparisons\"] [data-greyed=true]")
    assert comparisons.count() >= 1, "the lift is greyed while the SRM check fails"
    assert page.locator("figure[data-chart=means] .plot[data-greyed=true]").count() == 1
    assert tab.errors == [], tab.errors


def test_a_report_view_is_drawn_generically(tab, server, client, seeded):
    """Any strategy's report with a ``view`` (here a fixture of the contract) is drawn as
    it says: headline, alerts, formatted tables, inline and timeline charts, greying."""
    exp_id = seeded["experiment"]
    report = json.loads((FIXTURES / "view_report.json").read_text())
    timeline = json.loads((FIXTURES / "view_timeline.json").read_text())
    page = tab.page

    def fulfil(body: Any) -> Any:
        return lambda route: route.fulfill(status=200, content_type="application/json",
                                           body=json.dumps(body))

    page.route(f"**/api/experiments/{exp_id}/report", fulfil(report))
    page.route(f"**/api/experiments/{exp_id}/timeline*", fulfil(timeline))
    tab.sign_in(f"/ui/experiments/{exp_id}")
    view = report["view"]
    page.wait_for_selector("figure[data-chart=pvalue]")
    assert page.locator("#headline").inner_text() == view["headline"]
    alerts = page.locator("#alerts .alert")
    assert alerts.count() == 3
    error = page.locator("#alerts .alert-error[role=alert]")
    assert "Sample ratio mismatch" in error.inner_text()
    assert page.locator("#alerts .alert-warning[role=status]").count() == 1

    cells = page.locator("table[data-table=variants] tbody tr").nth(1).locator("th, td")
    assert [cells.nth(i).inner_text().strip() for i in range(8)] == [
        "candidate", "5,290", "30.0%", "0.15", "1.50 s", "< 0.001", "0.15 [0.12, 0.18]",
        "25.0% [-5.00%, 55.0%]"]
    first = page.locator("table[data-table=variants] tbody tr").nth(0).locator("td")
    assert first.nth(0).inner_text() == "12,345" and first.nth(4).inner_text() == "—"

    lift = tab.chart("lift")
    assert lift["series"] == view["charts"][0]["series"]
    assert lift["data"][0] == view["charts"][0]["series"][0]["x"]
    means = tab.chart("means")
    assert means["cats"] == ["control", "candidate"] and means["data"][1] == [0.12, 0.15]
    share = tab.chart("share")
    points = timeline["points"]
    assert share["series"][0]["x"] == [p["ts"] for p in points]
    assert share["series"][0]["y"] == [p["share"]["candidate"] for p in points]
    assert share["series"][1]["y"] == [p["target"]["candidate"] for p in points]
    assert share["series"][1]["dashed"] is True
    pvalue = tab.chart("pvalue")
    assert pvalue["series"][0]["y"] == [p["p_value"] for p in points]

    assert "greyed" in page.locator("figure[data-chart=lift] .plot").get_attribute("class")
    assert "greyed" not in page.locator("figure[data-chart=share] .plot").get_attribute("class")
    assert page.locator("figure[data-chart=lift]").get_attribute("data-points") == "6"
    assert tab.errors == [], tab.errors


# ------------------------------------------------------------------ accessibility


def test_keyboard_reaches_the_skip_link_the_navigation_and_the_content(tab, seeded):
    page = tab.sign_in()
    focused = "document.activeElement.textContent.trim()"
    page.keyboard.press("Tab")
    assert page.evaluate(focused) == "Skip to content"
    page.keyboard.press("Tab")
    assert page.evaluate(focused) == "champion"
    page.keyboard.press("Tab")
    assert page.evaluate(focused) == "Deployments"
    page.keyboard.press("Tab")
    assert page.evaluate(focused) == "Experiments"
    page.keyboard.press("Enter")
    page.wait_for_url("**/ui/experiments")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")  # the skip link
    assert page.evaluate("location.hash") == "#main"
    page.keyboard.press("Tab")
    assert page.evaluate("document.getElementById('main').contains(document.activeElement)")
    assert page.evaluate("document.activeElement.tagName") == "A"
    page.keyboard.press("Enter")  # the first experiment
    page.wait_for_url("**/ui/experiments/exp_*")


def test_dark_and_light_schemes_follow_the_reader(browser, server):
    colours = {}
    for scheme in ("light", "dark"):
        t = Tab(browser, server, color_scheme=scheme)
        try:
            page = t.sign_in()
            colours[scheme] = page.evaluate(
                "getComputedStyle(document.documentElement).backgroundColor")
        finally:
            t.close()
    assert colours["light"] == "rgb(255, 255, 255)"
    assert colours["dark"] != colours["light"]
