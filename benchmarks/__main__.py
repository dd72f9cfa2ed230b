"""``python -m benchmarks``: champion against a minimal server, MLflow and BentoML.

Examples::

    python -m benchmarks --quick                     # smoke run, ~20 s: floor + champion
    python -m benchmarks                             # full run, ~8 min (+ first-time installs)
    python -m benchmarks --systems floor,champion --repeats 5 --duration 5
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

try:
    from benchmarks.systems import SYSTEMS
except ImportError as exc:  # run outside champion's environment: say so in one line
    sys.exit(f"python -m benchmarks: {exc}; run it where champion is installed "
             "(pip install -e '.[dev]' from the checkout)")

DEFAULT_SYSTEMS = ("floor,floor-2w,champion,champion-nolog,champion-ab,champion-canary,"
                   "champion-bandit,champion-shadow,champion-shadow10,champion-batched,"
                   "champion-ranker,champion-interleave,champion-ranker-io,champion-interleave-io,"
                   "champion-replicas,champion-ray,rayserve,"
                   "mlflow,bentoml")
QUICK: dict[str, Any] = {"systems": "floor,champion", "repeats": 1, "duration": 2, "warmup": 1,
         "concurrency": "8", "raw_seconds": 0.5, "pair_rounds": 0}
FULL: dict[str, Any] = {"systems": DEFAULT_SYSTEMS, "repeats": 3, "duration": 3, "warmup": 1,
        "concurrency": "1,8,64", "raw_seconds": 1.5, "pair_rounds": 5}


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help=f"smoke run: {QUICK['systems']}, c={QUICK['concurrency']}, "
                        f"{QUICK['duration']} s per point, 1 repeat")
    p.add_argument("--systems", help=f"comma-separated, from: {', '.join(SYSTEMS)} "
                                     f"[default {DEFAULT_SYSTEMS}]")
    p.add_argument("--repeats", type=int, help="repeats per figure (median) [3]")
    p.add_argument("--duration", type=int, help="whole seconds per load point [3]")
    p.add_argument("--warmup", type=int,
                   help="whole seconds of warm-up per request kind, 0 for none [1]")
    p.add_argument("--concurrency", help="wrk connections, comma-separated [1,8,64]")
    p.add_argument("--requests", default="single,batch",
                   help="request kinds: single (1 row), batch (100 rows) [single,batch]")
    p.add_argument("--raw-seconds", type=float,
                   help="seconds of sequential single requests for the raw latency [1.5]")
    p.add_argument("--pair-rounds", type=int,
                   help="alternating rounds per paired figure (the targets' ratios measured "
                        "with both systems up, the idle one stopped), 0 for none [5; quick 0]")
    p.add_argument("--install-timeout", type=float, default=600.0,
                   help="seconds allowed for each first-time virtualenv install [600]")
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results",
                   help="directory for the JSON and markdown results [benchmarks/results]")
    p.add_argument("--keep-work", action="store_true",
                   help="keep the temporary work directory (server logs, data dirs)")
    args = p.parse_args(argv)

    defaults = QUICK if args.quick else FULL
    systems = [s for s in (args.systems or defaults["systems"]).split(",") if s]
    unknown = [s for s in systems if s not in SYSTEMS]
    if unknown:
        p.error(f"unknown system(s) {', '.join(unknown)}; known: {', '.join(SYSTEMS)}")
    kinds = [k for k in args.requests.split(",") if k]
    if not kinds or any(k not in ("single", "batch") for k in kinds):
        p.error("--requests takes single and/or batch")

    from benchmarks import loadgen, report
    from benchmarks.runner import Options, Runner

    opts = Options(
        systems=systems,
        repeats=args.repeats or defaults["repeats"],
        duration=args.duration or defaults["duration"],
        warmup=defaults["warmup"] if args.warmup is None else args.warmup,
        concurrency=_ints(args.concurrency or defaults["concurrency"]),
        kinds=kinds,
        raw_seconds=defaults["raw_seconds"] if args.raw_seconds is None else args.raw_seconds,
        install_timeout=args.install_timeout,
        quick=args.quick,
        keep_work=args.keep_work,
        pair_rounds=defaults["pair_rounds"] if args.pair_rounds is None else args.pair_rounds,
    )
    try:
        runner = Runner(opts)
    except loadgen.WrkMissing as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    results = runner.run()
    table = report.markdown(results)
    results["summary"] = report.summarise(results)
    results["in_process_summary"] = report.in_process_summary(results)
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for name in (f"bench-{stamp}", "latest"):
        (args.out / f"{name}.json").write_text(json.dumps(results, indent=2) + "\n")
        (args.out / f"{name}.md").write_text(table)
    print(table)
    print(f"[bench] wrote {args.out / f'bench-{stamp}.json'} and .md", file=sys.stderr)
    ok = [n for n, s in results["summary"].items() if s["repeats"]]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
