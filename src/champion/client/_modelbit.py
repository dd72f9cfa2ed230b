"""Modelbit's client keywords in champion's client: what is applied, what is ignored (with a
warning naming it), and Modelbit's batch chunking.

Nothing here imports Modelbit's package, except ``aim_modelbit_client``, which points a real
``modelbit`` client at a champion server for code that must keep calling
``modelbit.get_inference`` unchanged.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson

# deploy() keywords of Modelbit's that champion cannot apply, and why.
IGNORED_DEPLOY_KEYWORDS: dict[str, str] = {
    "base_image": "versions run in a virtual environment on the server, not in an image",
    "system_packages": "champion does not install system packages; install them where "
                       "champion serve runs",
    "common_files": "there is no workspace of common files; pass the files as extra_files",
    "snowflake_max_rows": "there is no Snowflake integration",
    "snowflake_mock_return_value": "there is no Snowflake integration",
    "require_gpu": "workers run on the server's machine as they are; no GPU is assigned",
    "setup": "modelbit.setup() blocks are not captured; put the code in a helper function",
}
# Modelbit's defaults: a keyword left at its default is not "used", so it warns nothing.
_DEFAULTS: dict[str, Any] = {"require_gpu": False}

DEFAULT_BATCH_SIZE = 3_000  # Modelbit's client's defaults
DEFAULT_BATCH_BYTES = 20_000_000
DEFAULT_BATCH_CONCURRENCY = 3


def check_deploy_keywords(kwargs: dict[str, Any]) -> list[str]:
    """Warn once per ignored Modelbit keyword; TypeError for a keyword nobody knows."""
    ignored: list[str] = []
    for key, value in kwargs.items():
        reason = IGNORED_DEPLOY_KEYWORDS.get(key)
        if reason is None:
            raise TypeError(f"deploy() got an unexpected keyword argument {key!r}")
        if value is None or value == _DEFAULTS.get(key) or value in ([], {}, ""):
            continue
        message = f"deploy(): {key}= is ignored by champion: {reason}"
        warnings.warn(message, UserWarning, stacklevel=3)
        ignored.append(message)
    return ignored


def dataframe_columns(example: Any) -> list[dict[str, Any]]:
    """Modelbit's ``dataframeModeColumns``: name, dtype and an example value per column."""
    if example is None or not hasattr(example, "dtypes") or not hasattr(example, "columns"):
        raise TypeError("dataframe_mode=True needs example_dataframe= a pandas DataFrame "
                        "with the columns the function reads")
    columns = []
    for name in example.columns:
        first = example[name].iloc[0] if len(example) else None
        text = None if first is None else str(first)
        columns.append({"name": str(name), "dtype": str(example[name].dtype),
                        "example": text[:50] if text is not None else None})
    return columns


def is_dataframe(data: Any) -> bool:
    return type(data).__name__ == "DataFrame" and hasattr(data, "to_dict")


def can_chunk(data: Any) -> bool:
    """Modelbit's rule: a DataFrame, or a list whose first element is a list, is a batch."""
    return is_dataframe(data) or (isinstance(data, list) and len(data) > 0
                                  and isinstance(data[0], list))


def dataframe_rows(frame: Any) -> list[list[Any]]:
    """A DataFrame as batch rows ``[index, {column: value}]`` (what Modelbit sends)."""
    split = frame.to_dict(orient="split")
    return [[index, dict(zip(split["columns"], row, strict=True))]
            for index, row in zip(split["index"], split["data"], strict=True)]


def _size(rows: list[Any]) -> int:
    return len(orjson.dumps(rows, option=orjson.OPT_SERIALIZE_NUMPY, default=str))


def chunks(rows: list[Any], max_rows: int, max_bytes: int) -> Iterator[list[Any]]:
    """Rows in chunks of at most ``max_rows`` and ``max_bytes`` of JSON (halved until they
    fit; a single row over the limit is an error)."""
    for start in range(0, len(rows), max_rows):
        chunk = rows[start:start + max_rows]
        if _size(chunk) < max_bytes:
            yield chunk
        elif len(chunk) == 1:
            raise ValueError(f"one batch row is larger than batch_bytes={max_bytes}")
        else:
            yield from chunks(chunk, math.ceil(len(chunk) / 2), max_bytes)


def positive_int(name: str, value: Any, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive integer")
    return value


# ---------------------------------------------------------------------- Modelbit's client


def aim_modelbit_client(url: str, *, telemetry: bool = False) -> None:
    """Send the real ``modelbit`` client's inference calls to a champion server.

    ``modelbit.get_inference(deployment=..., workspace=..., region=..., data=...)`` then goes
    to ``url`` with the same path (``/v1/NAME/BRANCH/VERSION``), body and headers: only the
    scheme and host of Modelbit's URL are replaced. Its retry policy is kept.

    Modelbit's client also reports every error it raises to Modelbit's own servers; with
    ``telemetry=False`` (the default) those reports are not sent, since there is no
    Modelbit server to receive them.
    """
    import requests.adapters
    from modelbit import telemetry as mb_telemetry
    from modelbit.api import inference_api

    if not telemetry:
        mb_telemetry.logEventToWeb = lambda *args, **kwargs: None

    target = urlsplit(url.rstrip("/"))
    session = inference_api._session

    class ToChampion(requests.adapters.HTTPAdapter):
        def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
            parts = urlsplit(request.url)
            request.url = urlunsplit((target.scheme, target.netloc,
                                      target.path + parts.path, parts.query, parts.fragment))
            return super().send(request, *args, **kwargs)

    retries = getattr(session.get_adapter("https://"), "max_retries", 0)
    adapter = ToChampion(max_retries=retries)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
