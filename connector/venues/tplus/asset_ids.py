"""T+ asset ids in the one canonical form the venue SDK gives them: the key of a market.

A market can be named in several forms on the wire; each maps to one text,
as ``tpluspy`` 0.6.0's ``AssetIdentifier`` renders it, so one market never
gets two Kafka keys:

* index form: decimal digits (``"1"``), from a JSON integer, a numeric
  string or ``{"Index": 1}``;
* address form: ``<address>@<chain>``, lower-case hex without ``0x``. The
  address is right-padded with zero bytes to 32 bytes (a 20-byte EVM
  address gains 24 trailing zeros: 64 hex digits); the chain is exactly 9
  bytes (18 hex digits: a routing byte and an 8-byte VM id). It comes from
  that text (any case, ``0x`` prefixes, an unpadded 20-byte address),
  ``{"Address": "<text>"}``, ``{"Address": {"address": [bytes], "chain":
  [bytes]}}`` or ``{"chainId": n, "address": "0x…", "routingId": r}``.

Refused, as the SDK refuses them: a chain id of another length (the older
16-hex form), odd-length or non-hex text, symbols such as ``"ETH"``. Also
refused, though the SDK lets it through: an address longer than 32 bytes.
"""

from __future__ import annotations

from typing import Any

from connector.venues.errors import FrameError, Reason
from connector.venues.json_numbers import FloatText, integer, string

ADDRESS_BYTES = 32
CHAIN_BYTES = 9
_HEX = frozenset("0123456789abcdef")
_FORMS = "an index, address@chain, {Index} or {Address}"


def _bad(detail: str) -> FrameError:
    return FrameError(Reason.BAD_FIELD, f"asset_id {detail}")


def _hex(text: str, part: str) -> str:
    digits = text.strip().lower().removeprefix("0x")
    if not digits or len(digits) % 2 or not set(digits) <= _HEX:
        raise _bad(f"{part} is not whole bytes of hex")
    return digits


def address_form(address: str, chain: str) -> str:
    """``<64 hex>@<18 hex>`` from an address and a chain id in hex (either may carry ``0x``)."""
    address_hex = _hex(address, "address")
    chain_hex = _hex(chain, "chain")
    if len(chain_hex) != 2 * CHAIN_BYTES:
        raise _bad(f"chain must be {CHAIN_BYTES} bytes ({2 * CHAIN_BYTES} hex digits)")
    if len(address_hex) > 2 * ADDRESS_BYTES:
        raise _bad(f"address is longer than {ADDRESS_BYTES} bytes")
    return f"{address_hex.ljust(2 * ADDRESS_BYTES, '0')}@{chain_hex}"


def _byte_list(value: Any, part: str) -> str:
    if not isinstance(value, list) or not all(type(b) is int and 0 <= b <= 255 for b in value):
        raise _bad(f"{part} must be a list of byte values")
    return bytes(value).hex()


def _index(value: Any) -> str:
    number = integer(value, "asset_id.Index")
    if number < 0:
        raise _bad("index is negative")
    return str(number)


def _from_object(value: dict[str, Any]) -> str:
    if "chainId" in value and "address" in value:
        routing = integer(value.get("routingId", 0), "asset_id.routingId")
        vm_id = integer(value["chainId"], "asset_id.chainId")
        if not (0 <= routing < 256 and 0 <= vm_id < 2**64):
            raise _bad("routingId or chainId is out of range")
        return address_form(
            string(value["address"], "asset_id.address"), f"{routing:02x}{vm_id:016x}"
        )
    if len(value) != 1:
        raise _bad(f"must be {_FORMS}")
    key, inner = next(iter(value.items()))
    if key == "Index":
        return _index(inner)
    if key == "Address":
        if isinstance(inner, dict) and "address" in inner and "chain" in inner:
            return address_form(
                _byte_list(inner["address"], "address"), _byte_list(inner["chain"], "chain")
            )
        return _from_text(string(inner, "asset_id.Address"))
    raise _bad(f"must be {_FORMS}")


def _from_text(text: str) -> str:
    text = text.strip()
    if text.isascii() and text.isdigit():
        return _index(text)
    address, at, chain = text.partition("@")
    if not at:
        raise _bad(f"must be {_FORMS}")
    return address_form(address, chain)


def canonical_asset(value: Any) -> str:
    """The asset id of any accepted wire form in its canonical text (see the module doc)."""
    if isinstance(value, bool | FloatText):
        raise _bad(f"must be {_FORMS}")
    if isinstance(value, int):
        return _index(value)
    if isinstance(value, dict):
        return _from_object(value)
    return _from_text(string(value, "asset_id"))
