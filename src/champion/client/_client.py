"""The Python client: talks to a champion server over HTTP only."""

from __future__ import annotations

import getpass
import hashlib
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

from champion.capture import capture
from champion.errors import Unavailable, error_from_response

DEFAULT_URL = "http://127.0.0.1:8000"
_UNSET: Any = object()


@dataclass
class DeployedVersion:
    """What a deploy created."""

    deployment: str
    version: int
    url: str
    endpoint: str
    production: bool
    aliases: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    load_seconds: float = 0.0

    def __str__(self) -> str:
        return f"{self.deployment}:{self.version}"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _find_token() -> str | None:
    token = os.environ.get("CHAMPION_TOKEN")
    if token:
        return token
    home = Path(os.environ.get("CHAMPION_HOME", "./champion-data"))
    path = home / "token"
    return path.read_text().strip() if path.is_file() else None


class Client:
    """A connection to one champion server.

    ``url`` defaults to ``$CHAMPION_URL`` or http://127.0.0.1:8000; ``token`` to
    ``$CHAMPION_TOKEN`` or the token file of a local data directory.
    """

    def __init__(self, url: str | None = None, token: str | None = None, *,
                 timeout: float = 120.0, user: str | None = None) -> None:
        self.url = (url or os.environ.get("CHAMPION_URL") or DEFAULT_URL).rstrip("/")
        self.token = token if token is not None else _find_token()
        headers = {"x-champion-user": user or _user()}
        if self.token:
            headers["authorization"] = f"Bearer {self.token}"
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ transport

    def _request(self, method: str, path: str, *, json: Any = None,
                 content: bytes | None = None, params: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None) -> Any:
        body = content
        hdrs = dict(headers or {})
        if json is not None:
            body = orjson.dumps(json, option=orjson.OPT_SERIALIZE_NUMPY)
            hdrs["content-type"] = "application/json"
        try:
            resp = self._http.request(method, path, content=body, params=params, headers=hdrs)
        except httpx.TransportError as exc:
            raise Unavailable(f"cannot reach the champion server at {self.url}: {exc}") from None
        try:
            data = orjson.loads(resp.content) if resp.content else None
        except orjson.JSONDecodeError:
            data = resp.text
        if resp.status_code >= 400:
            raise error_from_response(resp.status_code, data)
        return data

    # ------------------------------------------------------------------ deploy

    def deploy(
        self,
        fn: Callable[..., Any],
        name: str | None = None,
        *,
        python_packages: Iterable[str] | None = None,
        extra_files: Iterable[str | Path] | dict[str, str | Path] | None = None,
        workers: int | None = None,
        timeout: float | None = None,
        idle_timeout: float | None = None,
        batch_max_size: int | None = None,
        batch_max_wait_ms: float | None = None,
        validate: bool = True,
        root: str | Path | None = None,
    ) -> DeployedVersion:
        """Deploy ``fn`` as the next version of ``name`` (default: the function's name).

        ``batch_max_size`` > 1 turns on adaptive micro-batching: ``fn`` then takes a list of
        inputs and returns a list of outputs, and concurrent requests share calls.
        """
        cap = capture(fn, python_packages=python_packages, extra_files=extra_files, root=root)
        blobs: dict[str, bytes] = {}
        values = {}
        for key, data in cap.values.items():
            values[key] = digest = sha256(data)
            blobs[digest] = data
        files = {}
        for path, data in cap.files.items():
            files[path] = digest = sha256(data)
            blobs[digest] = data
        function_pickle = None
        if cap.function_pickle is not None:
            function_pickle = sha256(cap.function_pickle)
            blobs[function_pickle] = cap.function_pickle
        if blobs:
            missing = self._request("POST", "/api/artifacts/missing",
                                    json={"hashes": list(blobs)})["missing"]
            for digest in missing:
                self._request("PUT", f"/api/artifacts/{digest}", content=blobs[digest],
                              headers={"content-type": "application/octet-stream"})
        manifest = {
            "function_name": cap.function_name,
            "imports": cap.imports,
            "helpers": cap.helpers,
            "values": values,
            "value_types": cap.value_types,
            "files": files,
            "function_pickle": function_pickle,
            "packages": cap.packages,
            "modules": cap.modules,
            "python_version": cap.python_version,
            "signature": cap.signature,
        }
        config = {"workers": workers, "timeout": timeout, "idle_timeout": idle_timeout,
                  "batch_max_size": batch_max_size, "batch_max_wait_ms": batch_max_wait_ms}
        name = name or cap.function_name
        reply = self._request(
            "POST",
            f"/api/deployments/{name}/versions",
            json={
                "manifest": manifest,
                "source": cap.source,
                "config": {k: v for k, v in config.items() if v is not None},
                "validate": validate,
            },
        )
        return DeployedVersion(
            deployment=reply["deployment"],
            version=reply["version"],
            url=self.url + reply["url"],
            endpoint=self.url + reply["endpoint"],
            production=reply["production"],
            aliases=reply.get("aliases", []),
            warnings=cap.warnings + reply.get("warnings", []),
            load_seconds=reply.get("load_seconds", 0.0),
        )

    # ------------------------------------------------------------------ inference

    def get_inference(self, deployment: str, data: Any, *, version: int | str | None = None,
                      unit: str | None = None, batch: bool | None = None) -> dict[str, Any]:
        """Call an endpoint (or one version / alias) and return the whole response."""
        path = f"/v1/{deployment}" + (f"/{version}" if version is not None else "")
        body: dict[str, Any] = {"data": data}
        if batch is not None:
            body["batch"] = batch
        headers = {"x-champion-unit": unit} if unit is not None else None
        result: dict[str, Any] = self._request("POST", path, json=body, headers=headers)
        return result

    def predict(self, deployment: str, data: Any, *, version: int | str | None = None,
                unit: str | None = None, batch: bool | None = None) -> Any:
        """Call an endpoint and return just the function's answer."""
        return self.get_inference(deployment, data, version=version, unit=unit,
                                  batch=batch)["data"]

    # ------------------------------------------------------------------ registry

    def deployments(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._request("GET", "/api/deployments")["deployments"]
        return result

    def deployment(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self._request("GET", f"/api/deployments/{name}")
        return result

    def versions(self, name: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._request(
            "GET", f"/api/deployments/{name}/versions")["versions"]
        return result

    def version(self, name: str, version: int | str = "latest") -> dict[str, Any]:
        result: dict[str, Any] = self._request(
            "GET", f"/api/deployments/{name}/versions/{version}")
        return result

    def promote(self, name: str, version: int) -> dict[str, Any]:
        result: dict[str, Any] = self._request(
            "POST", f"/api/deployments/{name}/promote", json={"version": version})
        return result

    def rollback(self, name: str, version: int | None = None) -> dict[str, Any]:
        body = {"version": version} if version is not None else {}
        result: dict[str, Any] = self._request(
            "POST", f"/api/deployments/{name}/rollback", json=body)
        return result

    def set_alias(self, name: str, alias: str, version: int) -> dict[str, Any]:
        result: dict[str, Any] = self._request(
            "PUT", f"/api/deployments/{name}/aliases/{alias}", json={"version": version})
        return result

    def delete_alias(self, name: str, alias: str) -> None:
        self._request("DELETE", f"/api/deployments/{name}/aliases/{alias}")

    def delete(self, name: str) -> None:
        self._request("DELETE", f"/api/deployments/{name}")

    def configure(self, name: str, **settings: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._request(
            "PATCH", f"/api/deployments/{name}", json=settings)["config"]
        return result

    def history(self, name: str, limit: int = 100) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._request(
            "GET", f"/api/deployments/{name}/history", params={"limit": limit})["history"]
        return result

    def logs(self, name: str, *, limit: int = 100, since: str | float | None = None,
             until: str | float | None = None, after: str | None = None,
             version: int | None = None, status: int | None = None,
             experiment: str | None = None, unit: str | None = None,
             feedback: bool = False) -> list[dict[str, Any]]:
        """Newest requests first (oldest first after ``after``), optionally with feedback."""
        params: dict[str, Any] = {"limit": limit}
        for key, value in (("since", since), ("until", until), ("after", after),
                           ("version", version), ("status", status),
                           ("experiment", experiment), ("unit", unit)):
            if value is not None:
                params[key] = value
        if feedback:
            params["feedback"] = "true"
        result: list[dict[str, Any]] = self._request(
            "GET", f"/api/deployments/{name}/logs", params=params)["requests"]
        return result


    # ------------------------------------------------------------------ feedback and metrics

    def feedback(
        self,
        deployment: str,
        request_id: str | None = None,
        *,
        reward: float | None = None,
        metric: str | None = None,
        value: float | None = None,
        label: Any = _UNSET,
        clicks: list[Any] | None = None,
        unit: str | None = None,
        event_id: str | None = None,
        items: list[dict[str, Any]] | None = None,
        atomic: bool = False,
    ) -> dict[str, Any]:
        """Report an outcome for a request (or a unit), or a list of them with ``items``.

        ``champion.feedback("churn", rid, reward=1)``,
        ``champion.feedback("churn", rid, metric="revenue", value=9.5)``,
        ``champion.feedback("churn", rid, label=1)``,
        ``champion.feedback("churn", unit="user-7", metric="revenue", value=3)``.
        Retrying is safe: per (request id, metric) only the first counts.
        """
        params = {"atomic": "true"} if atomic else None
        if items is not None:
            result: dict[str, Any] = self._request(
                "POST", f"/v1/{deployment}/feedback", json=items, params=params)
            return result
        item: dict[str, Any] = {}
        if request_id is not None:
            item["request_id"] = request_id
        if unit is not None:
            item["unit"] = unit
        if event_id is not None:
            item["event_id"] = event_id
        if reward is not None:
            item["reward"] = reward
        if metric is not None:
            item["metric"] = metric
            item["value"] = value
        if label is not _UNSET:
            item["label"] = label
        if clicks is not None:
            item["clicks"] = clicks
        result = self._request("POST", f"/v1/{deployment}/feedback", json=item, params=params)
        return result

    def metrics(self, deployment: str, *, since: str | float | None = None,
                until: str | float | None = None, bucket: str | int | None = None
                ) -> dict[str, Any]:
        """Per version and time bucket: requests, errors, latency, feedback, accuracy."""
        params = {k: v for k, v in (("since", since), ("until", until), ("bucket", bucket))
                  if v is not None}
        result: dict[str, Any] = self._request(
            "GET", f"/api/deployments/{deployment}/metrics", params=params)
        return result

    def export_logs(self, deployment: str, path: str | Path, *, format: str = "jsonl",
                    **filters: Any) -> int:
        """Write the request log (joined with feedback) to ``path``; returns bytes written."""
        params = {"format": format, **{k: v for k, v in filters.items() if v is not None}}
        written = 0
        try:
            with self._http.stream("GET", f"/api/deployments/{deployment}/logs/export",
                                   params=params) as resp:
                if resp.status_code >= 400:
                    resp.read()
                    raise error_from_response(resp.status_code, orjson.loads(resp.content))
                with open(path, "wb") as out:
                    for chunk in resp.iter_bytes():
                        out.write(chunk)
                        written += len(chunk)
        except httpx.TransportError as exc:
            raise Unavailable(f"cannot reach the champion server at {self.url}: {exc}") from None
        return written


    # ------------------------------------------------------------------ experiments

    def create_experiment(
        self,
        endpoint: str,
        strategy: str = "ab",
        variants: dict[str, str | int] | None = None,
        *,
        weights: dict[str, float] | None = None,
        control: str | None = None,
        name: str | None = None,
        metrics: dict[str, Any] | None = None,
        auto: bool | dict[str, Any] = False,
        alpha: float = 0.05,
        shadow_percent: float | None = None,
        salt: str | None = None,
        start: bool = True,
        **settings: dict[str, Any],
    ) -> dict[str, Any]:
        """Attach an experiment to an endpoint (started unless ``start=False``).

        ``variants`` maps variant names to versions: ``{"control": "churn:1",
        "candidate": "churn:2"}`` (a number means a version of the endpoint; an alias is
        pinned to the version it names now). ``metrics``: ``{"primary": "reward",
        "guardrails": [{"metric": "error_rate", "bad": "increase"}], "covariate": "pre"}``.
        The strategy's own settings go under its name: ``canary={"steps": [5, 25, 50, 100]}``,
        ``shadow={"percent": 10}``, ``bandit={...}``, ``interleave={...}``
        (``champion experiment strategies`` lists them with their defaults).
        """
        body: dict[str, Any] = {"endpoint": endpoint, "strategy": strategy,
                                "variants": variants or {}, "alpha": alpha, "start": start}
        for key, value in (("weights", weights), ("control", control), ("name", name),
                           ("metrics", metrics), ("salt", salt)):
            if value is not None:
                body[key] = value
        if auto:
            body["auto"] = auto if isinstance(auto, dict) else {"enabled": True}
        if shadow_percent is not None:
            settings = {**settings, "shadow": {**settings.get("shadow", {}),
                                               "percent": shadow_percent}}
        for key, value in settings.items():
            if not isinstance(value, dict):
                raise TypeError(f"create_experiment: {key}= takes the strategy's settings "
                                "as a dict")
            body[key] = value
        result: dict[str, Any] = self._request("POST", "/api/experiments", json=body)
        return result

    def strategies(self) -> list[dict[str, Any]]:
        """The server's strategies, each with its settings (name, type, default, help)."""
        result: list[dict[str, Any]] = self._request("GET", "/api/strategies")["strategies"]
        return result

    def apply_experiment(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Create an experiment from a declarative spec (the body of POST /api/experiments)."""
        result: dict[str, Any] = self._request("POST", "/api/experiments", json=spec)
        return result

    def experiments(self, endpoint: str | None = None,
                    status: str | None = None) -> list[dict[str, Any]]:
        params = {k: v for k, v in (("endpoint", endpoint), ("status", status)) if v}
        result: list[dict[str, Any]] = self._request(
            "GET", "/api/experiments", params=params)["experiments"]
        return result

    def experiment(self, experiment_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._request("GET", f"/api/experiments/{experiment_id}")
        return result

    def _transition(self, experiment_id: str, action: str, body: dict[str, Any]
                    ) -> dict[str, Any]:
        result: dict[str, Any] = self._request(
            "POST", f"/api/experiments/{experiment_id}/{action}", json=body)
        return result

    def start_experiment(self, experiment_id: str, reason: str = "") -> dict[str, Any]:
        return self._transition(experiment_id, "start", {"reason": reason})

    def pause_experiment(self, experiment_id: str, reason: str = "") -> dict[str, Any]:
        return self._transition(experiment_id, "pause", {"reason": reason})

    def resume_experiment(self, experiment_id: str, reason: str = "") -> dict[str, Any]:
        return self._transition(experiment_id, "resume", {"reason": reason})

    def stop_experiment(self, experiment_id: str, promote: str | None = None,
                        reason: str = "") -> dict[str, Any]:
        """Stop; ``promote`` names the variant whose version becomes ``production``."""
        decision: Any = {"promote": promote} if promote else "keep"
        return self._transition(experiment_id, "stop", {"reason": reason,
                                                        "decision": decision})

    def promote_experiment(self, experiment_id: str, variant: str | None = None,
                           reason: str = "") -> dict[str, Any]:
        """Stop and promote ``variant`` (default: the strategy's candidate, e.g. a canary's)."""
        body: dict[str, Any] = {"reason": reason}
        if variant is not None:
            body["variant"] = variant
        return self._transition(experiment_id, "promote", body)

    def rollback_experiment(self, experiment_id: str, reason: str = "") -> dict[str, Any]:
        """Stop now; ``production`` stays where it is."""
        return self._transition(experiment_id, "rollback", {"reason": reason})

    def timeline(self, experiment_id: str, since: float | None = None) -> list[dict[str, Any]]:
        """The experiment's timeline: the points the controller kept while it ran."""
        params = {"since": since} if since is not None else None
        result: list[dict[str, Any]] = self._request(
            "GET", f"/api/experiments/{experiment_id}/timeline", params=params)["points"]
        return result

    def reweight(self, experiment_id: str, weights: dict[str, float],
                 reason: str = "") -> dict[str, Any]:
        """New A/B weights; only the share of units that must move changes variant."""
        result: dict[str, Any] = self._request(
            "POST", f"/api/experiments/{experiment_id}/weights",
            json={"weights": weights, "reason": reason})
        return result

    def update_experiment(self, experiment_id: str, *,
                          add_variants: dict[str, str | int] | None = None,
                          remove_variants: list[str] | None = None, reason: str = "",
                          **settings: dict[str, Any]) -> dict[str, Any]:
        """Change an experiment while it exists, as far as its strategy allows: add
        variants (``{"c": "churn:3"}``), remove some (a bandit stops routing to them),
        change the strategy's settings, e.g. ``bandit={"min_share": 0.05}``."""
        body: dict[str, Any] = {"reason": reason}
        if add_variants:
            body["add_variants"] = add_variants
        if remove_variants:
            body["remove_variants"] = list(remove_variants)
        for key, value in settings.items():
            if not isinstance(value, dict):
                raise TypeError(f"update_experiment: {key}= takes the strategy's settings "
                                "as a dict")
            body[key] = value
        result: dict[str, Any] = self._request(
            "PATCH", f"/api/experiments/{experiment_id}", json=body)
        return result

    def report(self, experiment_id: str) -> dict[str, Any]:
        """The experiment's statistics: per-variant metrics, lifts, p-values, SRM, decision."""
        result: dict[str, Any] = self._request(
            "GET", f"/api/experiments/{experiment_id}/report")
        return result


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"


# ---------------------------------------------------------------------- module-level API

_default: Client | None = None


def connect(url: str | None = None, token: str | None = None, **kwargs: Any) -> Client:
    """Set (and return) the client the module-level functions use."""
    global _default
    if _default is not None:
        _default.close()
    _default = Client(url, token, **kwargs)
    return _default


def _client() -> Client:
    global _default
    if _default is None:
        _default = Client()
    return _default


def deploy(fn: Callable[..., Any], name: str | None = None, **kwargs: Any) -> DeployedVersion:
    """Deploy ``fn`` as a new version; see Client.deploy."""
    return _client().deploy(fn, name, **kwargs)


def predict(deployment: str, data: Any, **kwargs: Any) -> Any:
    """Call an endpoint and return the function's answer; see Client.predict."""
    return _client().predict(deployment, data, **kwargs)


def get_inference(deployment: str, data: Any, **kwargs: Any) -> dict[str, Any]:
    """Call an endpoint and return the whole response (Modelbit's shape)."""
    return _client().get_inference(deployment, data, **kwargs)


def deployments() -> list[dict[str, Any]]:
    """List deployments with their production and latest versions."""
    return _client().deployments()


def versions(name: str) -> list[dict[str, Any]]:
    """List the versions of deployment ``name``."""
    return _client().versions(name)


def version(name: str, version: int | str = "latest") -> dict[str, Any]:
    """Inspect one version (number or alias): source, packages, values, aliases."""
    return _client().version(name, version)


def promote(name: str, version: int) -> dict[str, Any]:
    """Point the endpoint's ``production`` alias at ``version``."""
    return _client().promote(name, version)


def rollback(name: str, version: int | None = None) -> dict[str, Any]:
    """Move ``production`` back to the version it pointed at before (or to ``version``)."""
    return _client().rollback(name, version)


def set_alias(name: str, alias: str, version: int) -> dict[str, Any]:
    """Point a custom alias of ``name`` at ``version``."""
    return _client().set_alias(name, alias, version)


def feedback(deployment: str, request_id: str | None = None, **kwargs: Any) -> dict[str, Any]:
    """Report an outcome for a request or unit; see Client.feedback."""
    return _client().feedback(deployment, request_id, **kwargs)


def metrics(deployment: str, **kwargs: Any) -> dict[str, Any]:
    """Per-version metrics over time buckets; see Client.metrics."""
    return _client().metrics(deployment, **kwargs)


def create_experiment(endpoint: str, strategy: str = "ab",
                      variants: dict[str, str | int] | None = None,
                      **kwargs: Any) -> dict[str, Any]:
    """Attach an A/B or shadow experiment to an endpoint; see Client.create_experiment."""
    return _client().create_experiment(endpoint, strategy, variants, **kwargs)


def experiment_report(experiment_id: str) -> dict[str, Any]:
    """An experiment's statistics; see Client.report."""
    return _client().report(experiment_id)


def stop_experiment(experiment_id: str, promote: str | None = None,
                    reason: str = "") -> dict[str, Any]:
    """Stop an experiment, optionally promoting a variant; see Client.stop_experiment."""
    return _client().stop_experiment(experiment_id, promote, reason)


def delete(name: str) -> None:
    """Delete a deployment, its versions and aliases (its request log stays)."""
    _client().delete(name)


__all__ = [
    "Client",
    "DeployedVersion",
    "connect",
    "create_experiment",
    "delete",
    "deploy",
    "deployments",
    "experiment_report",
    "feedback",
    "get_inference",
    "metrics",
    "predict",
    "promote",
    "rollback",
    "set_alias",
    "stop_experiment",
    "version",
    "versions",
]
