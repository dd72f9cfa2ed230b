"""DataFrame mode, in the worker: rows of column values rebuilt into one pandas DataFrame.

A deployment made with ``dataframe_mode=True`` records the columns and dtypes of its
example DataFrame. A request's rows (``[id, {column: value}]``, as Modelbit's client sends a
DataFrame) become one DataFrame with those columns, in that order, cast to those dtypes;
the function is called once with it and returns one output per row (a list, an array, a
Series, or a DataFrame whose rows are the outputs).
"""

from __future__ import annotations

from typing import Any


def call_frame(fn: Any, rows: list[dict[str, Any]], columns: list[dict[str, Any]]) -> list[Any]:
    import pandas as pd

    names = [str(c["name"]) for c in columns]
    extra = list(dict.fromkeys(k for row in rows for k in row if k not in names))
    frame = pd.DataFrame.from_records(rows, columns=names + extra)
    for column in columns:
        dtype = column.get("dtype")
        if not dtype or str(frame[column["name"]].dtype) == dtype:
            continue
        try:
            frame[column["name"]] = frame[column["name"]].astype(dtype)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"column {column['name']!r}: the values cannot be read as "
                            f"{dtype}: {exc}") from None
    result = fn(frame)
    if isinstance(result, pd.DataFrame):
        outputs: Any = result.to_dict(orient="records")
    elif hasattr(result, "tolist") and not isinstance(result, (list, tuple)):
        outputs = result.tolist()
    else:
        outputs = result
    if not isinstance(outputs, (list, tuple)) or len(outputs) != len(rows):
        got = f"{type(result).__name__}" + (
            f" of {len(outputs)}" if isinstance(outputs, (list, tuple)) else "")
        raise TypeError(f"in DataFrame mode the function returns one output per row "
                        f"({len(rows)}): a list, an array, a Series or a DataFrame; it "
                        f"returned {got}")
    return list(outputs)
