"""What a configuration may ask of transport security, as rules the settings apply.

Pure checks, kept apart from the settings model so the rules read as one list:

- ``kafka.security`` takes only ``security.protocol``, ``sasl.*`` and ``ssl.*``
  (it is applied after the producer's safety defaults, so anything else could
  turn off acks, idempotence or timeouts), and not the ``ssl.*`` values that
  turn certificate checks off;
- a credential-shaped librdkafka key holds a ``{file: …}``/``{env: …}``
  reference, never the secret itself;
- credentials do not travel in cleartext to a host other than loopback unless
  the section says ``allow_insecure_transport: true``;
- a URL carries no userinfo (``https://user:pass@…`` ends up in logs).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

KAFKA_SECURITY_KEYS = frozenset({"security.protocol"})
KAFKA_SECURITY_PREFIXES = ("sasl.", "ssl.")

SECRET_KAFKA_KEY = re.compile(r"(password|secret|^ssl\.key\.pem$|^sasl\.oauthbearer\.config$)")
"""librdkafka keys whose value is a secret (the chart's values schema uses the same pattern)."""

_WEAKENING: Mapping[str, tuple[str, ...]] = {
    # Empty or "none" skips the broker host name check.
    "ssl.endpoint.identification.algorithm": ("https",),
}
"""Allowed keys that may only take these values (lower case): others weaken verification."""

_CLEARTEXT_PROTOCOLS = frozenset({"plaintext", "sasl_plaintext"})
_CLEARTEXT_SCHEMES = frozenset({"http", "ws"})


def refused_security_keys(security: Mapping[str, object]) -> list[str]:
    """One line per refused ``kafka.security`` key, naming it and why; empty when all pass."""
    refused = []
    for key, value in sorted(security.items()):
        if key not in KAFKA_SECURITY_KEYS and not key.startswith(KAFKA_SECURITY_PREFIXES):
            refused.append(
                f"{key}: not allowed (only security.protocol, sasl.* and ssl.*; "
                "acks, idempotence and timeouts are fixed by the connector)"
            )
        elif SECRET_KAFKA_KEY.search(key) and isinstance(value, str):
            refused.append(f"{key}: a secret is given as {{file: …}} or {{env: …}}, never inline")
        elif key in _WEAKENING and str(value).lower() not in _WEAKENING[key]:
            refused.append(f"{key}: must stay {' or '.join(_WEAKENING[key])} (certificate checks)")
    return refused


def kafka_cleartext(security: Mapping[str, object]) -> bool:
    """Whether the configured protocol sends Kafka traffic (SASL credentials too) unencrypted."""
    protocol = security.get("security.protocol", "plaintext")
    return str(protocol).lower() in _CLEARTEXT_PROTOCOLS


def kafka_credentials(security: Mapping[str, object]) -> bool:
    """Whether ``kafka.security`` carries a credential (a SASL password or other secret)."""
    return any(SECRET_KAFKA_KEY.search(key) for key in security)


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses: traffic that never leaves the machine."""
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bootstrap_hosts(servers: str) -> list[str]:
    """The host of each ``host:port`` in a bootstrap list (``[v6]:port`` understood)."""
    hosts = []
    for item in servers.split(","):
        item = item.strip().split("://", 1)[-1]
        if item.startswith("["):
            hosts.append(item[1:].split("]", 1)[0])
        else:
            hosts.append(item.rsplit(":", 1)[0] if item.count(":") == 1 else item)
    return [h for h in hosts if h]


def remote_cleartext(urls: Iterable[str]) -> list[str]:
    """The URLs among ``urls`` that are cleartext (http, ws) to a host other than loopback."""
    found = []
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme.lower() in _CLEARTEXT_SCHEMES and not is_loopback(parts.hostname or ""):
            found.append(url)
    return found


def has_userinfo(url: str) -> bool:
    """Whether ``url`` carries ``user[:password]@`` before its host."""
    return "@" in urlsplit(url).netloc
