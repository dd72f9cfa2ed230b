"""The dashboard over HTTP: sign-in, sessions, CSRF, the API with a session, the actions.

(What a browser sees, charts and scripts included, is in test_dashboard_browser.py.)
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest

PAGES = ["/ui/", "/ui/experiments", "/ui/deployments/x", "/ui/experiments/exp_x"]


def score(x):
    return 1


def score_v2(x):
    return 2


@contextlib.contextmanager
def sign_in(server, **kwargs) -> Iterator[httpx.Client]:
    with server.http(follow_redirects=False, **kwargs) as http:
        r = http.post("/ui/login", data={"token": server.token, "next": "/ui/"})
        assert r.status_code == 303, r.text
        yield http


def csrf_of(http: httpx.Client, path: str = "/ui/") -> str:
    page = http.get(path)
    assert page.status_code == 200, page.text
    match = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert match, "the page carries the session's CSRF token"
    return match.group(1)


@pytest.fixture()
def two_versions(client, unique_name):
    client.deploy(score, unique_name)
    client.deploy(score_v2, unique_name)
    return unique_name


def test_root_redirects_to_the_dashboard(server):
    with server.http() as http:
        r = http.get("/")
        assert r.status_code == 307 and r.headers["location"] == "/ui/"


@pytest.mark.parametrize("path", PAGES)
def test_a_page_without_a_session_redirects_to_sign_in_and_back(server, path):
    with server.http() as http:
        r = http.get(path + "?a=1")
        assert r.status_code == 303
        assert r.headers["location"] == "/ui/login?next=" + quote(path + "?a=1", safe="")
        assert "champion" not in r.text  # nothing of the page


def test_sign_in_sets_an_httponly_strict_cookie_that_is_not_the_token(server):
    with server.http() as http:
        form = http.get("/ui/login")
        assert form.status_code == 200
        assert 'type="password"' in form.text and 'name="token"' in form.text
        r = http.post("/ui/login", data={"token": server.token,
                                          "next": "/ui/experiments?status=running"})
        assert r.status_code == 303 and r.headers["location"] == "/ui/experiments?status=running"
        cookie = next(c for c in r.headers.get_list("set-cookie")
                      if c.startswith("champion_session="))
        attrs = {a.strip().split("=")[0].lower() for a in cookie.split(";")}
        assert {"httponly", "samesite", "path"} <= attrs
        assert "samesite=strict" in cookie.lower()
        value = cookie.split(";")[0].split("=", 1)[1]
        assert server.token not in value
        assert http.get("/ui/experiments").status_code == 200


def test_a_wrong_token_signs_nobody_in(server):
    with server.http() as http:
        r = http.post("/ui/login", data={"token": "not-" + server.token})
        assert r.status_code == 401
        assert "not the admin token" in r.text
        assert "champion_session" not in r.headers.get("set-cookie", "")
        assert http.get("/ui/").status_code == 303


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/ui/", "/api/runtime",
                                    "/ui\\..\\x", "/ui/\r\nSet-Cookie: a=b"])
def test_sign_in_goes_back_only_to_a_dashboard_page(server, target):
    with server.http() as http:
        r = http.post("/ui/login", data={"token": server.token, "next": target})
        assert r.status_code == 303 and r.headers["location"] == "/ui/"


def test_a_forged_or_expired_session_is_refused(server):
    with sign_in(server) as http:
        value = http.cookies["champion_session"]
    sid, expires, sig = value.split(".")
    forged = [f"{sid}.{int(expires) + 1000}.{sig}", f"{sid}x.{expires}.{sig}",
              f"{sid}.{int(time.time()) - 10}.{sig}", "garbage", "a.b.c", "." * 300]
    for bad in forged:
        with server.http(cookies={"champion_session": bad}) as http:
            assert http.get("/ui/").status_code == 303
            assert http.get("/api/deployments").status_code == 401


def test_the_api_reads_with_a_session_and_changes_only_with_its_csrf_header(server, client,
                                                                          two_versions):
    name = two_versions
    with sign_in(server) as http:
        csrf = csrf_of(http)
        assert http.get("/api/deployments").status_code == 200
        assert http.get(f"/api/deployments/{name}/metrics").status_code == 200
        body = {"version": 2, "reason": "from a script with the cookie"}
        refused = http.put(f"/api/deployments/{name}/aliases/staging", json=body)
        assert refused.status_code == 403
        assert refused.json()["error"]["type"] == "forbidden"
        wrong = http.put(f"/api/deployments/{name}/aliases/staging", json=body,
                         headers={"x-champion-csrf": csrf[:-2] + "xx"})
        assert wrong.status_code == 403
        assert "staging" not in client.deployment(name)["aliases"]
        ok = http.put(f"/api/deployments/{name}/aliases/staging", json=body,
                      headers={"x-champion-csrf": csrf})
        assert ok.status_code == 200, ok.text
    assert client.deployment(name)["aliases"]["staging"] == 2
    entry = client.history(name, limit=1)[0]
    assert entry["actor"] == "dashboard" and entry["detail"]["alias"] == "staging"


def test_the_bearer_token_works_as_before_and_wins_over_a_cookie(server):
    with sign_in(server) as http:
        r = http.get("/api/deployments", headers={"authorization": "Bearer wrong"})
        assert r.status_code == 401 and "not valid" in r.json()["error"]["message"]
    with server.http() as http:
        r = http.get("/api/deployments")
        assert r.status_code == 401 and "Authorization: Bearer" in r.json()["error"]["message"]
    with server.admin() as http:
        assert http.get("/api/deployments").status_code == 200


def test_sign_out_ends_the_session_even_for_a_copy_of_its_cookie(server):
    with sign_in(server) as http:
        value = http.cookies["champion_session"]
        csrf = csrf_of(http)
        refused = http.post("/ui/logout", data={})
        assert refused.status_code == 403, "signing out is a change: it needs the CSRF token"
        r = http.post("/ui/logout", data={"csrf": csrf})
        assert r.status_code == 303 and r.headers["location"].startswith("/ui/login")
        assert 'champion_session=""' in r.headers["set-cookie"] or \
            "max-age=0" in r.headers["set-cookie"].lower()
    with server.http(cookies={"champion_session": value}) as again:
        assert again.get("/ui/").status_code == 303
        assert again.get("/api/deployments").status_code == 401


def test_a_dashboard_change_needs_the_csrf_token_and_a_confirmation(server, client,
                                                                   two_versions):
    name = two_versions
    with sign_in(server) as http:
        csrf = csrf_of(http, f"/ui/deployments/{name}")
        url = f"/ui/deployments/{name}/promote"
        no_token = http.post(url, data={"version": "2", "confirmed": "yes"})
        assert no_token.status_code == 403 and "CSRF" in no_token.text
        other_site = http.post(url, data={"version": "2", "confirmed": "yes", "csrf": csrf},
                               headers={"origin": "http://evil.example"})
        assert other_site.status_code == 403
        proxied = http.post(url, data={"version": "2", "csrf": csrf},
                            headers={"origin": "https://champion.example",
                                     "x-forwarded-host": "champion.example"})
        assert proxied.status_code == 200, "behind a proxy: the host the browser saw"
        ask = http.post(url, data={"version": "2", "reason": "better", "csrf": csrf})
        assert ask.status_code == 200 and 'name="confirmed" value="yes"' in ask.text
        assert client.deployment(name)["aliases"]["production"] == 1
        done = http.post(url, data={"version": "2", "reason": "better", "csrf": csrf,
                                    "confirmed": "yes"})
        assert done.status_code == 303
        assert done.headers["location"] == f"/ui/deployments/{name}#actions"
        assert client.deployment(name)["aliases"]["production"] == 2
        page = http.get(f"/ui/deployments/{name}")
        assert "is now production" in page.text  # the one-shot message
        assert "is now production" not in http.get(f"/ui/deployments/{name}").text
        entry = client.history(name, limit=1)[0]
        assert (entry["actor"], entry["detail"]["reason"], entry["detail"]["version"]) == (
            "dashboard", "better", 2)

        rolled = http.post(f"/ui/deployments/{name}/rollback",
                           data={"csrf": csrf, "confirmed": "yes", "version": ""})
        assert rolled.status_code == 303
        assert client.deployment(name)["aliases"]["production"] == 1
        again = http.post(f"/ui/deployments/{name}/rollback",
                          data={"csrf": csrf, "confirmed": "yes", "version": "1"})
        assert again.status_code == 303  # a refused change comes back as a message
        assert "Nothing changed" in http.get(f"/ui/deployments/{name}").text


def test_experiment_actions_from_the_dashboard_are_recorded_with_their_reason(
        server, client, two_versions):
    name = two_versions
    e = client.create_experiment(name, "ab", {"control": f"{name}:1", "candidate": f"{name}:2"})
    with sign_in(server) as http:
        csrf = csrf_of(http, f"/ui/experiments/{e['id']}")
        base = f"/ui/experiments/{e['id']}"
        assert http.post(base + "/pause", data={"csrf": csrf, "confirmed": "yes",
                                                "reason": "weekend"}).status_code == 303
        assert client.experiment(e["id"])["status"] == "paused"
        assert http.post(base + "/resume", data={"csrf": csrf, "confirmed": "yes",
                                                 "reason": "monday"}).status_code == 303
        assert http.post(base + "/stop", data={"csrf": csrf, "confirmed": "yes",
                                               "reason": "it wins",
                                               "decision": "promote:candidate"}
                         ).status_code == 303
    after = client.experiment(e["id"])
    assert after["status"] == "stopped" and after["decision"]["variant"] == "candidate"
    assert client.deployment(name)["aliases"]["production"] == 2
    steps = [(h["action"], h["actor"], h["reason"]) for h in after["history"]]
    assert steps[-3:] == [("pause", "dashboard", "weekend"), ("resume", "dashboard", "monday"),
                          ("stop", "dashboard", "it wins")]


def test_a_one_time_sign_in_link_works_once(server):
    with server.http() as anonymous:
        assert anonymous.post("/api/ui/sign-in-link").status_code == 401
    with server.admin() as admin:
        made = admin.post("/api/ui/sign-in-link")
        assert made.status_code == 201, made.text
        path = made.json()["path"]
        assert made.json()["expires_at"] > time.time() + 60
        assert admin.post("/api/ui/sign-in-link", json={"expires_in": 10**6}).status_code == 400
    code = httpx.URL(path).params["code"]
    assert server.token not in path
    with server.http() as http:
        shown = http.get(path)
        assert shown.status_code == 200 and f'value="{code}"' in shown.text
        assert http.get(path).status_code == 200, "showing the link does not spend it"
        r = http.post("/ui/login", data={"code": code, "next": "/ui/"})
        assert r.status_code == 303 and "champion_session" in r.headers["set-cookie"]
    with server.http() as http:
        assert "expired or has been used" in http.get(path).text
        assert http.post("/ui/login", data={"code": code}).status_code == 401


ODD_REQUESTS = [
    ("GET", "/ui/login?next=%0d%0aX:1&code=%00", {}, None),
    ("POST", "/ui/login", {"content-type": "multipart/form-data; boundary=x"}, b"--x--"),
    ("POST", "/ui/login", {"content-type": "application/x-www-form-urlencoded"}, b"%" * 70000),
    ("POST", "/ui/login", {"content-type": "application/x-www-form-urlencoded"},
     b"token=%ff%fe&next=%c0%af"),
    ("POST", "/ui/login", {}, b"&".join(b"a=%d" % i for i in range(500))),
    ("POST", "/ui/logout", {}, b"csrf=x"),
    ("POST", "/ui/deployments/x/promote", {}, b"version=1"),
    ("POST", "/ui/experiments/x/stop", {}, b""),
    ("GET", "/ui/static/../../../../etc/passwd", {}, None),
    ("GET", "/ui/static/vendor/nope.js", {}, None),
    ("GET", "/ui/deployments/%00%ff", {"cookie": "champion_session=%ff%00;;"}, None),
    ("GET", "/ui/", {"cookie": "champion_session=" + "a." * 2000}, None),
    ("PUT", "/ui/", {}, b""),
    ("POST", "/api/ui/sign-in-link", {"cookie": "champion_session=x.1.y"}, b"{}"),
]


@pytest.mark.parametrize(("method", "path", "headers", "body"), ODD_REQUESTS)
def test_anonymous_odd_requests_never_get_a_500_a_traceback_or_a_path(server, method, path,
                                                                      headers, body):
    with server.http() as http:
        r = http.request(method, path, headers=headers, content=body)
    assert r.status_code < 500, r.text
    text = r.text
    assert "Traceback" not in text and "File \"" not in text
    assert str(server.data_dir) not in text and "site-packages" not in text


def test_pages_carry_a_strict_content_security_policy(server):
    with sign_in(server) as http:
        r = http.get("/ui/")
    policy = r.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["cache-control"] == "no-store"
    assert re.match(r"page;dur=\d", r.headers["server-timing"])


def test_static_files_are_served_and_vendored_ones_cached_for_good(server):
    with server.http() as http:
        lib = http.get("/ui/static/vendor/uPlot-1.6.32.iife.min.js")
        assert lib.status_code == 200 and "immutable" in lib.headers["cache-control"]
        own = http.get("/ui/static/js/app.js")
        assert own.status_code == 200 and own.headers["cache-control"] == "no-cache"
        assert "javascript" in own.headers["content-type"]
