"""Counters for Prometheus, kept as plain dict increments on the request path.

Exposed at ``/metrics`` in the Prometheus text format through a custom prometheus_client
collector, which turns the counts into families at scrape time.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.registry import Collector

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Telemetry(Collector):
    def __init__(self) -> None:
        self.requests: dict[tuple[str, str, str], int] = defaultdict(int)
        self.latency: dict[tuple[str, str], list[float]] = {}
        self.feedback: dict[tuple[str, str], int] = defaultdict(int)
        self.unknown = 0  # requests to deployments that do not exist (no label: unbounded)
        self.gauges: Callable[[], dict[str, Any]] = dict
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)

    def observe(self, deployment: str, version: str, status: int, seconds: float) -> None:
        self.requests[(deployment, version, str(status))] += 1
        hist = self.latency.get((deployment, version))
        if hist is None:
            hist = self.latency[(deployment, version)] = [0.0] * (len(BUCKETS) + 2)
        hist[bisect_left(BUCKETS, seconds)] += 1
        hist[-1] += seconds

    def count_feedback(self, deployment: str, metric: str, n: int = 1) -> None:
        self.feedback[(deployment, metric)] += n

    def collect(self) -> Iterator[Any]:
        req = CounterMetricFamily("champion_requests", "Inference requests answered.",
                                  labels=["deployment", "version", "status"])
        for (dep, ver, status), n in self.requests.items():
            req.add_metric([dep, ver, status], n)
        yield req
        lat = HistogramMetricFamily("champion_request_duration_seconds",
                                    "Time from request to answer in the server.",
                                    labels=["deployment", "version"])
        for (dep, ver), hist in self.latency.items():
            cumulative = 0.0
            buckets = []
            for bound, count in zip((*map(str, BUCKETS), "+Inf"), hist[:-1], strict=True):
                cumulative += count
                buckets.append((bound, cumulative))
            lat.add_metric([dep, ver], buckets, hist[-1])
        yield lat
        fb = CounterMetricFamily("champion_feedback", "Feedback items stored.",
                                 labels=["deployment", "metric"])
        for (dep, metric), n in self.feedback.items():
            fb.add_metric([dep, metric], n)
        yield fb
        unknown = CounterMetricFamily(
            "champion_requests_unknown_deployment",
            "Requests (inference and feedback) to deployments that do not exist.")
        unknown.add_metric([], self.unknown)
        yield unknown
        for name, (kind, help_text, value) in self.gauges().items():
            family = (CounterMetricFamily if kind == "counter" else GaugeMetricFamily)(
                name, help_text)
            family.add_metric([], value)
            yield family

    def render(self) -> bytes:
        return generate_latest(self.registry)
