"""The real server serves its OpenAPI document, and schemathesis can load it."""

from __future__ import annotations

from champion.server import openapi
from champion.server.app import create_app
from champion.settings import Config


def test_server_serves_an_openapi_31_document_of_every_route(server):
    with server.http() as http:  # no token: the contract is public
        resp = http.get("/openapi.json")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("application/json")
    doc = resp.json()
    assert doc["openapi"] == "3.1.0"
    routes = openapi.route_table(create_app(Config()).app.routes)
    served = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    assert set(routes) <= served, set(routes) - served
    for path in ("/v1/{name}", "/v1/{name}/feedback", "/api/deployments/{name}/versions",
                 "/api/experiments", "/healthz"):
        assert path in doc["paths"]


def test_log_filters_past_the_stores_integers_are_400_not_a_broken_stream(server, client,
                                                                           unique_name):
    """Found by schemathesis: ?status=-92233720368547759 overflowed SQLite's INTEGER in the
    middle of a streamed export (a chunked answer cut short) and was a 500 on /logs."""

    def echo(x):
        return x

    client.deploy(echo, unique_name)
    with server.admin() as http:
        for path in (f"/api/deployments/{unique_name}/logs",
                     f"/api/deployments/{unique_name}/logs/export"):
            for bad in ("-92233720368547759", str(2**63)):
                resp = http.get(path, params={"status": bad, "format": "csv"})
                assert resp.status_code == 400, resp.text
                assert "'status'" in resp.json()["error"]["message"]


def test_a_nul_anywhere_in_the_url_is_400_on_every_store(server):
    """Found by schemathesis on PostgreSQL: GET /api/experiments?endpoint=…%00… was a 500
    (PostgreSQL refuses NUL in text); a NUL in any path or query is now refused at the edge."""
    with server.admin() as http:
        for method, url in [("GET", "/api/experiments?endpoint=a%00b"),
                            ("GET", "/api/audit?token=%00"),
                            ("DELETE", "/api/tokens/a%00b"),
                            ("GET", "/api/deployments/a%00b"),
                            ("POST", "/v1/a%00b"),
                            ("POST", "/v1/a%00b/feedback")]:
            resp = http.request(method, url, json={"data": 1})
            assert resp.status_code == 400, (method, url, resp.text)
            assert "NUL" in resp.json()["error"]["message"]
