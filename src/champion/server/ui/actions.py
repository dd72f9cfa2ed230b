"""What a person does from the dashboard: promote, roll back, move an alias; start, pause,
resume and stop an experiment.

Each is a form POST with the session's CSRF token. A POST without ``confirmed=yes`` changes
nothing and answers a page that asks for confirmation (the page's script asks in a dialog
instead, then sends ``confirmed=yes``). The change itself is the JSON API's own call, made in
process with the session (:mod:`.api`), so it is checked and recorded exactly as the API
records it, by "dashboard".
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from champion.server.ui.api import ApiError, call
from champion.server.ui.guard import action
from champion.server.ui.render import render, set_flash
from champion.server.ui.session import Session

EXPERIMENT_ACTIONS = ("start", "pause", "resume", "stop")


def _confirm(request: Request, session: Session, form: dict[str, str], title: str,
             question: str, back: str) -> Response:
    fields = {k: v for k, v in form.items() if k not in ("csrf", "confirmed")}
    return render(request, "confirm.html", {
        "page": "confirm", "title": title, "question": question, "fields": fields,
        "action": request.url.path, "back": back,
    }, session=session)


def _done(session: Session, back: str, level: str, text: str) -> Response:
    response = RedirectResponse(back, status_code=303, headers={"cache-control": "no-store"})
    set_flash(response, session, level, text)
    return response


async def _apply(request: Request, session: Session, back: str, method: str, path: str,
                 body: dict[str, Any], success: str) -> Response:
    try:
        await call(request, session, method, path, body=body)
    except ApiError as exc:
        if exc.status in (400, 404, 409):  # the caller's mistake: say so on the page
            return _done(session, back, "error", f"Nothing changed: {exc.message}")
        raise
    return _done(session, back, "success", success)


def _version(form: dict[str, str], key: str = "version") -> int | None:
    raw = form.get(key, "").strip()
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 9 else None


@action
async def promote(request: Request, session: Session, form: dict[str, str]) -> Response:
    name = request.path_params["name"]
    back = f"/ui/deployments/{name}#actions"
    version = _version(form)
    if version is None:
        return _done(session, back, "error", "Choose a version to promote.")
    reason = form.get("reason", "").strip()
    if form.get("confirmed") != "yes":
        return _confirm(request, session, form, "Promote",
                        f"Make version {version} of {name} the production version? Live "
                        f"traffic on /v1/{name} moves to it (unless an experiment runs).", back)
    return await _apply(request, session, back, "POST", f"/api/deployments/{name}/promote",
                        {"version": version, "reason": reason or "promote"},
                        f"Version {version} of {name} is now production.")


@action
async def rollback(request: Request, session: Session, form: dict[str, str]) -> Response:
    name = request.path_params["name"]
    back = f"/ui/deployments/{name}#actions"
    version = _version(form)
    if form.get("confirmed") != "yes":
        target = f"version {version}" if version else "the version it pointed at before"
        return _confirm(request, session, form, "Roll back",
                        f"Move production of {name} back to {target}?", back)
    body: dict[str, Any] = {} if version is None else {"version": version}
    try:
        result = await call(request, session, "POST", f"/api/deployments/{name}/rollback",
                            body=body)
    except ApiError as exc:
        if exc.status in (400, 404, 409):
            return _done(session, back, "error", f"Nothing changed: {exc.message}")
        raise
    return _done(session, back, "success",
                 f"Rolled back {name}: production is version {result['production']} "
                 f"(was {result['previous']}).")


@action
async def move_alias(request: Request, session: Session, form: dict[str, str]) -> Response:
    name = request.path_params["name"]
    back = f"/ui/deployments/{name}#actions"
    alias = form.get("alias", "").strip()
    version = _version(form)
    if not alias or version is None:
        return _done(session, back, "error", "Give an alias and a version.")
    if form.get("confirmed") != "yes":
        return _confirm(request, session, form, "Move an alias",
                        f"Point alias {alias!r} of {name} at version {version}?", back)
    return await _apply(request, session, back, "PUT",
                        f"/api/deployments/{name}/aliases/{alias}",
                        {"version": version, "reason": form.get("reason", "").strip()},
                        f"Alias {alias} of {name} now points at version {version}.")


@action
async def experiment(request: Request, session: Session, form: dict[str, str]) -> Response:
    exp_id = request.path_params["id"]
    verb = request.path_params["action"]
    back = f"/ui/experiments/{exp_id}"
    if verb not in EXPERIMENT_ACTIONS:
        return _done(session, back, "error", f"There is no action {verb!r}.")
    reason = form.get("reason", "").strip()
    body: dict[str, Any] = {"reason": reason}
    outcome = done = ""
    if verb == "stop":
        decision = form.get("decision", "keep")
        if decision.startswith("promote:"):
            variant = decision.removeprefix("promote:")
            body["decision"] = {"promote": variant}
            outcome, done = (f" and promote variant {variant}",
                             f"; variant {variant} is now production")
        else:
            body["decision"] = "keep"
            outcome, done = " and keep production as it is", "; production is unchanged"
    if form.get("confirmed") != "yes":
        why = f" Reason: {reason}" if reason else ""
        return _confirm(request, session, form, f"{verb.capitalize()} the experiment",
                        f"{verb.capitalize()} experiment {exp_id}{outcome}?{why}", back)
    past = {"start": "started", "pause": "paused", "resume": "resumed", "stop": "stopped"}
    return await _apply(request, session, back, "POST", f"/api/experiments/{exp_id}/{verb}",
                        body, f"Experiment {exp_id} {past[verb]}{done}.")
