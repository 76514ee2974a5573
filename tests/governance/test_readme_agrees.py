"""The README's tables and the consumers' guide say the same, and both say what the code does.

The guide is generated from the catalog and the code's closed sets; the README
is written by hand. Both are read here against the same sources: the stream
catalog and default topics, the dead-letter stages, reasons and headers, the
GAP reasons, the streams with baselines and the exported metrics.
"""

from __future__ import annotations

import re
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest

from connector.governance import catalog
from connector.governance.consumer_guide import generate
from connector.governance.inventory import default_topics
from connector.ops.metrics import Metrics
from connector.records import DeadLetterHeader, FrameSource, OptionalHeader, Stage, members
from connector.settings import KafkaSettings
from connector.venues.baselines import BASELINE_STREAMS
from connector.venues.errors import Reason
from connector.venues.tplus.book_sync import GapReason
from tests.deploy.promql import exposition_types

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
DLQ = KafkaSettings().dlq_topic
GUIDE = generate(catalog.schemas_dir(), ROOT / "docs" / "examples", default_topics(), DLQ)


def _section(text: str, heading: str) -> str:
    """The text under a Markdown heading, up to the next heading of any level."""
    start = text.index(f"{heading}\n") + len(heading)
    found = re.search(r"^#{1,6} ", text[start:], flags=re.MULTILINE)
    return text[start : start + found.start()] if found else text[start:]


def _table(text: str, header: str) -> list[list[str]]:
    """The rows of the Markdown table whose header line is ``header``, as cells."""
    lines = text[text.index(header) :].splitlines()[2:]
    rows = []
    for line in lines:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip()[1:-1])])
    return rows


def _codes(text: str) -> list[str]:
    return re.findall(r"`([^`]+)`", text)


def _listed(text: str, name: str) -> list[str]:
    """The backticked values in ``name`` (`a`, `b`) of a prose list."""
    found = re.search(rf"`{name}` \(([^)]*)\)", text)
    assert found, f"no `{name}` (...) list"
    return _codes(found.group(1))


def test_the_topic_tables_name_the_same_topics_and_schemas() -> None:
    expected = {
        default_topics()[stream]: f"schemas/{path}"
        for stream, path in catalog.STREAM_SCHEMAS.items()
    }
    rows = _table(README, "| stream | venue source | default topic | key | value schema |")
    readme = {_codes(row[2])[0]: _codes(row[4])[0] for row in rows if _codes(row[4])}
    assert readme == expected
    assert [_codes(row[2])[0] for row in rows if not _codes(row[4])] == [DLQ]
    guide_rows = _table(GUIDE, "| topic | key | value record | baseline marker |")
    assert [_codes(row[0])[0] for row in guide_rows] == [*sorted(expected), DLQ]
    for topic, schema in expected.items():
        section = GUIDE.split(f"### `{topic}`\n", 1)[1].split("\n### ", 1)[0]
        assert f"schema file: `{schema}`" in section, topic


def test_baseline_markers_only_where_baselines_are_published() -> None:
    topics = default_topics()
    marked = {
        _codes(row[0])[0]
        for row in _table(GUIDE, "| topic | key | value record | baseline marker |")
        if row[3] != "none"
    }
    assert marked == {topics[stream] for stream in BASELINE_STREAMS}
    [row] = [
        r
        for r in _table(README, "| metric | type | labels | meaning |")
        if r[0] == "`connector_baseline_records_total`"
    ]
    assert set(_codes(row[3])) == BASELINE_STREAMS


def test_dead_letter_stages_reasons_and_headers_are_the_codes() -> None:
    readme = _section(README, "### Dead letters")
    assert _listed(readme, "stage") == list(members(Stage))
    assert _listed(readme, "reason") == list(members(Reason))
    guide = _section(GUIDE, "## Dead letters")
    assert f"- stages: {', '.join(f'`{s}`' for s in members(Stage))}" in guide
    assert f"- reasons: {', '.join(f'`{r}`' for r in members(Reason))}" in guide
    headers = [*members(DeadLetterHeader), *members(OptionalHeader)]
    assert [_codes(row[0])[0] for row in _table(guide, "| header | always | meaning |")] == headers
    for code in [*headers, *members(FrameSource)]:
        assert f"`{code}`" in readme, code
        assert f"`{code}`" in guide, code


def test_gap_reasons_are_the_codes() -> None:
    readme = _section(README, "### Rebuilding an order book from `tplus.depth` alone")
    guide = _section(GUIDE, "## Rebuilding an order book from `tplus.depth`")
    for reason in members(GapReason):
        assert f"`{reason}`" in readme, reason
        assert f"   - `{reason}`: " in guide, reason


def test_the_metrics_table_lists_every_exported_family_with_its_type() -> None:
    registry = CollectorRegistry()
    Metrics(registry)
    exported = {
        name: kind
        for name, kind in exposition_types(generate_latest(registry).decode()).items()
        if name.startswith("connector_")
    }
    rows = _table(README, "| metric | type | labels | meaning |")
    table = {
        _codes(row[0])[0]: row[1] for row in rows if _codes(row[0])[0].startswith("connector_")
    }
    # The README names a histogram by its family, the exposition too; a counter by `_total`.
    assert table == exported
