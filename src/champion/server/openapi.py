"""The OpenAPI 3.1 document at ``/openapi.json``, generated from the app's own route table.

Every route the app registers is looked up here by (method, path template) in
:data:`OPERATIONS`, which gives its summary, the token scope it needs, its query parameters
and its request and response bodies (JSON Schema). The paths, methods and path parameters
come from the route table itself, so a route added to the app without an entry here is
missing from the document, and ``tests/unit/test_openapi.py`` fails naming it.

Every operation answers failures in the one error shape (:data:`ERROR`), its ``default``
response; the Modelbit-compatible route answers ``{"error": TEXT, "champion_error": {...}}``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from starlette.routing import BaseRoute, Mount, Route

from champion import __version__

JSON = "application/json"
Schema = dict[str, Any]

ANY: Schema = {}
OBJECT: Schema = {"type": "object"}
STRING: Schema = {"type": "string"}
INTEGER: Schema = {"type": "integer"}
NUMBER: Schema = {"type": "number"}
BOOLEAN: Schema = {"type": "boolean"}


def obj(required: Iterable[str] = (), **props: Schema) -> Schema:
    """An object with these properties (others allowed), ``required`` among them."""
    out: Schema = {"type": "object", "properties": props}
    req = list(required)
    if req:
        out["required"] = req
    return out


def array(items: Schema) -> Schema:
    return {"type": "array", "items": items}


def nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


ERROR: Schema = obj(
    ["error"],
    error=obj(["type", "message"], type=STRING, message=STRING, request_id=STRING),
)
MODELBIT_ERROR: Schema = obj(["error"], error=STRING, champion_error=ERROR["properties"]["error"])

PREDICTION: Schema = obj(
    ["data", "request_id", "variant"],
    data=ANY, request_id=STRING, variant=STRING, version=STRING, experiment=STRING,
)
INFER_BODY: Schema = obj(
    ["data"],
    data={"description": "One input, or a batch: [[id, input], ...]."},
    unit={"description": "What assignment sticks to (user, session); or the "
          "X-Champion-Unit header."},
    timeout_seconds={"type": "number", "exclusiveMinimum": 0,
                     "description": "Seconds this call may run (at most the deployment's "
                     "timeout)."},
    response_format={"enum": ["json"]},
)
FEEDBACK_ITEM: Schema = obj(
    [],
    request_id=STRING, event_id=STRING, unit=STRING, reward=NUMBER, metric=STRING,
    value=NUMBER, label=ANY, clicks=ANY, ts=NUMBER,
)
FEEDBACK_BODY: Schema = {"anyOf": [FEEDBACK_ITEM, array(FEEDBACK_ITEM),
                                   obj(["feedback"], feedback=array(FEEDBACK_ITEM))]}
FEEDBACK_RESULT: Schema = obj(
    ["accepted", "duplicates"],
    accepted=INTEGER, duplicates=INTEGER, duplicate_items=array(INTEGER),
    errors=array(OBJECT), rejected=INTEGER,
)
DEPLOYMENT_ROW: Schema = obj(["name"], name=STRING, created_at=NUMBER, created_by=STRING,
                             latest=nullable(INTEGER), production=nullable(INTEGER),
                             versions=INTEGER, config=OBJECT)
VERSION_REF: Schema = obj(["version"], version=INTEGER, reason=STRING)
EXPERIMENT: Schema = obj(["id", "endpoint", "strategy", "status", "variants"], id=STRING,
                         endpoint=STRING, strategy=STRING, status=STRING, variants=OBJECT,
                         control=STRING, created_at=NUMBER, weights=OBJECT)
REPORT: Schema = obj(["experiment", "strategy", "status", "variants", "decision"],
                     experiment=STRING, endpoint=STRING, strategy=STRING, status=STRING,
                     variants=OBJECT, generated_at=NUMBER, decision=OBJECT)
DEPLOYMENT: Schema = obj(["name", "config", "aliases", "versions"], name=STRING,
                         created_at=NUMBER, created_by=STRING, config=OBJECT, aliases=OBJECT,
                         versions=array(OBJECT))
VERSION: Schema = obj(["deployment", "version", "status", "source", "manifest"],
                      deployment=STRING, version=INTEGER, created_at=NUMBER,
                      function_name=STRING, python_version=STRING, source=STRING,
                      aliases=array(STRING), status=STRING, manifest=OBJECT)
REASON_BODY: Schema = obj([], reason=STRING)
TOKEN: Schema = obj(["name", "scopes"], name=STRING, scopes=array(STRING),
                    prefix=STRING, created_at=NUMBER, created_by=STRING,
                    rate_limit=nullable(NUMBER), revoked_at=nullable(NUMBER))
AUDIT_ROW: Schema = obj(["ts", "token", "method", "path", "status"], id=INTEGER, ts=NUMBER,
                        token=STRING, user=STRING, method=STRING, path=STRING,
                        status=INTEGER, deployment=nullable(STRING))


@dataclass(frozen=True)
class Param:
    name: str
    schema: Schema
    description: str = ""


@dataclass(frozen=True)
class Op:
    """One operation: what it does, who may call it and what goes in and out."""

    summary: str
    tag: str
    #: the token scope needed; "" for anyone, "infer"/"feedback": anyone unless the server
    #: was started with --require-auth
    scope: str = "admin"
    body: Schema | None = None
    body_type: str = JSON
    body_required: bool = True
    ok: int = 200
    response: Schema | None = field(default_factory=lambda: OBJECT)
    response_type: str = JSON
    query: tuple[Param, ...] = ()
    errors: Schema | None = field(default_factory=lambda: ERROR)  # None: an HTML page
    links: dict[str, Any] = field(default_factory=dict)
    also: tuple[str, ...] = ()  # other media types of the success answer


def _q(name: str, schema: Schema, description: str = "") -> Param:
    return Param(name, schema, description)


LIMIT = _q("limit", {"type": "integer", "minimum": 1, "maximum": 10000}, "At most this many.")
TIME = {"type": "string", "description": "A Unix time, an ISO 8601 time or an age ('1h')."}
LOG_FILTERS = (_q("since", TIME), _q("until", TIME), _q("version", INTEGER),
               _q("status", INTEGER), _q("experiment", STRING), _q("unit", STRING))
HTML = "text/html"
FORM = "application/x-www-form-urlencoded"
FEEDBACK_LINK = {"SendFeedback": {
    "operationId": "post_v1_name_feedback",
    "parameters": {"name": "$request.path.name"},
    "requestBody": {"request_id": "$response.body#/request_id", "reward": 1}}}
INFER = Op("Call the endpoint: production, or the running experiment", "inference",
           scope="infer", body=INFER_BODY, response=PREDICTION, links=FEEDBACK_LINK)
INFER_REF = Op("Call one version or alias of a deployment", "inference", scope="infer",
               body=INFER_BODY, response=PREDICTION, links=FEEDBACK_LINK)
UI_PAGE = Op("A dashboard page (or a redirect to sign in)", "dashboard", scope="",
             response=None, response_type=HTML, errors=None)
UI_ACTION = Op("A dashboard form (session cookie and CSRF token)", "dashboard", scope="",
               body=OBJECT, body_type=FORM, ok=303, response=None, response_type=HTML,
               errors=None)

OPERATIONS: dict[tuple[str, str], Op] = {
    # ---------------------------------------------------------------- inference
    ("POST", "/v1/{name}"): INFER,
    ("POST", "/v1/{name}/{ref}"): INFER_REF,
    ("POST", "/v1/{name}/{branch}/{ref}"): Op(
        "Modelbit's shape: call a version on branch 'main'", "inference", scope="infer",
        body=INFER_BODY, response=PREDICTION, errors=MODELBIT_ERROR),
    ("POST", "/v1/{name}/feedback"): Op(
        "Report outcomes (rewards, metrics, labels, clicks) for request ids", "feedback",
        scope="feedback", body=FEEDBACK_BODY, response=FEEDBACK_RESULT,
        query=(_q("atomic", BOOLEAN, "Store nothing if any item is invalid."),)),
    # ---------------------------------------------------------------- health
    ("GET", "/healthz"): Op("The process answers", "health", scope="",
                            response=obj(["status"], status=STRING, version=STRING)),
    ("GET", "/readyz"): Op("The process and its store answer (503 when the store does not)",
                           "health", scope="", response=obj(["status"], status=STRING)),
    ("GET", "/metrics"): Op("Prometheus metrics", "health", scope="", response=None,
                            response_type="text/plain"),
    ("GET", "/openapi.json"): Op("This document", "health", scope=""),
    # ---------------------------------------------------------------- deployments
    ("GET", "/api/deployments"): Op("List deployments", "deployments", scope="deploy",
                                    response=obj(["deployments"],
                                                 deployments=array(DEPLOYMENT_ROW))),
    ("GET", "/api/deployments/{name}"): Op("A deployment, its versions and aliases",
                                           "deployments", scope="deploy",
                                           response=DEPLOYMENT),
    ("DELETE", "/api/deployments/{name}"): Op("Delete a deployment and all its versions",
                                              "deployments",
                                              response=obj(["deleted"], deleted=STRING)),
    ("PATCH", "/api/deployments/{name}"): Op(
        "Change a deployment's settings (workers, timeout, batching, logging)", "deployments",
        body=OBJECT, response=obj(["name", "config"], name=STRING, config=OBJECT)),
    ("GET", "/api/deployments/{name}/versions"): Op(
        "A deployment's versions", "deployments", scope="deploy",
        response=obj(["deployment", "versions"], deployment=STRING, aliases=OBJECT,
                     versions=array(OBJECT))),
    ("POST", "/api/deployments/{name}/versions"): Op(
        "Deploy the next version from a manifest (its artifacts uploaded first)",
        "deployments", scope="deploy", ok=201,
        body=obj(["manifest"], manifest=obj(["function_name"], function_name=STRING),
                 config=OBJECT, source=STRING, origin=OBJECT, validate=BOOLEAN),
        response=obj(["deployment", "version"], deployment=STRING, version=INTEGER,
                     status=STRING),
        links={
            "GetVersion": {"operationId": "get_api_deployments_name_versions_ref",
                           "parameters": {"name": "$request.path.name",
                                          "ref": "$response.body#/version"}},
            "GetBuild": {"operationId": "get_api_deployments_name_versions_ref_build",
                         "parameters": {"name": "$request.path.name",
                                        "ref": "$response.body#/version"}},
            "CallVersion": {"operationId": "post_v1_name_ref",
                            "parameters": {"name": "$request.path.name",
                                           "ref": "$response.body#/version"}},
            "Promote": {"operationId": "post_api_deployments_name_promote",
                        "parameters": {"name": "$request.path.name"},
                        "requestBody": {"version": "$response.body#/version"}},
        }),
    ("GET", "/api/deployments/{name}/versions/{ref}"): Op(
        "One version: source, manifest, aliases", "deployments", scope="deploy",
        response=VERSION),
    ("GET", "/api/deployments/{name}/versions/{ref}/build"): Op(
        "The progress of a version's environment build", "deployments", scope="deploy",
        response=obj(["deployment", "version", "status"], deployment=STRING,
                     version=INTEGER, status=STRING)),
    ("GET", "/api/deployments/{name}/aliases"): Op(
        "A deployment's aliases", "aliases",
        scope="deploy", response=obj(["deployment", "aliases"], deployment=STRING,
                                     aliases=OBJECT)),
    ("PUT", "/api/deployments/{name}/aliases/{alias}"): Op(
        "Point an alias at a version", "aliases", body=VERSION_REF,
        response=obj(["deployment", "alias", "version"], deployment=STRING, alias=STRING,
                     version=INTEGER, previous=nullable(INTEGER)),
        links={"DeleteAlias": {"operationId": "delete_api_deployments_name_aliases_alias",
                               "parameters": {"name": "$request.path.name",
                                              "alias": "$request.path.alias"}},
               "CallAlias": {"operationId": "post_v1_name_ref",
                             "parameters": {"name": "$request.path.name",
                                            "ref": "$request.path.alias"}}}),
    ("DELETE", "/api/deployments/{name}/aliases/{alias}"): Op(
        "Remove an alias", "aliases",
        response=obj(["deployment", "deleted"], deployment=STRING, deleted=STRING)),
    ("POST", "/api/deployments/{name}/promote"): Op(
        "Move production to a version", "aliases", body=VERSION_REF,
        response=obj(["deployment", "production"], deployment=STRING, production=INTEGER,
                     previous=nullable(INTEGER))),
    ("POST", "/api/deployments/{name}/rollback"): Op(
        "Move production back (to the previous version, or the one given)", "aliases",
        body=obj([], version=INTEGER), body_required=False,
        response=obj(["deployment"], deployment=STRING)),
    ("GET", "/api/deployments/{name}/history"): Op(
        "Who deployed, promoted and rolled back, and when", "deployments", query=(LIMIT,),
        response=obj(["deployment", "history"], deployment=STRING, history=array(OBJECT))),
    ("GET", "/api/deployments/{name}/logs"): Op(
        "The request log, newest first (oldest first after a cursor)", "logs",
        query=(LIMIT, *LOG_FILTERS,
               _q("after", STRING, "TIMESTAMP,REQUEST_ID: the page after this row."),
               _q("feedback", BOOLEAN, "Include each request's feedback.")),
        response=obj(["deployment", "requests"], deployment=STRING, requests=array(OBJECT))),
    ("GET", "/api/deployments/{name}/logs/export"): Op(
        "The request log as a file: JSON lines, CSV or Parquet", "logs",
        query=(_q("format", {"enum": ["jsonl", "csv", "parquet"]}), *LOG_FILTERS),
        response=None, response_type="application/x-ndjson",
        also=("text/csv", "application/vnd.apache.parquet")),
    ("GET", "/api/deployments/{name}/metrics"): Op(
        "Requests, errors, latency and feedback per time bucket", "logs",
        query=(_q("since", TIME), _q("until", TIME),
               _q("bucket", STRING, "Bucket width ('5m'), at least 60 seconds.")),
        response=obj(["deployment", "since", "until", "bucket", "versions"],
                     deployment=STRING, since=NUMBER, until=NUMBER, bucket=INTEGER,
                     versions=array(OBJECT))),
    # ---------------------------------------------------------------- artifacts, runtime
    ("POST", "/api/artifacts/missing"): Op(
        "Which of these artifacts the server lacks", "artifacts", scope="deploy",
        body=obj(["hashes"], hashes=array({"type": "string", "pattern": "^[0-9a-f]{64}$"})),
        response=obj(["missing"], missing=array(STRING))),
    ("PUT", "/api/artifacts/{digest}"): Op(
        "Upload an artifact (named by its SHA-256)", "artifacts", scope="deploy",
        body={"type": "string", "format": "binary"}, body_type="application/octet-stream",
        ok=201, response=obj(["sha256", "bytes"], sha256=STRING, bytes=INTEGER)),
    ("GET", "/api/artifacts/{digest}"): Op(
        "An artifact's bytes", "artifacts", scope="deploy", response=None,
        response_type="application/octet-stream"),
    ("GET", "/api/runtime"): Op("Worker pools and the request-log writer", "runtime",
                                response=obj(["pools", "events"], pools=array(OBJECT),
                                             events=OBJECT)),
    ("GET", "/api/environments"): Op("Per-version environments built here", "runtime",
                                     response=obj(["environments"],
                                                  environments=array(OBJECT))),
    # ---------------------------------------------------------------- experiments
    ("GET", "/api/strategies"): Op("The registered strategies and their settings", "experiments",
                                   response=obj(["strategies"], strategies=array(OBJECT))),
    ("POST", "/api/experiments"): Op(
        "Create an experiment on an endpoint", "experiments", ok=201,
        body=obj(["endpoint", "variants"], endpoint=STRING, strategy=STRING,
                 variants=OBJECT, control=STRING, start=BOOLEAN),
        response=EXPERIMENT,
        links={name: {"operationId": op_id, "parameters": {"id": "$response.body#/id"}}
               for name, op_id in (("GetExperiment", "get_api_experiments_id"),
                                   ("UpdateExperiment", "patch_api_experiments_id"),
                                   ("Report", "get_api_experiments_id_report"),
                                   ("Timeline", "get_api_experiments_id_timeline"),
                                   ("Reweight", "post_api_experiments_id_weights"),
                                   ("Transition", "post_api_experiments_id_action"))}),
    ("GET", "/api/experiments"): Op(
        "Find experiments", "experiments",
        query=(_q("endpoint", STRING),
               _q("status", {"enum": ["draft", "running", "paused", "stopped"]})),
        response=obj(["experiments"], experiments=array(EXPERIMENT))),
    ("GET", "/api/experiments/{id}"): Op("An experiment and its history", "experiments",
                                         response=EXPERIMENT),
    ("PATCH", "/api/experiments/{id}"): Op(
        "Add or remove variants, change settings", "experiments", body=OBJECT,
        response=EXPERIMENT),
    ("GET", "/api/experiments/{id}/report"): Op("The experiment's report", "experiments",
                                                response=REPORT),
    ("GET", "/api/experiments/{id}/timeline"): Op(
        "The points the controller kept", "experiments",
        query=(_q("since", NUMBER, "Unix time."),),
        response=obj(["experiment", "points"], experiment=STRING, points=array(OBJECT))),
    ("POST", "/api/experiments/{id}/weights"): Op(
        "Set the variants' weights", "experiments", response=EXPERIMENT,
        body=obj(["weights"], weights={"type": "object",
                                       "additionalProperties": NUMBER}, reason=STRING)),
    ("PUT", "/api/experiments/{id}/weights"): Op(
        "Set the variants' weights", "experiments", response=EXPERIMENT,
        body=obj(["weights"], weights={"type": "object",
                                       "additionalProperties": NUMBER}, reason=STRING)),
    ("POST", "/api/experiments/{id}/{action}"): Op(
        "start, pause, resume, stop, promote or roll back", "experiments",
        body=obj([], reason=STRING, variant=STRING, decision=ANY), body_required=False),
    # ---------------------------------------------------------------- tokens, audit
    ("POST", "/api/tokens"): Op(
        "Create a token (its secret is in this answer only)", "tokens", ok=201,
        body=obj(["name", "scopes"], name=STRING,
                 scopes=array({"enum": ["admin", "deploy", "infer", "feedback"]}),
                 rate_limit=nullable(NUMBER)),
        response={**TOKEN, "required": ["name", "scopes", "token"],
                  "properties": {**TOKEN["properties"], "token": STRING}},
        links={"Revoke": {"operationId": "delete_api_tokens_name",
                          "parameters": {"name": "$response.body#/name"}}}),
    ("GET", "/api/tokens"): Op("List tokens (never their secrets)", "tokens",
                               query=(_q("revoked", BOOLEAN, "Include revoked tokens."),),
                               response=obj(["tokens"], tokens=array(TOKEN))),
    ("DELETE", "/api/tokens/{name}"): Op("Revoke a token", "tokens",
                                         response=obj(["revoked"], revoked=STRING)),
    ("GET", "/api/audit"): Op(
        "The audit log: every admin action, with the token that made it", "tokens",
        query=(LIMIT, _q("token", STRING, "Only this token's actions."),
               _q("since", TIME)),
        response=obj(["audit"], audit=array(AUDIT_ROW))),
    # ---------------------------------------------------------------- dashboard
    ("POST", "/api/ui/sign-in-link"): Op(
        "A one-time link that signs a browser in to the dashboard", "dashboard", ok=201,
        body=obj([], expires_in=NUMBER), body_required=False,
        response=obj(["path", "expires_at"], path=STRING, expires_at=NUMBER)),
    ("GET", "/"): Op("Redirect to the dashboard", "dashboard", scope="", ok=307,
                     response=None),
    ("GET", "/ui"): Op("Redirect to the dashboard", "dashboard", scope="", ok=307,
                       response=None),
    ("GET", "/ui/"): UI_PAGE,
    ("GET", "/ui/login"): UI_PAGE,
    ("POST", "/ui/login"): UI_ACTION,
    ("POST", "/ui/logout"): UI_ACTION,
    ("GET", "/ui/deployments/{name}"): UI_PAGE,
    ("POST", "/ui/deployments/{name}/promote"): UI_ACTION,
    ("POST", "/ui/deployments/{name}/rollback"): UI_ACTION,
    ("POST", "/ui/deployments/{name}/alias"): UI_ACTION,
    ("GET", "/ui/experiments"): UI_PAGE,
    ("GET", "/ui/experiments/{id}"): UI_PAGE,
    ("POST", "/ui/experiments/{id}/{action}"): UI_ACTION,
    ("GET", "/ui/static/{path}"): Op("The dashboard's static files", "dashboard", scope="",
                                     response=None, response_type="application/octet-stream"),
    ("GET", "/ui/{rest}"): UI_PAGE,
}

SCOPE_TEXT = {
    "": "Anyone.",
    "infer": "Anyone, unless the server runs with --require-auth: then a token with scope "
             "'infer' (or 'admin').",
    "feedback": "Anyone, unless the server runs with --require-auth: then a token with "
                "scope 'feedback' (or 'admin').",
    "deploy": "A token with scope 'deploy' (or 'admin').",
    "admin": "A token with scope 'admin'.",
}
_PARAM = re.compile(r"{([^}:]+)(?::[^}]*)?}")


def route_table(routes: Iterable[BaseRoute], prefix: str = "") -> list[tuple[str, str]]:
    """(method, OpenAPI path) of every route: the app's own table, mounts included."""
    out: list[tuple[str, str]] = []
    for route in routes:
        if isinstance(route, Route):
            path = _PARAM.sub(r"{\1}", prefix + route.path)
            out.extend((m, path) for m in sorted(route.methods or ()) if m != "HEAD")
        elif isinstance(route, Mount):
            sub = getattr(route.app, "routes", None)
            if sub is not None:
                out.extend(route_table(sub, prefix + route.path))
            else:  # a static-files app: any path below it
                out.append(("GET", _PARAM.sub(r"{\1}", prefix + route.path) + "/{path}"))
    return out


def operation_id(method: str, path: str) -> str:
    """``get_api_experiments_id`` for GET /api/experiments/{id}; unique per route."""
    slug = re.sub(r"[^a-z0-9]+", "_", path.lower()).strip("_") or "root"
    if path.endswith("/") and path != "/":
        slug += "_index"
    return f"{method.lower()}_{slug}"


def _operation(method: str, path: str, op: Op) -> dict[str, Any]:
    params: list[dict[str, Any]] = [
        {"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
        for p in _PARAM.findall(path)]
    params += [{"name": q.name, "in": "query", "required": False, "schema": q.schema,
                **({"description": q.description} if q.description else {})}
               for q in op.query]
    out: dict[str, Any] = {
        "operationId": operation_id(method, path),
        "summary": op.summary,
        "tags": [op.tag],
        "description": f"Who may call it: {SCOPE_TEXT[op.scope]}",
        "x-champion-scope": op.scope or None,
    }
    if params:
        out["parameters"] = params
    if op.body is not None:
        out["requestBody"] = {"required": op.body_required,
                              "content": {op.body_type: {"schema": op.body}}}
    ok: dict[str, Any] = {"description": "Success"}
    if op.response is not None:
        ok["content"] = {op.response_type: {"schema": op.response}}
    elif op.response_type != JSON and op.ok < 300:
        ok["content"] = {t: {} for t in (op.response_type, *op.also)}
    if op.links:
        ok["links"] = op.links
    out["responses"] = {
        str(op.ok): ok,
        "default": {"description": "An error, in the one error shape",
                    "content": {JSON: {"schema": op.errors}}} if op.errors is not None else
                   {"description": "An error page, or a redirect to sign in (a path no "
                                   "route matches: the one error shape)",
                    "content": {HTML: {}, JSON: {"schema": ERROR}}},
    }
    if op.scope == "":
        out["security"] = []
    elif op.scope in ("infer", "feedback"):
        out["security"] = [{}, {"bearer": []}, {"token_header": []}]
    return out


def document(routes: Iterable[BaseRoute]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of these routes; a route without an :data:`OPERATIONS` entry
    is left out (and the route-coverage test names it)."""
    paths: dict[str, dict[str, Any]] = {}
    for method, path in route_table(routes):
        op = OPERATIONS.get((method, path))
        if op is not None:
            paths.setdefault(path, {})[method.lower()] = _operation(method, path, op)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "champion",
            "version": __version__,
            "description": "Versioned REST endpoints for Python models, and experiments on "
                           "live traffic. Errors answer {\"error\": {\"type\", \"message\", "
                           "\"request_id\"}}. See docs/inference-api.md and docs/security.md.",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer",
                           "description": "Authorization: Bearer TOKEN (the admin token or "
                                          "a scoped token; the token alone works too)"},
                "token_header": {"type": "apiKey", "in": "header",
                                 "name": "X-Champion-Token"},
            },
            "schemas": {"Error": ERROR},
        },
        "security": [{"bearer": []}, {"token_header": []}],
    }


def markdown(doc: dict[str, Any]) -> str:
    """docs/api.md: the document as a reference page (``python -m champion.server.openapi``
    writes it; tests/unit/test_openapi.py keeps it in step)."""
    lines = [
        "# HTTP API reference",
        "",
        "<!-- generated by `python -m champion.server.openapi > docs/api.md`; do not edit -->",
        "",
        "Every route of the server, from the OpenAPI 3.1 document it serves at "
        "`/openapi.json` (load it in any OpenAPI viewer or client generator). Every error "
        "answers `{\"error\": {\"type\": ..., \"message\": ..., \"request_id\": ...}}` "
        "(see [the inference API](inference-api.md#errors)); who may call what is in "
        "[Security](security.md#token-scopes).",
        "",
    ]
    by_tag: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
    for path, methods in doc["paths"].items():
        for method, op in methods.items():
            by_tag.setdefault(op["tags"][0], []).append((method.upper(), path, op))
    for tag, ops in by_tag.items():
        lines += [f"## {tag}", "", "| route | what | who | success |", "|---|---|---|---|"]
        for method, path, op in ops:
            scope = op["x-champion-scope"] or "anyone"
            ok = next(k for k in op["responses"] if k != "default")
            lines.append(f"| `{method} {path}` | {op['summary']} | {scope} | {ok} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    from champion.server.app import create_app
    from champion.settings import Config

    print(markdown(document(create_app(Config()).app.routes)), end="")  # type: ignore[attr-defined]
