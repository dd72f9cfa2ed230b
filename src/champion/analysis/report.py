"""JSON-ready experiment reports built from sufficient statistics (spec §2, §6).

Two pure builders over the statistics layer; the SQL that fills their inputs and the HTTP
endpoint that serves their outputs live elsewhere:

* :func:`ab_report` (:mod:`champion.analysis.report_ab`): SRM, per-arm summaries,
  per (candidate, metric) comparisons and a ship decision;
* :func:`shadow_report` (:mod:`champion.analysis.report_shadow`): shadow health, output
  agreement or differences, paired latency and output drift.

Both return plain JSON values: ``json.dumps(report, allow_nan=False)`` always works.
"""

from champion.analysis.report_ab import (
    ERROR_RATE,
    ArmData,
    Guardrail,
    MetricSums,
    ab_report,
    jsonable,
)
from champion.analysis.report_shadow import LABEL_KEYS, ShadowPair, shadow_report

__all__ = [
    "ERROR_RATE",
    "LABEL_KEYS",
    "ArmData",
    "Guardrail",
    "MetricSums",
    "ShadowPair",
    "ab_report",
    "jsonable",
    "shadow_report",
]
