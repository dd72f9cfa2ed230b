"""The Python client: talks to a champion server over HTTP only."""

from __future__ import annotations

import getpass
import hashlib
import inspect
import sys
import time
import warnings
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

from champion.capture import capture
from champion.capture.packages import requirement_lines
from champion.client import _modelbit as mb
from champion.client._modelbit import aim_modelbit_client
from champion.client.config import TOKEN_HELP, resolve
from champion.errors import (
    DeployError,
    Unauthorized,
    Unavailable,
    Unreachable,
    error_from_response,
)

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
    status: str = "ready"  # "building" after deploy(wait=False) of a version in its own env
    environment: dict[str, Any] | None = None  # its own environment, if it has one
    build_seconds: float | None = None

    def __str__(self) -> str:
        return f"{self.deployment}:{self.version}"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Client:
    """A connection to one champion server.

    ``url`` defaults to ``$CHAMPION_URL``, the server saved by ``champion login``, or
    http://127.0.0.1:8000 (``host:port`` is accepted); ``token`` to ``$CHAMPION_TOKEN``, the
    token saved by ``champion login`` for that URL, or the token file of the local data
    directory (``$CHAMPION_HOME``, default ./champion-data).
    """

    def __init__(self, url: str | None = None, token: str | None = None, *,
                 timeout: float = 120.0, user: str | None = None) -> None:
        found = resolve(url, token)
        self.url = found.url
        self.token = found.token
        self.token_source = found.token_source
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
                 headers: dict[str, str] | None = None, timeout: float | None = None) -> Any:
        body = content
        hdrs = dict(headers or {})
        if json is not None:
            body = orjson.dumps(json, option=orjson.OPT_SERIALIZE_NUMPY, default=_jsonable)
            hdrs["content-type"] = "application/json"
        extra: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
        try:
            resp = self._http.request(method, path, content=body, params=params, headers=hdrs,
                                      **extra)
        except httpx.TransportError as exc:
            raise self._transport_error(exc) from None
        try:
            data = orjson.loads(resp.content) if resp.content else None
        except orjson.JSONDecodeError:
            data = resp.text
        if resp.status_code >= 400:
            error = error_from_response(resp.status_code, data)
            if isinstance(error, Unauthorized) and self.token is None:
                error.message = f"{error.message}. No token was found here: {TOKEN_HELP}"
            raise error
        return data

    def _transport_error(self, exc: httpx.TransportError) -> Unavailable:
        if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)):
            reason = str(exc).split("] ")[-1] or type(exc).__name__
            return Unreachable(f"could not reach a champion server at {self.url} ({reason}): "
                               "is `champion serve` running there? Point elsewhere with "
                               "--url or CHAMPION_URL")
        if isinstance(exc, httpx.TimeoutException):
            return Unavailable(f"the champion server at {self.url} did not answer in time "
                               f"({type(exc).__name__})")
        return Unavailable(f"the connection to the champion server at {self.url} failed: "
                           f"{type(exc).__name__}: {exc}")

    # ------------------------------------------------------------------ deploy

    def deploy(
        self,
        fn: Callable[..., Any],
        name: str | None = None,
        *,
        python_packages: Iterable[str] | None = None,
        requirements_txt_path: str | Path | None = None,
        python_version: str | None = None,
        extra_files: Iterable[str | Path] | dict[str, str | Path] | None = None,
        dataframe_mode: bool = False,
        example_dataframe: Any = None,
        tags: Iterable[str] | None = None,
        environment: str = "auto",
        workers: int | None = None,
        max_workers: int | None = None,
        timeout: float | None = None,
        idle_timeout: float | None = None,
        batch_max_size: int | None = None,
        batch_max_wait_ms: float | None = None,
        validate: bool = True,
        wait: bool = True,
        progress: bool | Callable[[str], None] = True,
        root: str | Path | None = None,
        skip_extra_files_discovery: bool = False,
        skip_extra_files_dependencies: bool = False,
        **modelbit_keywords: Any,
    ) -> DeployedVersion:
        """Deploy ``fn`` as the next version of ``name`` (default: the function's name).

        ``python_packages`` (pins such as ``"pandas==2.2.0"``, added to the captured ones),
        or ``requirements_txt_path`` (a requirements file used as it is, instead of the
        captured pins), and ``python_version`` (``"3.12"``): a version whose packages or
        Python differ from the server's gets its own environment, built with uv; the deploy
        waits for it (``progress`` lines on stderr, or to a callable) unless ``wait=False``,
        which returns at once with ``status="building"``. ``environment="server"`` runs the
        version in the server's environment whatever it pins.

        ``dataframe_mode=True`` with ``example_dataframe=df``: the function takes one pandas
        DataFrame; a batch of ``[id, {column: value}]`` rows becomes one DataFrame with the
        example's columns and dtypes.

        ``max_workers`` above ``workers``: the version's workers grow up to that many while
        its calls queue and a core is idle, and shrink back when they are not needed
        (docs/runtime.md#autoscaling).

        ``batch_max_size`` > 1 turns on adaptive micro-batching: ``fn`` then takes a list of
        inputs and returns a list of outputs, and concurrent requests share calls.

        Modelbit's other ``deploy`` keywords (``system_packages``, ``base_image``,
        ``require_gpu``, ``setup``, ``common_files``, ``snowflake_*``) are accepted and
        ignored with a warning naming each.
        """
        ignored = mb.check_deploy_keywords(modelbit_keywords)
        if environment not in ("auto", "server"):
            raise ValueError("environment must be 'auto' or 'server'")
        if python_packages is not None and requirements_txt_path is not None:
            raise DeployError("cannot deploy: give python_packages or requirements_txt_path, "
                              "not both (the requirements file replaces the captured pins)")
        columns = None
        if dataframe_mode:
            columns = mb.dataframe_columns(example_dataframe)
            params = [p for p in inspect.signature(fn).parameters.values()
                      if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
            if len(params) != 1:
                raise DeployError("cannot deploy: in DataFrame mode the function takes exactly "
                                  f"one parameter (the DataFrame); it takes {len(params)}")
        cap = capture(fn, python_packages=python_packages, extra_files=extra_files, root=root,
                      discover_local_files=not skip_extra_files_discovery)
        requirements: list[str] | None
        if requirements_txt_path is not None:
            requirements = read_requirements(Path(requirements_txt_path))
        else:
            requirements = requirement_lines(cap.packages, list(python_packages or ()))
        manifest_extra: dict[str, Any] = {
            "requirements": requirements,
            "python_request": python_version,
            "environment_mode": environment,
            "tags": sorted(set(tags or ())),
        }
        if columns is not None:
            manifest_extra["dataframe"] = columns
            if not any(r.lower().startswith("pandas") for r in requirements):
                requirements.append(f"pandas=={_installed('pandas')}")
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
            **manifest_extra,
        }
        config = {"workers": workers, "max_workers": max_workers, "timeout": timeout,
                  "idle_timeout": idle_timeout,
                  "batch_max_size": batch_max_size, "batch_max_wait_ms": batch_max_wait_ms}
        version = self.deploy_manifest(
            name or cap.function_name, manifest, blobs, source=cap.source,
            config={k: v for k, v in config.items() if v is not None}, validate=validate,
            wait=wait, progress=progress)
        version.warnings[:0] = cap.warnings + ignored
        return version

    def deploy_manifest(self, name: str, manifest: dict[str, Any], blobs: dict[str, bytes], *,
                        source: str = "", config: dict[str, Any] | None = None,
                        origin: dict[str, Any] | None = None, validate: bool = True,
                        wait: bool = True, progress: bool | Callable[[str], None] = True
                        ) -> DeployedVersion:
        """Upload what the server lacks of ``blobs`` and create the version (the step after
        capture, shared by function and folder deploys)."""
        if blobs:
            missing = self._request("POST", "/api/artifacts/missing",
                                    json={"hashes": list(blobs)})["missing"]
            for digest in missing:
                self._request("PUT", f"/api/artifacts/{digest}", content=blobs[digest],
                              headers={"content-type": "application/octet-stream"})
        body: dict[str, Any] = {"manifest": manifest, "source": source,
                                "config": config or {}, "validate": validate}
        if origin is not None:
            body["origin"] = origin
        reply = self._request("POST", f"/api/deployments/{name}/versions", json=body)
        version = DeployedVersion(
            deployment=reply["deployment"],
            version=reply["version"],
            url=self.url + reply["url"],
            endpoint=self.url + reply["endpoint"],
            production=reply["production"],
            aliases=reply.get("aliases", []),
            warnings=list(reply.get("warnings", [])),
            load_seconds=reply.get("load_seconds", 0.0),
            status=reply.get("status", "ready"),
            environment=reply.get("environment"),
        )
        if version.status == "building" and wait:
            self.wait_for_build(version, progress=progress)
        return version

    def deploy_folder(
        self,
        path: str | Path,
        name: str | None = None,
        *,
        python_packages: Iterable[str] | None = None,
        workers: int | None = None,
        max_workers: int | None = None,
        timeout: float | None = None,
        idle_timeout: float | None = None,
        batch_max_size: int | None = None,
        validate: bool = True,
        wait: bool = True,
        progress: bool | Callable[[str], None] = True,
    ) -> DeployedVersion:
        """Deploy a folder in Modelbit's layout (source.py, metadata.yaml, requirements.txt,
        data/*.pkl, other files) as the next version of ``name`` (default: the folder's
        name). The version records the folder's git commit and whether it was dirty."""
        from champion.capture.folder import read_folder

        folder = read_folder(path, name, list(python_packages or ()))
        config = {"workers": workers, "max_workers": max_workers, "timeout": timeout,
                  "idle_timeout": idle_timeout,
                  "batch_max_size": batch_max_size}
        version = self.deploy_manifest(
            folder.name, folder.manifest, folder.blobs, source=folder.source,
            config={k: v for k, v in config.items() if v is not None}, origin=folder.origin,
            validate=validate, wait=wait, progress=progress)
        version.warnings[:0] = folder.warnings
        return version

    def artifact(self, digest: str) -> bytes:
        """An artifact's bytes, by SHA-256."""
        try:
            resp = self._http.get(f"/api/artifacts/{digest}")
        except httpx.TransportError as exc:
            raise Unavailable(f"cannot reach the champion server at {self.url}: {exc}") from None
        if resp.status_code >= 400:
            raise error_from_response(resp.status_code, orjson.loads(resp.content or b"null"))
        return resp.content

    def export(self, name: str, version: int | str, dest: str | Path, *,
               force: bool = False) -> Path:
        """Write a deployed version out as a deployment folder in Modelbit's layout."""
        from champion.capture.folder import folder_files, write_folder

        info = self.version(name, version)
        return write_folder(folder_files(info, self.artifact), dest, force=force)

    def build(self, name: str, version: int | str) -> dict[str, Any]:
        """The build of a version in its own environment: status, phase, log lines."""
        result: dict[str, Any] = self._request(
            "GET", f"/api/deployments/{name}/versions/{version}/build")
        return result

    def wait_for_build(self, version: DeployedVersion, *, timeout: float = 3600.0,
                       progress: bool | Callable[[str], None] = True) -> DeployedVersion:
        """Wait until a version's environment is built and loaded; DeployError if it fails."""
        say: Callable[[str], None] | None
        if callable(progress):
            say = progress
        elif progress:
            def say(line: str) -> None:
                print(f"champion: {version}: {line}", file=sys.stderr, flush=True)
        else:
            say = None
        shown = 0
        deadline = time.monotonic() + timeout
        delay = 0.1
        while True:
            try:
                job = self.build(version.deployment, version.version)
            except Unavailable:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1.0)
                continue
            lines = job.get("log") or []
            if say is not None:
                for line in lines[shown:] if len(lines) >= shown else lines:
                    say(line)
            shown = len(lines)
            if job["status"] != "building":
                break
            if time.monotonic() > deadline:
                raise DeployError(f"{version} is still building after {timeout:g} s")
            time.sleep(delay)
            delay = min(delay * 1.5, 1.0)
        version.status = job["status"]
        if job["status"] == "failed":
            raise DeployError(f"cannot deploy {version}: {job.get('message', '')}",
                              deployment=version.deployment, version=version.version)
        info = self.version(version.deployment, version.version)
        version.environment = info.get("environment")
        version.build_seconds = (version.environment or {}).get("build_seconds")
        return version

    # ------------------------------------------------------------------ inference

    def get_inference(
        self,
        deployment: str,
        data: Any,
        *,
        version: int | str | None = None,
        unit: str | None = None,
        batch: bool | None = None,
        branch: str | None = None,
        api_key: str | None = None,
        timeout_seconds: int | float | None = None,
        batch_size: int | None = None,
        batch_bytes: int | None = None,
        batch_concurrency: int | None = None,
        response_format: str | None = None,
        response_webhook: str | None = None,
        response_webhook_ignore_timeout: bool | None = None,
        region: str | None = None,
        workspace: str | None = None,
        outpost: str | None = None,
    ) -> dict[str, Any]:
        """Call an endpoint (or one version / alias) and return the whole response.

        Takes Modelbit's keywords too: ``branch`` (``"main"``; any other is a 404),
        ``api_key`` (sent as the token of this call), ``timeout_seconds`` (capped by the
        deployment's timeout), ``batch_size``/``batch_bytes``/``batch_concurrency``: a batch
        (a list of lists, or a pandas DataFrame, sent as ``[index, {column: value}]`` rows)
        longer than ``batch_size`` rows (3,000) or ``batch_bytes`` (20 MB) goes in chunks,
        ``batch_concurrency`` (3) at a time, and the answers are joined in order.
        ``region``, ``workspace`` and ``outpost`` name a Modelbit server; champion's is the
        one ``connect`` gave, so they are accepted and not used.
        """
        del region, workspace, outpost  # the server is the one this client connects to
        path = f"/v1/{deployment}"
        if branch not in (None, "main"):
            path += f"/{str(branch).replace('/', '~')}/{version or 'latest'}"
        elif version is not None:
            path += f"/{version}"
        extra: dict[str, Any] = {}
        for key, value in (("batch", batch), ("timeout_seconds", timeout_seconds),
                           ("response_format", response_format),
                           ("response_webhook", response_webhook),
                           ("response_webhook_ignore_timeout",
                            response_webhook_ignore_timeout)):
            if value is not None:
                extra[key] = value
        headers: dict[str, str] = {}
        if unit is not None:
            headers["x-champion-unit"] = unit
        if api_key is not None:
            headers["authorization"] = f"Bearer {api_key}"
        http_timeout = float(timeout_seconds) + 5 if timeout_seconds else None
        if mb.is_dataframe(data):
            data = mb.dataframe_rows(data)
        size = mb.positive_int("batch_size", batch_size, mb.DEFAULT_BATCH_SIZE)
        max_bytes = mb.positive_int("batch_bytes", batch_bytes, mb.DEFAULT_BATCH_BYTES)
        concurrency = mb.positive_int("batch_concurrency", batch_concurrency,
                                      mb.DEFAULT_BATCH_CONCURRENCY)

        def send(payload: Any) -> dict[str, Any]:
            result: dict[str, Any] = self._request(
                "POST", path, json={"data": payload, **extra}, headers=headers or None,
                timeout=http_timeout)
            return result

        if batch is False or not mb.can_chunk(data):
            return send(data)
        parts = list(mb.chunks(data, size, max_bytes))
        if len(parts) == 1:
            return send(parts[0])
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            answers = list(pool.map(send, parts))  # the first failure raises, in order
        joined: dict[str, Any] = {
            "data": [row for answer in answers for row in answer["data"]],
            "request_ids": [answer.get("request_id") for answer in answers],
        }
        variants = {answer.get("variant") for answer in answers}
        if len(variants) == 1:
            joined["variant"] = variants.pop()
        return joined

    def predict(self, deployment: str, data: Any, *, version: int | str | None = None,
                unit: str | None = None, batch: bool | None = None, **kwargs: Any) -> Any:
        """Call an endpoint and return just the function's answer."""
        return self.get_inference(deployment, data, version=version, unit=unit,
                                  batch=batch, **kwargs)["data"]

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

    def create_token(self, name: str, scopes: list[str] | str, *,
                     rate_limit: float | None = None) -> dict[str, Any]:
        """A new scoped token; its secret (``["token"]``) is in this answer only."""
        body = {"name": name, "scopes": [scopes] if isinstance(scopes, str) else list(scopes),
                "rate_limit": rate_limit}
        result: dict[str, Any] = self._request("POST", "/api/tokens", json=body)
        return result

    def tokens(self, *, revoked: bool = False) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._request(
            "GET", "/api/tokens", params={"revoked": "1"} if revoked else None)["tokens"]
        return result

    def revoke_token(self, name: str) -> None:
        self._request("DELETE", f"/api/tokens/{name}")

    def audit(self, *, limit: int = 100, token: str | None = None,
              since: str | float | None = None) -> list[dict[str, Any]]:
        """The audit log, newest first: every admin action with the token that made it."""
        params = {k: v for k, v in {"limit": limit, "token": token, "since": since}.items()
                  if v is not None}
        result: list[dict[str, Any]] = self._request("GET", "/api/audit",
                                                     params=params)["audit"]
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
        ``champion.feedback("churn", unit="user-7", metric="revenue", value=3)``,
        ``champion.feedback("search", rid, clicks=["sku-3", {"item": "sku-9", "weight": 9.5}])``
        (item ids, 0-based positions or weighted objects; ``event_id`` lets one answer's
        clicks arrive one post at a time).
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
            raise self._transport_error(exc) from None
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


def _jsonable(obj: Any) -> Any:
    """What orjson cannot write itself: pandas and numpy leftovers, sets, dates."""
    for attr in ("tolist", "item", "isoformat"):
        method = getattr(obj, attr, None)
        if callable(method):
            return method()
    if isinstance(obj, (set, frozenset)):
        return list(obj)
    return str(obj)


def _installed(dist: str) -> str:
    import importlib.metadata

    return importlib.metadata.version(dist)


def read_requirements(path: Path) -> list[str]:
    """A requirements file's lines, without comments and blanks (``-r`` includes refused)."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise DeployError(f"cannot read requirements file {path}: {exc}") from None
    lines = []
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(("-r", "-c", "--requirement", "--constraint")):
            raise DeployError(f"{path}: includes ({line!r}) are not supported: list the "
                              "requirements in the file itself")
        lines.append(line)
    return lines


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
    if _default.token is None:
        warnings.warn(f"champion.connect({_default.url!r}): no admin token found; deploys and "
                      f"other admin calls will answer 401: {TOKEN_HELP}", stacklevel=2)
    return _default


def _client() -> Client:
    global _default
    if _default is None:
        _default = Client()
    return _default


def deploy(fn: Callable[..., Any], name: str | None = None, **kwargs: Any) -> DeployedVersion:
    """Deploy ``fn`` as a new version; see Client.deploy. Its warnings (a source that could
    not be read, a package version that differs on the server) are also issued as Python
    warnings, so that a notebook shows them."""
    version = _client().deploy(fn, name, **kwargs)
    for message in version.warnings:
        warnings.warn(message, UserWarning, stacklevel=2)
    return version


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
    "aim_modelbit_client",
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
