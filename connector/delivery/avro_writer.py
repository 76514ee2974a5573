"""Avro binary encoding compiled from a schema once, for the hot path.

fastavro's generic writer resolves every union branch by validating the
value against each candidate and looks every enum symbol up in a list; for
the small records the connector writes that is most of the cost of a
record. Here a schema is turned once into nested writer functions, so
writing a value only dispatches on what the schema already says.

The bytes are exactly fastavro's (tests compare the two on every schema),
and values that do not fit the schema raise ``TypeError``, ``ValueError`` or
``KeyError`` as fastavro's do, so the sink still dead-letters them. Missing
record fields take their default, or ``null``, as in fastavro. Logical
types are not compiled (no connector schema has one): such a schema raises
:class:`Unsupported` and the caller falls back to fastavro.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping, Sequence
from typing import Any

Writer = Callable[[bytearray, Any], None]
Matcher = Callable[[Any], bool]

_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1
_PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
_MISSING = object()


class Unsupported(Exception):
    """The schema uses a feature this writer does not compile."""


def compile_schema(schema: Any) -> Callable[[Any], bytes]:
    """A function that encodes a value of ``schema`` (parsed JSON) as Avro binary."""
    write = _Compiler().compile(schema, "")

    def encode(value: Any) -> bytes:
        buf = bytearray()
        write(buf, value)
        return bytes(buf)

    return encode


def compile_writer(schema: Any) -> Writer:
    """The writer that appends a value of ``schema`` to a buffer (to prefix a header)."""
    return _Compiler().compile(schema, "")


# --- primitives -----------------------------------------------------------------------


def _varint(buf: bytearray, n: int) -> None:
    while n > 0x7F:
        buf.append((n & 0x7F) | 0x80)
        n >>= 7
    buf.append(n)


def _write_long(buf: bytearray, value: Any) -> None:
    if type(value) is not int and (isinstance(value, bool) or not isinstance(value, int)):
        raise TypeError(f"{type(value).__name__} is not an Avro long")
    if not _LONG_MIN <= value <= _LONG_MAX:
        raise ValueError("value does not fit an Avro long")
    n = (value << 1) ^ (value >> 63)
    while n > 0x7F:
        buf.append((n & 0x7F) | 0x80)
        n >>= 7
    buf.append(n)


def _write_int(buf: bytearray, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{type(value).__name__} is not an Avro int")
    if not _INT_MIN <= value <= _INT_MAX:
        raise ValueError("value does not fit an Avro int")
    _varint(buf, (value << 1) ^ (value >> 31))


def _write_string(buf: bytearray, value: Any) -> None:
    data = value.encode()  # AttributeError for a non-string, as fastavro
    if not isinstance(value, str):
        raise TypeError(f"{type(value).__name__} is not an Avro string")
    n = len(data)
    if n < 0x40:
        buf.append(n << 1)
    else:
        _varint(buf, n << 1)
    buf += data


def _write_bytes(buf: bytearray, value: Any) -> None:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise TypeError(f"{type(value).__name__} is not Avro bytes")
    data = bytes(value)
    _varint(buf, len(data) << 1)
    buf += data


def _write_null(buf: bytearray, value: Any) -> None:
    if value is not None:
        raise TypeError("an Avro null must be None")


def _write_boolean(buf: bytearray, value: Any) -> None:
    if value is True:
        buf.append(1)
    elif value is False:
        buf.append(0)
    else:
        raise TypeError(f"{type(value).__name__} is not an Avro boolean")


def _write_float(buf: bytearray, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{type(value).__name__} is not an Avro float")
    buf += struct.pack("<f", value)


def _write_double(buf: bytearray, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{type(value).__name__} is not an Avro double")
    buf += struct.pack("<d", value)


_PRIMITIVE_WRITERS: dict[str, Writer] = {
    "null": _write_null,
    "boolean": _write_boolean,
    "int": _write_int,
    "long": _write_long,
    "float": _write_float,
    "double": _write_double,
    "bytes": _write_bytes,
    "string": _write_string,
}


def _is_int(v: Any, low: int, high: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and low <= v <= high


_PRIMITIVE_MATCHERS: dict[str, Matcher] = {
    "null": lambda v: v is None,
    "boolean": lambda v: isinstance(v, bool),
    "int": lambda v: _is_int(v, _INT_MIN, _INT_MAX),
    "long": lambda v: _is_int(v, _LONG_MIN, _LONG_MAX),
    "float": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "double": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "bytes": lambda v: isinstance(v, bytes | bytearray | memoryview),
    "string": lambda v: isinstance(v, str),
}


def _check_array(value: Any) -> None:
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Sequence):
        raise TypeError(f"{type(value).__name__} is not an Avro array")


# --- complex types --------------------------------------------------------------------


class _Compiler:
    def __init__(self) -> None:
        self._named: dict[str, Writer] = {}
        self._matchers: dict[str, Matcher] = {}
        # Named records by full name, with their namespace, for inlining; and
        # those whose code is being generated (a recursive one is called instead).
        self._records: dict[str, tuple[dict[str, Any], str]] = {}
        self._open_records: set[str] = set()
        self._tags = 0

    def compile(self, schema: Any, namespace: str) -> Writer:
        if isinstance(schema, str):
            if schema in _PRIMITIVES:
                return _PRIMITIVE_WRITERS[schema]
            return self._reference(schema, namespace)
        if isinstance(schema, list):
            return self._union(schema, namespace)
        if not isinstance(schema, dict):
            raise Unsupported(f"not a schema: {schema!r}")
        if "logicalType" in schema:
            raise Unsupported(f"logical type {schema['logicalType']!r}")
        kind = schema.get("type")
        if kind in _PRIMITIVES:
            return _PRIMITIVE_WRITERS[kind]
        if kind == "record" or kind == "error":
            return self._record(schema, namespace)
        if kind == "enum":
            return self._enum(schema, namespace)
        if kind == "array":
            return self._array(schema, namespace)
        if kind == "map":
            return self._map(schema, namespace)
        if kind == "fixed":
            return self._fixed(schema, namespace)
        raise Unsupported(f"type {kind!r}")

    def matcher(self, schema: Any, namespace: str) -> Matcher:
        """Whether a value may be written as this union branch (fastavro's choice rules)."""
        if isinstance(schema, str):
            if schema in _PRIMITIVES:
                return _PRIMITIVE_MATCHERS[schema]
            full = self._resolve(schema, namespace)
            return lambda v: self._matchers[full](v)
        if isinstance(schema, dict):
            kind = schema.get("type")
            if kind in _PRIMITIVES:
                return _PRIMITIVE_MATCHERS[kind]
            if kind in ("record", "error", "map"):
                if kind != "map":
                    self.compile(schema, namespace)
                return lambda v: isinstance(v, Mapping)
            if kind == "array":
                return lambda v: isinstance(v, Sequence) and not isinstance(v, str | bytes)
            if kind == "enum":
                symbols = frozenset(schema["symbols"])
                return lambda v: isinstance(v, str) and v in symbols
            if kind == "fixed":
                size = schema["size"]
                return lambda v: isinstance(v, bytes) and len(v) == size
        raise Unsupported(f"union branch {schema!r}")

    @staticmethod
    def _fullname(schema: dict[str, Any], namespace: str) -> tuple[str, str]:
        name = schema["name"]
        if "." in name:
            return name, name.rpartition(".")[0]
        space = schema.get("namespace", namespace) or ""
        return (f"{space}.{name}" if space else name), space

    def _resolve(self, name: str, namespace: str) -> str:
        if "." not in name and namespace and f"{namespace}.{name}" in self._named:
            return f"{namespace}.{name}"
        if name in self._named:
            return name
        raise Unsupported(f"unknown named type {name!r}")

    def _reference(self, name: str, namespace: str) -> Writer:
        full = self._resolve(name, namespace)
        named = self._named

        def write(buf: bytearray, value: Any) -> None:
            named[full](buf, value)

        return write

    def _register(
        self, schema: dict[str, Any], namespace: str, writer: Writer, matcher: Matcher
    ) -> str:
        full, _space = self._fullname(schema, namespace)
        self._named[full] = writer
        self._matchers[full] = matcher
        return full

    def _record(self, schema: dict[str, Any], namespace: str) -> Writer:
        """A record becomes one generated function: a line or two of code per field.

        Strings, longs, booleans, enums and their optional forms are written
        inline, and so are the records an array holds; every other field type
        calls its compiled writer.
        """
        full, space = self._fullname(schema, namespace)
        named = self._named

        # Registered before its fields compile (a record may refer to itself);
        # replaced below by the generated function.
        def write_later(buf: bytearray, value: Any) -> None:
            named[full](buf, value)

        self._named[full] = write_later
        self._matchers[full] = lambda v: isinstance(v, Mapping)
        self._records[full] = (schema, space)
        env: dict[str, Any] = {
            "_long": _write_long,
            "_varint": _varint,
            "_check_array": _check_array,
        }
        lines = ["def write(buf, value):", "    put = buf.append"]
        lines += self._record_code(full, env, "value", "    ", 0)
        # The source is built above from the schema alone, never from a value.
        exec("\n".join(lines), env)
        write: Writer = env["write"]
        self._named[full] = write
        return write

    def _record_code(
        self, full: str, env: dict[str, Any], var: str, pad: str, level: int
    ) -> list[str]:
        """Lines that write the record named ``full`` held in ``var``."""
        schema, space = self._records[full]
        self._open_records.add(full)
        lines = []
        for f in schema["fields"]:
            self._tags += 1
            tag = f"t{self._tags}"
            name, kind = f["name"], f["type"]
            if "default" in f:
                env[f"{tag}d"] = f["default"]
                lines.append(f"{pad}x = {var}.get({name!r}, {tag}d)")
            elif isinstance(kind, list) and "null" in kind:
                lines.append(f"{pad}x = {var}.get({name!r})")
            else:
                # Required: a missing field raises KeyError, as writing None would TypeError.
                lines.append(f"{pad}x = {var}[{name!r}]")
            lines += self._field_code(kind, space, env, tag, pad, level)
        self._open_records.discard(full)
        return lines

    def _inlinable(self, schema: Any, space: str) -> str | None:
        """The full name of a record schema whose code can be inlined, or None."""
        if isinstance(schema, dict) and schema.get("type") in ("record", "error"):
            self.compile(schema, space)
            full = self._fullname(schema, space)[0]
        elif isinstance(schema, str) and schema not in _PRIMITIVES:
            full = self._resolve(schema, space)
        else:
            return None
        if full not in self._records or full in self._open_records:
            return None
        return full

    def _field_code(
        self, schema: Any, space: str, env: dict[str, Any], tag: str, pad: str, level: int
    ) -> list[str]:
        kind = schema if isinstance(schema, str) else None
        if (
            isinstance(schema, dict)
            and "logicalType" not in schema
            and schema.get("type") in _PRIMITIVES
        ):
            kind = schema["type"]
        if kind == "string":
            return [
                f"{pad}s = x.encode()",
                f"{pad}n = len(s)",
                f"{pad}if n < 64:",
                f"{pad}    put(n << 1)",
                f"{pad}else:",
                f"{pad}    _varint(buf, n << 1)",
                f"{pad}buf += s",
            ]
        if kind == "long":
            # Non-negative longs (sequence numbers, timestamps) inline; the rest call _long.
            return [
                f"{pad}if type(x) is int and 0 <= x <= {_LONG_MAX >> 1}:",
                f"{pad}    n = x << 1",
                f"{pad}    while n > 127:",
                f"{pad}        put((n & 127) | 128)",
                f"{pad}        n >>= 7",
                f"{pad}    put(n)",
                f"{pad}else:",
                f"{pad}    _long(buf, x)",
            ]
        if kind == "boolean":
            return [
                f"{pad}if x is True:",
                f"{pad}    put(1)",
                f"{pad}elif x is False:",
                f"{pad}    put(0)",
                f"{pad}else:",
                f"{pad}    raise TypeError('not an Avro boolean')",
            ]
        if isinstance(schema, list) and len(schema) == 2 and "null" in schema:
            null_index = schema.index("null")
            other = schema[1 - null_index]
            inner = self._field_code(other, space, env, tag, pad + "    ", level)
            return [
                f"{pad}if x is None:",
                f"{pad}    put({null_index << 1})",
                f"{pad}else:",
                f"{pad}    put({(1 - null_index) << 1})",
                *inner,
            ]
        if (
            isinstance(schema, dict)
            and schema.get("type") == "enum"
            and len(schema["symbols"]) < 64
        ):
            self._enum(schema, space)
            env[tag] = {symbol: i << 1 for i, symbol in enumerate(schema["symbols"])}
            return [f"{pad}put({tag}[x])"]
        if isinstance(schema, dict) and schema.get("type") == "array":
            # Inline the block; a record item is written by inline code too, other
            # items by their writer called straight from the loop.
            item = f"item{level}"
            record = self._inlinable(schema["items"], space)
            if record is not None:
                body = self._record_code(record, env, item, pad + "        ", level + 1)
            else:
                env[tag] = self.compile(schema["items"], space)
                body = [f"{pad}        {tag}(buf, {item})"]
            return [
                f"{pad}if type(x) is not list and type(x) is not tuple:",
                f"{pad}    _check_array(x)",
                f"{pad}n = len(x)",
                f"{pad}if n:",
                f"{pad}    if n < 64:",
                f"{pad}        put(n << 1)",
                f"{pad}    else:",
                f"{pad}        _varint(buf, n << 1)",
                f"{pad}    for {item} in x:",
                *body,
                f"{pad}put(0)",
            ]
        env[tag] = self.compile(schema, space)
        return [f"{pad}{tag}(buf, x)"]

    def _enum(self, schema: dict[str, Any], namespace: str) -> Writer:
        index = {symbol: bytes([i << 1]) for i, symbol in enumerate(schema["symbols"])}
        if len(index) > 63:
            index = {}
            for i, symbol in enumerate(schema["symbols"]):
                out = bytearray()
                _varint(out, i << 1)
                index[symbol] = bytes(out)

        def write(buf: bytearray, value: Any) -> None:
            try:
                buf += index[value]
            except (KeyError, TypeError):
                raise ValueError("value is not a symbol of the enum") from None

        symbols = frozenset(index)
        self._register(schema, namespace, write, lambda v: isinstance(v, str) and v in symbols)
        return write

    def _fixed(self, schema: dict[str, Any], namespace: str) -> Writer:
        size = schema["size"]

        def write(buf: bytearray, value: Any) -> None:
            if not isinstance(value, bytes) or len(value) != size:
                raise ValueError(f"an Avro fixed of size {size} must be {size} bytes")
            buf += value

        self._register(schema, namespace, write, lambda v: isinstance(v, bytes) and len(v) == size)
        return write

    def _array(self, schema: dict[str, Any], namespace: str) -> Writer:
        item_writer = self.compile(schema["items"], namespace)

        def write(buf: bytearray, value: Any) -> None:
            if type(value) is not list and type(value) is not tuple:
                _check_array(value)
            n = len(value)
            if n:
                _varint(buf, n << 1)
                for item in value:
                    item_writer(buf, item)
            buf.append(0)

        return write

    def _map(self, schema: dict[str, Any], namespace: str) -> Writer:
        value_writer = self.compile(schema["values"], namespace)

        def write(buf: bytearray, value: Any) -> None:
            n = len(value)
            if n:
                _varint(buf, n << 1)
                for key, item in value.items():
                    _write_string(buf, key)
                    value_writer(buf, item)
            buf.append(0)

        return write

    def _union(self, branches: list[Any], namespace: str) -> Writer:
        writers = [self.compile(b, namespace) for b in branches]
        if len(branches) == 2 and "null" in branches:
            # The common optional field: one identity test picks the branch.
            null_index = branches.index("null")
            other = writers[1 - null_index]
            null_tag, other_tag = null_index << 1, (1 - null_index) << 1

            def write_optional(buf: bytearray, value: Any) -> None:
                if value is None:
                    buf.append(null_tag)
                else:
                    buf.append(other_tag)
                    other(buf, value)

            return write_optional
        matchers = [self.matcher(b, namespace) for b in branches]
        tags = []
        for i in range(len(branches)):
            tag = bytearray()
            _varint(tag, i << 1)
            tags.append(bytes(tag))
        choices = list(zip(matchers, tags, writers, strict=True))

        def write(buf: bytearray, value: Any) -> None:
            for matches, tag, writer in choices:
                if matches(value):
                    buf += tag
                    writer(buf, value)
                    return
            raise ValueError(f"{type(value).__name__} matches no branch of the union")

        return write
