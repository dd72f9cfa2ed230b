"""Experiment reports for people: the terminal rendering used by ``champion experiment report``."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.table import Table


def _f(value: Any, spec: str = ".4g") -> str:
    return "-" if value is None else format(value, spec)


def _ci(effect: dict[str, Any] | None, spec: str = ".3g") -> str:
    if not effect or effect.get("estimate") is None:
        return "-"
    return (f"{effect['estimate']:{spec}} [{_f(effect.get('ci_low'), spec)}, "
            f"{_f(effect.get('ci_high'), spec)}]")


def render_report(data: dict[str, Any], console: Console) -> None:
    title = (f"{data['experiment']} ({data['strategy']} on {data['endpoint']}, "
             f"{data['status']})")
    console.print(f"[bold]{title}[/]", highlight=False)
    if data["strategy"] == "shadow":
        _render_shadow(data, console)
    else:
        _render_ab(data, console)


def _render_ab(data: dict[str, Any], console: Console) -> None:
    srm = data.get("srm") or {}
    if srm.get("fired"):
        console.print(Panel(srm.get("message", "SAMPLE RATIO MISMATCH"), style="bold red"))
    arms = Table("variant", "version", "weight", "units", "requests", "error rate", "p50 ms",
                 "p99 ms", title="variants")
    for arm in data.get("arms", []):
        lat = arm.get("latency_ms") or {}
        arms.add_row(arm["name"], data["variants"].get(arm["name"], ""),
                     _f(arm.get("weight"), ".0%"), str(arm.get("units")),
                     str(arm.get("requests")), _f(arm.get("error_rate"), ".2%"),
                     _f(lat.get("p50"), ".2f"), _f(lat.get("p99"), ".2f"))
    console.print(arms)
    comps = Table("variant", "metric", "control", "variant mean", "lift [95% CI]",
                  "relative lift", "p", "always-valid p", "P(beats control)",
                  title=f"against {data['control']}")
    for c in data.get("comparisons", []):
        seq = c.get("sequential") or {}
        comps.add_row(c["arm"], c["metric"], _f(c.get("control_mean")),
                      _f(c.get("treatment_mean")), _ci(c.get("absolute")),
                      _ci(c.get("relative"), ".2%"), _f(c.get("p_value"), ".3g"),
                      _f(seq.get("p_value"), ".3g"), _f(c.get("chance_to_beat_control"), ".1%"))
    console.print(comps)
    decision = data.get("decision") or {}
    winner = decision.get("winner")
    verdict = f"winner: [bold green]{winner}[/]" if winner else "no winner yet"
    console.print(f"{verdict}: {decision.get('reason', '')}", highlight=False)


def _render_shadow(data: dict[str, Any], console: Console) -> None:
    mirroring = data.get("mirroring") or {}
    console.print(f"mirrored {mirroring.get('mirrored', 0)}, dropped "
                  f"{mirroring.get('dropped', 0)}, failed {mirroring.get('failed', 0)} "
                  "(this server process)", highlight=False)
    for name, rep in (data.get("shadows") or {}).items():
        counts = rep.get("counts") or {}
        table = Table("", "value", title=f"{name} ({data['variants'].get(name)}) against "
                      f"{data['control']}: {rep.get('kind') or 'no data'}")
        table.add_row("pairs compared", f"{counts.get('compared', 0)} of {counts.get('pairs', 0)}")
        table.add_row("error rate live / shadow", f"{_f(counts.get('live_error_rate'), '.2%')} / "
                      f"{_f(counts.get('shadow_error_rate'), '.2%')}")
        agreement = rep.get("agreement")
        if agreement:
            table.add_row("agreement [95% CI]", f"{_f(agreement['rate'], '.2%')} "
                          f"[{_f(agreement['ci_low'], '.2%')}, {_f(agreement['ci_high'], '.2%')}]")
            table.add_row("Cohen's kappa", _f(agreement.get("kappa"), ".3f"))
        labels = rep.get("labels")
        if labels:
            table.add_row("accuracy live / shadow", f"{_f(labels.get('accuracy_live'), '.2%')} / "
                          f"{_f(labels.get('accuracy_shadow'), '.2%')}")
            table.add_row("McNemar p", _f((labels.get("mcnemar") or {}).get("p_value"), ".3g"))
        regression = rep.get("regression")
        if regression:
            for key, value in regression.items():
                if isinstance(value, (int, float)):
                    table.add_row(key, _f(value))
        latency = rep.get("latency") or {}
        if latency:
            live, shadow = latency.get("live") or {}, latency.get("shadow") or {}
            table.add_row("latency p50 live / shadow ms",
                          f"{_f(live.get('p50'), '.2f')} / {_f(shadow.get('p50'), '.2f')}")
        drift = rep.get("drift") or {}
        table.add_row("output drift", "detected" if drift.get("detected") else "none")
        console.print(table)
