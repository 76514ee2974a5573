"""Just enough PromQL reading to say which metrics an expression selects.

Prometheus ships no parser a test can call, and ``promtool check rules``
validates syntax but not names, so names are read here: after removing
strings, label matchers, range selectors and grouping clauses, an identifier
not followed by ``(`` and not a keyword is a metric name.
"""

from __future__ import annotations

import re

_AGGREGATIONS = {
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
}
_KEYWORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
    "atan2",
    "inf",
    "nan",
}
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENTIFIER = re.compile(r"(?<![\w.])[A-Za-z_:][A-Za-z0-9_:]*")
_COUNTER_FUNCTIONS = re.compile(r"\b(rate|irate|increase)\(\s*([A-Za-z_:][A-Za-z0-9_:]*)")


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects."""
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = _GROUPING.sub(r" \1 ", text)
    names: set[str] = set()
    for match in _IDENTIFIER.finditer(text):
        word = match.group(0)
        if text[match.end() :].lstrip().startswith("("):
            continue
        if word.lower() in _KEYWORDS or word in _AGGREGATIONS:
            continue
        names.add(word)
    return names


def counter_arguments(expr: str) -> set[str]:
    """Names passed straight to rate(), irate() or increase(): they must be counters."""
    return {m.group(2) for m in _COUNTER_FUNCTIONS.finditer(expr)}


def exposition_types(text: str) -> dict[str, str]:
    """``# TYPE`` lines of a Prometheus text exposition: family name → type.

    A labelled family with no children yet exports only its HELP and TYPE
    lines, so this also sees metrics whose label sets appear on first use.
    """
    types: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            types[name] = kind
    return types


def series_names(types: dict[str, str]) -> dict[str, str]:
    """Series name → the type of its family, e.g. ``x_bucket`` → ``histogram``.

    The text format names a counter family with its ``_total`` already, and a
    histogram by its base name, whose series add ``_bucket``, ``_sum`` and
    ``_count``.
    """
    out: dict[str, str] = {}
    for family, kind in types.items():
        if kind == "histogram":
            out.update({family + suffix: kind for suffix in ("_bucket", "_sum", "_count")})
        else:
            out[family] = kind
    return out


def output_labels(expr: str, target_labels: set[str]) -> set[str]:
    """The labels an alert expression's series carry.

    An expression that aggregates keeps its first ``by (...)`` grouping (less
    ``le``, which histogram_quantile consumes); ``absent()`` keeps its equality
    matchers; anything else keeps the scrape target's labels.
    """
    text = " ".join(expr.split())
    if text.startswith("absent("):
        return set(re.findall(r'(\w+)\s*=\s*"', text))
    grouping = re.search(r"\bby\s*\(([^)]*)\)", text)
    if grouping is None:
        return set(target_labels)
    return {label.strip() for label in grouping.group(1).split(",")} - {"le"}
