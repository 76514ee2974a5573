"""The consumers' guide (``docs/consumers.md``), generated from the schemas.

Teams that read the topics need the topic list, keys, field meanings and
examples to match what is deployed, so those parts are rendered from the
``.avsc`` files, :data:`connector.governance.catalog.STREAM_SCHEMAS` and the example
records in ``docs/examples/``; a topic added to the catalog appears in the guide
when it is regenerated (``connector schemas docs``). The closed sets a consumer
matches on (GAP reasons, dead-letter stages, reasons and headers, which streams
carry baselines) come from the code's own constants, as the README's tables do.
Only the behavioural promises (ordering, delivery, book rebuilding) are prose,
written here once.
"""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from connector.delivery.serde import subject_for
from connector.governance.catalog import STREAM_SCHEMAS
from connector.records import DeadLetterHeader, FrameSource, OptionalHeader, Stage, members
from connector.venues.baselines import BASELINE_STREAMS
from connector.venues.errors import Reason
from connector.venues.tplus.book_sync import GapReason

DEPTH_STREAM = "tplus.depth"
BOOKS_STREAM = "tplus.books"
CONSUMER_EXAMPLE = "depth_consumer.py"
_PRIMITIVES = ("null", "boolean", "int", "long", "float", "double", "bytes", "string")
_NAMED = ("record", "enum", "fixed")
_WIDTH = 96


@dataclass(frozen=True)
class TopicDoc:
    """What the guide says about one topic."""

    stream: str
    topic: str
    schema_file: str  # under schemas/, as in STREAM_SCHEMAS
    schema: dict[str, Any]
    examples: tuple[dict[str, Any], ...]
    curated: bool  # examples come from docs/examples rather than from the schema
    publishes_baseline: bool = False  # the connector publishes REST baselines on it

    def markers(self) -> list[BaselineMarker]:
        """The schema's baseline markers, for a stream that publishes baselines at all.

        Several tastytrade schemas share the ``origin`` field; only some streams get a
        REST baseline (BASELINE_STREAMS), and only those are documented as marked.
        """
        return baseline_markers(self.schema) if self.publishes_baseline else []


def load_topics(
    schemas_root: Path, examples_dir: Path, topics: Mapping[str, str]
) -> list[TopicDoc]:
    """Read every stream's schema and example records; sorted by topic."""
    docs = []
    for stream, relative in STREAM_SCHEMAS.items():
        schema = json.loads((schemas_root / relative).read_text(encoding="utf-8"))
        example_file = examples_dir / f"{stream}.json"
        if example_file.is_file():
            loaded = json.loads(example_file.read_text(encoding="utf-8"))
            examples = tuple(loaded if isinstance(loaded, list) else [loaded])
            curated = True
        else:
            examples = (example_value(schema),)
            curated = False
        topic = topics.get(stream, stream)
        docs.append(
            TopicDoc(stream, topic, relative, schema, examples, curated, stream in BASELINE_STREAMS)
        )
    return sorted(docs, key=lambda d: d.topic)


def generate(schemas_root: Path, examples_dir: Path, topics: Mapping[str, str], dlq: str) -> str:
    """The whole guide, from the files it is generated from."""
    consumer = (examples_dir / CONSUMER_EXAMPLE).read_text(encoding="utf-8")
    return render(load_topics(schemas_root, examples_dir, topics), consumer, dlq)


# -- reading schemas -----------------------------------------------------------------------


def _named_types(schema: Any, namespace: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every named type defined in ``schema``, as (full name, definition), in order."""
    if isinstance(schema, list):
        for branch in schema:
            yield from _named_types(branch, namespace)
        return
    if not isinstance(schema, dict):
        return
    kind = schema.get("type")
    if kind in _NAMED:
        full = _full_name(schema, namespace)
        yield full, schema
        namespace = full.rpartition(".")[0]
        for field in schema.get("fields", []):
            yield from _named_types(field["type"], namespace)
    elif kind == "array":
        yield from _named_types(schema["items"], namespace)
    elif kind == "map":
        yield from _named_types(schema["values"], namespace)


def _full_name(schema: dict[str, Any], namespace: str) -> str:
    name = str(schema["name"])
    if "." in name:
        return name
    space = schema.get("namespace", namespace)
    return f"{space}.{name}" if space else name


def _short(name: str) -> str:
    return name.rpartition(".")[2]


def _lookup(names: Mapping[str, dict[str, Any]], reference: str) -> dict[str, Any]:
    for full, definition in names.items():
        if reference in (full, _short(full)):
            return definition
    raise KeyError(f"undefined Avro type {reference!r}")


def type_text(schema: Any) -> str:
    """A compact rendering of an Avro type: ``[null, long]``, ``array<PriceLevel>``."""
    if isinstance(schema, str):
        return schema if schema in _PRIMITIVES else _short(schema)
    if isinstance(schema, list):
        return "[" + ", ".join(type_text(branch) for branch in schema) + "]"
    kind = schema["type"]
    if kind in _NAMED:
        return _short(str(schema["name"]))
    if kind == "array":
        return f"array<{type_text(schema['items'])}>"
    if kind == "map":
        return f"map<{type_text(schema['values'])}>"
    logical = schema.get("logicalType")
    base = type_text(kind)
    return f"{base} ({logical})" if logical else base


def key_text(schema: dict[str, Any]) -> str:
    """How the schema documents the record key.

    Conventions: a field whose doc says it is "also the record key", a constant key
    (``all under the one key "name"``), or "keyed by ..." in the record's doc.
    """
    for field in schema.get("fields", []):
        if "record key" in str(field.get("doc", "")).lower():
            return f"`{field['name']}`, as a UTF-8 string"
    doc = str(schema.get("doc", ""))
    constant = re.search(r"\bkey \"([^\"]+)\"", doc)
    if constant:
        return f'always `"{constant.group(1)}"`'
    found = re.search(r"keyed by ([^.;]+)", doc, re.IGNORECASE)
    if found:
        return found.group(1).strip()
    return "not stated in the schema"


@dataclass(frozen=True)
class BaselineMarker:
    """A field that tells baseline records apart, and the value that means "baseline"."""

    field: dict[str, Any]
    when: str  # e.g. "`source` = `REST_BASELINE`"


def baseline_markers(schema: dict[str, Any]) -> list[BaselineMarker]:
    """Top-level fields that mark records published from a REST baseline.

    A marker is a field named for it (``baseline``, ``is_baseline``), a boolean whose doc
    speaks of the baseline, or an enum with a symbol ending in "baseline" (``source`` =
    ``REST_BASELINE``); an enum that merely has a ``BaselineEnd`` variant is not one.
    """
    names = dict(_named_types(schema))
    markers = []
    for field in schema.get("fields", []):
        name = field["name"]
        kind = field["type"]
        if isinstance(kind, str) and kind not in _PRIMITIVES:
            kind = _lookup(names, kind)
        doc = str(field.get("doc", "")).lower()
        if isinstance(kind, dict) and kind.get("type") == "enum":
            symbols = [s for s in kind["symbols"] if s.lower().endswith("baseline")]
            if symbols:
                values = " or ".join(f"`{s}`" for s in symbols)
                markers.append(BaselineMarker(field, f"`{name}` = {values}"))
                continue
        is_boolean = kind == "boolean" or (isinstance(kind, list) and "boolean" in kind)
        if "baseline" in name.lower() or (is_boolean and "baseline" in doc):
            when = f"`{name}` = `true`" if is_boolean else f"`{name}` is set"
            markers.append(BaselineMarker(field, when))
    return markers


def example_value(schema: dict[str, Any]) -> dict[str, Any]:
    """A record that fits ``schema``, for topics without curated example records.

    Fields with a default show it, so the example is the smallest record a consumer can
    meet; required fields get placeholders of their type.
    """
    names = dict(_named_types(schema))
    value = _example(schema, names, "", "")
    assert isinstance(value, dict)
    return value


def _example(schema: Any, names: Mapping[str, dict[str, Any]], field: str, doc: str) -> Any:
    if isinstance(schema, list):
        branches = [b for b in schema if b != "null"] or ["null"]
        return _example(branches[0], names, field, doc)
    if isinstance(schema, str) and schema not in _PRIMITIVES:
        return _example(_lookup(names, schema), names, field, doc)
    kind = schema if isinstance(schema, str) else schema["type"]
    if isinstance(kind, (dict, list)):
        return _example(kind, names, field, doc)
    simple: dict[str, Any] = {"null": None, "boolean": True, "int": 1, "float": 1.5}
    if kind in simple:
        return simple[kind]
    if kind == "long":
        return 1761283014012345678 if field.endswith("_ns") else 1
    if kind == "double":
        return 1.5
    if kind == "string":
        return "1.5" if "decimal" in doc.lower() else f"<{field}>"
    if kind == "bytes":
        return b"\x00"
    if kind == "fixed":
        return b"\x00" * int(schema["size"])
    if kind == "enum":
        return schema["symbols"][0]
    if kind == "array":
        return [_example(schema["items"], names, field, doc)]
    if kind == "map":
        return {"key": _example(schema["values"], names, field, doc)}
    if kind == "record":
        return {
            f["name"]: f["default"]
            if "default" in f
            else _example(f["type"], names, f["name"], str(f.get("doc", "")))
            for f in schema["fields"]
        }
    raise ValueError(f"unknown Avro type {kind!r}")


# -- rendering -----------------------------------------------------------------------------


def _cell(text: Any) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _pretty(value: Any, indent: int = 0, column: int = 0) -> str:
    """JSON that keeps objects and arrays on one line when they fit.

    ``indent`` is the nesting indentation, ``column`` where the value starts on its line.
    """
    flat = json.dumps(value, ensure_ascii=False, default=_bytes_text)
    if not isinstance(value, (dict, list)) or not value or column + len(flat) <= _WIDTH:
        return flat
    pad = " " * (indent + 2)
    if isinstance(value, dict):
        items = []
        for key, item in value.items():
            prefix = f"{pad}{json.dumps(key, ensure_ascii=False)}: "
            items.append(prefix + _pretty(item, indent + 2, len(prefix)))
        return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"
    rows = [pad + _pretty(item, indent + 2, len(pad)) for item in value]
    return "[\n" + ",\n".join(rows) + "\n" + " " * indent + "]"


def _bytes_text(value: Any) -> str:
    """Bytes (Avro bytes and fixed) shown as JSON shows them: one code point per byte."""
    if isinstance(value, bytes):
        return value.decode("latin-1")
    raise TypeError(f"cannot show {type(value).__name__} as JSON")


def _fields_table(record: dict[str, Any]) -> list[str]:
    lines = ["| field | type | default | meaning |", "|---|---|---|---|"]
    for field in record.get("fields", []):
        default = f"`{json.dumps(field['default'])}`" if "default" in field else "required"
        lines.append(
            f"| `{field['name']}` | `{type_text(field['type'])}` | {default} "
            f"| {_cell(field.get('doc', ''))} |"
        )
    return lines


def _named_type_section(full: str, definition: dict[str, Any]) -> list[str]:
    kind = definition["type"]
    lines = [f"**`{_short(full)}`** ({kind} `{full}`): {_cell(definition.get('doc', ''))}", ""]
    if kind == "record":
        lines += [*_fields_table(definition), ""]
    elif kind == "enum":
        symbols = ", ".join(f"`{s}`" for s in definition["symbols"])
        default = definition.get("default")
        extra = f"; a reader that does not know a symbol reads `{default}`" if default else ""
        lines += [f"Symbols: {symbols}{extra}.", ""]
    elif kind == "fixed":
        lines += [f"Size: {definition['size']} bytes.", ""]
    return lines


def _topic_section(doc: TopicDoc) -> list[str]:
    schema = doc.schema
    full = _full_name(schema, "")
    lines = [
        f"### `{doc.topic}`",
        "",
        _cell(schema.get("doc", "")),
        "",
        f"- stream: `{doc.stream}`; schema file: `schemas/{doc.schema_file}`",
        f"- key: {key_text(schema)}",
        f"- value: Avro record `{full}`, registry subject `{subject_for(doc.topic)}`",
    ]
    markers = doc.markers()
    if markers:
        when = "; ".join(m.when for m in markers)
        lines.append(f"- baseline records: {when} (see [Baseline records](#baseline-records))")
    lines += ["", *_fields_table(schema), ""]
    nested = [(n, d) for n, d in _named_types(schema) if n != full]
    if nested:
        lines += ["Types used by the fields:", ""]
        for name, definition in nested:
            lines += _named_type_section(name, definition)
    if len(doc.examples) > 1:
        title = "Example decoded records, as `AvroDeserializer` returns them (shown as JSON):"
    elif doc.curated:
        title = "Example decoded record, as `AvroDeserializer` returns it (shown as JSON):"
    else:
        title = (
            "Example decoded record, as `AvroDeserializer` returns it (shown as JSON), with"
            " placeholder values derived from the schema and optional fields at their defaults:"
        )
    lines += [title, ""]
    for example in doc.examples:
        lines += ["```json", _pretty(example), "```", ""]
    return lines


def render(topics: Sequence[TopicDoc], consumer_example: str, dlq: str) -> str:
    """The guide as Markdown; pure, so a test can compare it with the checked-in file."""
    by_stream = {t.stream: t for t in topics}
    out = [
        "# Consumers' guide",
        "",
        "<!-- Generated by `connector schemas docs` from schemas/, "
        "connector/governance/catalog.py, docs/examples/ and the code's closed sets "
        "(connector/records.py, connector/venues/). Edit those and regenerate. -->",
        "",
        "Everything a team needs to read the connector's topics: what each topic holds, how",
        "records are keyed and decoded, what the connector promises about order and delivery,",
        "and how to rebuild state from the records alone.",
        "",
        "## Topics",
        "",
        "Topic names are the defaults; a deployment can rename them (the `topics` keys of each",
        "venue section in the connector's configuration).",
        "",
        "| topic | key | value record | baseline marker |",
        "|---|---|---|---|",
    ]
    for t in topics:
        markers = "; ".join(m.when for m in t.markers()) or "none"
        out.append(
            f"| [`{t.topic}`](#{_anchor(t.topic)}) | {key_text(t.schema)} "
            f"| `{_full_name(t.schema, '')}` | {markers} |"
        )
    out += [
        f"| [`{dlq}`](#dead-letters) | the stream's key, or the stream name "
        "| raw frame bytes, not Avro | none |",
        "",
        *_DECODING,
        "```python",
        consumer_example.rstrip("\n"),
        "```",
        "",
        *_ORDERING,
    ]
    if DEPTH_STREAM in by_stream:
        out += _depth_section(by_stream[DEPTH_STREAM].topic)
    out += _baseline_section(topics, by_stream)
    out += _joining_section(topics, by_stream)
    out += _dead_letter_section(dlq)
    out += _EVOLUTION
    out += ["## Topic reference", ""]
    for t in topics:
        out += _topic_section(t)
    return "\n".join(out).rstrip("\n") + "\n"


def _anchor(topic: str) -> str:
    """GitHub's heading anchor for a ``### `topic` `` heading."""
    return re.sub(r"[^a-z0-9 _-]", "", topic.lower()).replace(" ", "-")


_DECODING = [
    "## Decoding",
    "",
    "- **Values** are Avro in the Confluent wire format: a zero byte, the 4-byte big-endian",
    "  schema id, then the Avro binary body. The schema of topic `T` is registered under the",
    "  subject `T-value` (TopicNameStrategy). confluent-kafka's `AvroDeserializer` fetches the",
    "  writer's schema by id and returns a `dict`.",
    "- **Keys** are plain UTF-8 strings, never Avro: decode them with `StringDeserializer`.",
    "  Records with one key always go to one partition (Java-compatible `murmur2_random`",
    "  partitioner, so clients in other languages agree), and evolving a schema never moves a",
    "  key to another partition.",
    "- **Numbers are lossless.** Prices, quantities and amounts are `string` fields holding the",
    '  venue\'s exact decimal text (`"3862.40000000"` keeps its zeros). Parse them with',
    "  `decimal.Decimal` (or your language's decimal type), never with `float`.",
    "- **Times** are `long` Unix-epoch nanoseconds. Every record carries `received_ns`, when",
    "  the connector received the data; the venue's own event time is a separate field where the",
    "  venue sends one.",
    "",
    "A consumer that keeps one asset's order book and may start at any moment, with the",
    "reference reader shipped in the connector package (`connector.readers.BookReader`, built",
    "on confluent-kafka's `DeserializingConsumer` and `AvroDeserializer`; see",
    "[Joining at any time](#joining-at-any-time)). This file is",
    "`docs/examples/depth_consumer.py`; the connector's test suite runs it against a Kafka",
    "cluster and a registry:",
    "",
]

_ORDERING = [
    "## Ordering and delivery",
    "",
    "- **Order per key.** Records with the same key are in one partition, in the order the",
    "  connector received them from the venue. There is no order across keys or partitions;",
    "  use `received_ns` (or the venue's event time) to merge them.",
    "- **At least once.** The producer is idempotent with `acks=all`, so its own retries",
    "  neither duplicate nor reorder records. A record whose delivery still fails (the",
    "  configured `kafka.delivery_timeout_ms` passes without an acknowledgement) is produced",
    "  again rather than lost: it can then appear twice, and after later records of its key.",
    "  Make processing idempotent on each topic's natural identity (a trade's `trade_id` and",
    "  `status`, a depth record's `sequence_number`, a kline's `open_timestamp_ns`).",
    "- **Nothing is dropped silently.** A frame that cannot become a record goes to the",
    "  dead-letter topic; a lost continuity on a book is announced by a `GAP` record; streams",
    "  with a REST baseline publish one after every reconnect.",
    "- **What a venue does not replay is not recovered.** Events a venue sent while the",
    "  connector was disconnected are gone for streams without a snapshot or a baseline.",
    "- **Shutdown.** At SIGTERM the connector stops reading and flushes what it has produced",
    "  before it exits.",
    "",
]


def _depth_section(topic: str) -> list[str]:
    return [
        f"## Rebuilding an order book from `{topic}`",
        "",
        "The book of an asset can be rebuilt exactly from this topic alone. All records of one",
        "asset share its key, so they are in one partition, in order. Each has a `kind`:",
        "",
        "1. `SNAPSHOT`: replace the whole book with `bids` and `asks` (best first). Its",
        "   `sequence_number` S is the venue's book sequence number of the snapshot.",
        "2. `DIFF`: for each level, set the price's quantity to the given **absolute**",
        '   quantity; a quantity of zero (`"0"`, `"0.0"`) removes the level. A DIFF\'s',
        "   `sequence_number` is always the previous record's plus one: the connector never",
        "   publishes a DIFF out of sequence, and drops duplicates.",
        "3. `GAP`: the connector lost continuity; `gap_reason` says why:",
        *(f"   - `{reason}`: {_GAP_MEANINGS[reason]}" for reason in members(GapReason)),
        "",
        "   Mark the book invalid and ignore DIFFs until the next `SNAPSHOT`, which the",
        "   connector fetches at once.",
        "",
        "A consumer that starts in the middle of the topic either joins from a checkpoint (see",
        "[Joining at any time](#joining-at-any-time)) or skips DIFFs until it sees a",
        "`SNAPSHOT`. The connector guarantees the sequence: on every (re)connect it buffers",
        "diffs, fetches the REST snapshot, drops buffered diffs at or below the snapshot's",
        "sequence number, and refetches a snapshot older than the first buffered diff. A diff",
        "that does not follow the previous one is announced with a `GAP` and followed by a",
        "fresh `SNAPSHOT`. The reader the example consumer above uses implements these rules.",
        "",
    ]


_GAP_MEANINGS = {
    GapReason.SEQUENCE_GAP: "a diff was missed; `gap_expected` and `gap_received` say which",
    GapReason.DISCONNECTED: "the WebSocket closed",
    GapReason.BACKPRESSURE: "diffs were shed while Kafka could not keep up",
    GapReason.DEAD_LETTERED: "a frame of the book went to the dead-letter topic instead "
    "(it could not be read, or the brokers refused its record)",
    GapReason.RESTART: "the connector restarted and could not see what the venue sent meanwhile",
}


def _baseline_section(topics: Sequence[TopicDoc], by_stream: Mapping[str, TopicDoc]) -> list[str]:
    lines = [
        "## Baseline records",
        "",
        "Some venues do not replay what happened while a connection was down. For those",
        "streams the connector fetches the current state over REST after every (re)connect and",
        "publishes it as ordinary records on the same topic, with the same key, marked as",
        "baseline. A baseline record states what was true when it was fetched (`received_ns`),",
        "not that an event just happened: apply it as an upsert of the current state, and do",
        "not count it as a new order, fill or transfer. A consumer that missed events during",
        "an outage converges once the baseline records that follow it have been applied.",
        "",
    ]
    marked = [(t, m) for t in topics for m in t.markers()]
    if marked:
        lines += ["| topic | a baseline record has | meaning |", "|---|---|---|"]
        for t, m in marked:
            lines.append(f"| `{t.topic}` | {m.when} | {_cell(m.field.get('doc', ''))} |")
        lines.append("")
    else:
        lines += ["No topic carries baseline records yet.", ""]
    if DEPTH_STREAM in by_stream:
        lines += [
            f"`{by_stream[DEPTH_STREAM].topic}` needs no marker: its `SNAPSHOT` records are the",
            "baseline of a book.",
            "",
        ]
    return lines


def _joining_section(topics: Sequence[TopicDoc], by_stream: Mapping[str, TopicDoc]) -> list[str]:
    """How a consumer that starts late, or restarts, gets whole state without a full replay."""
    lines = [
        "## Joining at any time",
        "",
        "A consumer that starts, or restarts, from the latest offset has no state to apply",
        "changes to; replaying the whole retention is slow and only works while the first",
        "baseline is still retained. Each kind of topic has a shorter way in.",
        "",
    ]
    if DEPTH_STREAM in by_stream and BOOKS_STREAM in by_stream:
        depth, books = by_stream[DEPTH_STREAM].topic, by_stream[BOOKS_STREAM].topic
        lines += [
            f"### Order books: the latest checkpoint, then `{depth}`",
            "",
            f"`{books}` holds the full book of each asset at a sequence number, keyed by asset,",
            "on a compacted topic (`cleanup.policy=compact` where the connector creates it): one",
            "every `book_checkpoint_s` (10 s by default) while the book changes, and one after",
            "every resync. A checkpoint names the partition and offset in the depth topic of the",
            "last record it includes, and is written only after the brokers acknowledged that",
            "record. To join:",
            "",
            f"1. Read `{books}` from its oldest record to its end (the high watermark of each",
            "   partition when you start) and keep the record with the asset's key and the",
            "   greatest `written_ns`. Until the cleaner has compacted a segment, older",
            "   checkpoints of the same asset are still there.",
            "2. Load its `bids` and `asks` as the book at `sequence_number`.",
            "3. Read `depth_partition` of `depth_topic` from `depth_offset + 1` and apply the",
            "   records with the asset's key by the rules above; the first DIFF follows the",
            "   checkpoint's `sequence_number` by one step.",
            "4. If `depth_offset + 1` is below the partition's oldest retained offset, the",
            "   records in between are gone: do not apply what is left. Wait for a newer",
            "   checkpoint, or read from the oldest record and wait for a `SNAPSHOT`. Without any",
            "   checkpoint (a deployment with `book_checkpoint_s: 0`) do the latter.",
            "",
            "`connector.readers.BookReader` does exactly this and raises `CheckpointExpired` in",
            "case 4 (the example above); `connector tail --book ASSET` prints a live top of book",
            "with it.",
            "",
        ]
    marked = sorted({t.topic for t in topics if t.markers()})
    if marked:
        names = ", ".join(f"`{topic}`" for topic in marked)
        text = (
            f"On the topics with baseline records ({names}) the state of a key (an account)"
            " is its latest baseline plus every record after it. Read the key's partition from"
            " the oldest retained record (or scan back from the end), and for each key remember"
            " where its latest baseline began: the first of a run of baseline records (see the"
            " markers above; on `tplus.orders` the records of one `baseline.id`, closed by"
            " `BaselineEnd`). Drop what you built before that point and apply the baseline and"
            " everything after it. The connector publishes a baseline after every (re)connect,"
            " so a key whose connection stayed up longer than the retention has none left: read"
            " that key from its oldest record, which is then only as complete as the stream."
            " Other account topics get no baseline: their records are events, read from"
            " wherever a consumer's interest starts."
        )
        lines += [
            "### Account topics: the latest baseline, then everything after it",
            "",
            *textwrap.wrap(text, width=88, break_on_hyphens=False),
            "",
        ]
    lines += [
        "### Duplicates: the `event-id` header",
        "",
        "Every record carries an `event-id` header: one value per event, the same on every",
        "copy of it (a record produced again after a failed delivery, after a producer was",
        "replaced, or replayed after a restart). A consumer that must apply each event once",
        "keeps the ids it applied since its starting point (a checkpoint, a baseline) and",
        "skips a record whose `event-id` it has seen; on depth the `sequence_number` rules",
        "above already drop such copies.",
        "",
    ]
    return lines


_HEADER_MEANINGS = {
    DeadLetterHeader.CONNECTOR: "the connector process's `name`",
    DeadLetterHeader.STREAM: "the stream the frame belongs to (`tplus.depth`)",
    DeadLetterHeader.STAGE: "where it failed",
    DeadLetterHeader.REASON: "why",
    DeadLetterHeader.DETAIL: "a sentence for people, never frame content",
    DeadLetterHeader.RECEIVED_NS: "when the connector received it, Unix epoch nanoseconds",
    OptionalHeader.SOURCE: "where a body came from when not from the socket: "
    + " or ".join(f"`{v}`" for v in members(FrameSource)),
    OptionalHeader.TRUNCATED_FROM_BYTES: "the frame's size when it was larger than "
    "`kafka.dlq_max_bytes`; the value is its head",
    OptionalHeader.REDACTED: "the keys whose credential-shaped values were replaced by "
    "`[REDACTED]` before the letter was produced",
    OptionalHeader.ERROR: "`internal_error` only: the type of the exception the frame raised in "
    "the connector (a bug, never the exception's text)",
    OptionalHeader.CLOSE_CODE: "`frame_rejected` only: the close code the connector sent when "
    "the WebSocket layer refused a frame (1009 too big, 1007 not UTF-8, 1002 protocol error); "
    "the value is empty",
    OptionalHeader.FRAME_BYTES: "`frame_rejected` only: the refused frame's size, where known",
    OptionalHeader.MAX_SIZE: "`frame_rejected` only: the size limit the frame exceeded",
}

_DLQ_ACCESS = [
    "**Access.** The DLQ holds raw venue data: account frames verbatim, keyed by full",
    "account numbers, order and position details included. Credential-shaped fields",
    "(`auth-token`, `Authorization`, `token`, `password`, `secret`, `Bearer` values) are",
    "replaced by `[REDACTED]` before a letter is produced, and the `redacted` header lists",
    "their keys; nothing else is masked. Grant read access to it only under rules at least",
    "as strict as those of the account topics: it is not a topic for every team to read.",
    "Dead letters beyond a per-stream rate are counted (`connector_dlq_suppressed_total`),",
    "not produced.",
    "",
]


def _codes(closed_set: type) -> str:
    return ", ".join(f"`{value}`" for value in members(closed_set))


def _dead_letter_section(dlq: str) -> list[str]:
    lines = [
        "## Dead letters",
        "",
        f"`{dlq}` holds every frame that could not become a record, as its raw bytes (not",
        "Avro), so nothing is dropped and the stream goes on; a record the brokers refuse",
        "permanently arrives at stage `deliver` with its Confluent-framed Avro value. The key is",
        "the stream's key when it was known, else the stream name. Read it with a plain",
        "consumer, not the Avro deserializer.",
        "",
        f"- stages: {_codes(Stage)}",
        f"- reasons: {_codes(Reason)}",
        "",
        "| header | always | meaning |",
        "|---|---|---|",
    ]
    for header in members(DeadLetterHeader):
        lines.append(f"| `{header}` | yes | {_HEADER_MEANINGS[header]} |")
    for header in members(OptionalHeader):
        lines.append(f"| `{header}` | no | {_HEADER_MEANINGS[header]} |")
    return [*lines, "", *_DLQ_ACCESS]


_EVOLUTION = [
    "## Schema evolution",
    "",
    "Schemas change only in BACKWARD-compatible ways: before every deploy,",
    "`connector schemas check` compares each schema with its previous committed version",
    "and with the versions registered for its subject, and fails on anything else. New fields",
    "come with defaults; enum symbols may be added. Decode with the writer's schema (what",
    "`AvroDeserializer` does by default) or resolve to a reader schema of your own with an",
    'Avro library, and treat an enum symbol you do not know as "other" rather than an',
    "error.",
    "",
]
