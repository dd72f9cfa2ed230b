"""The OpenAPI document covers every route the app registers, and docs/api.md is it."""

from __future__ import annotations

from pathlib import Path

import pytest

from champion.server import openapi
from champion.server.app import create_app
from champion.settings import Config

DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.fixture(scope="module")
def routes():
    return create_app(Config()).app.routes


def test_every_route_of_the_app_is_in_the_openapi_document(routes):
    doc = openapi.document(routes)
    missing = [f"{m} {p}" for m, p in openapi.route_table(routes)
               if m.lower() not in doc["paths"].get(p, {})]
    assert not missing, f"routes missing from /openapi.json (add them to OPERATIONS): {missing}"


def test_the_document_describes_no_route_the_app_lacks(routes):
    table = set(openapi.route_table(routes))
    stale = [f"{m} {p}" for m, p in openapi.OPERATIONS if (m, p) not in table]
    assert not stale, f"OPERATIONS names routes the app does not have: {stale}"


def test_a_route_without_an_entry_is_left_out_and_so_caught(routes):
    from starlette.routing import Route

    async def nothing(request):  # pragma: no cover - never called
        raise AssertionError

    extra = [*routes, Route("/api/new-thing", nothing, methods=["GET"])]
    doc = openapi.document(extra)
    assert "/api/new-thing" not in doc["paths"]
    assert ("GET", "/api/new-thing") in openapi.route_table(extra)


def test_every_operation_has_the_error_shape_auth_and_a_unique_id(routes):
    doc = openapi.document(routes)
    assert doc["openapi"] == "3.1.0"
    assert set(doc["components"]["securitySchemes"]) == {"bearer", "token_header"}
    ids = []
    for path, methods in doc["paths"].items():
        for method, op in methods.items():
            ids.append(op["operationId"])
            content = op["responses"]["default"]["content"]
            if op["tags"] == ["dashboard"] and "text/html" in content:
                continue  # the dashboard's pages answer errors as pages
            error = content["application/json"]["schema"]
            assert error["required"] == ["error"], (method, path)
            scope = op["x-champion-scope"]
            if scope in (None, "infer", "feedback"):
                assert {} in op["security"] or op["security"] == [], (method, path)
            else:
                assert "security" not in op  # the document's default: a token
            for name in openapi._PARAM.findall(path):
                assert any(p["name"] == name and p["in"] == "path"
                           for p in op["parameters"]), (method, path, name)
    assert len(ids) == len(set(ids))


def test_admin_routes_need_a_scope_and_inference_routes_say_when_they_are_open(routes):
    doc = openapi.document(routes)
    assert doc["paths"]["/api/deployments/{name}"]["delete"]["x-champion-scope"] == "admin"
    assert doc["paths"]["/v1/{name}"]["post"]["x-champion-scope"] == "infer"
    assert doc["paths"]["/v1/{name}/feedback"]["post"]["x-champion-scope"] == "feedback"
    body = doc["paths"]["/v1/{name}"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"]["required"] == ["data"]


def test_docs_api_md_is_generated_from_the_document(routes):
    expected = openapi.markdown(openapi.document(routes))
    assert (DOCS / "api.md").read_text(encoding="utf-8") == expected, (
        "docs/api.md is out of date: python -m champion.server.openapi > docs/api.md")
