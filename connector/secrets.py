"""Reading secrets named by a SecretRef, and keeping them out of logs.

Resolution happens once at start-up with the environment passed in (no module
reads ``os.environ`` by itself). Values come back as SecretStr so a repr or
an accidental log line shows ``**********``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from pydantic import BaseModel, SecretStr

from connector.settings import ConfigError, SecretRef, Settings


def resolve_secret(ref: SecretRef, key: str, environ: Mapping[str, str]) -> SecretStr:
    """The secret's value; ConfigError naming the config key when it is missing or empty."""
    if ref.env is not None:
        value = environ.get(ref.env)
        if not value:
            raise ConfigError(f"{key}: environment variable {ref.env} is not set or empty")
        return SecretStr(value.strip())
    assert ref.file is not None
    try:
        value = ref.file.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"{key}: cannot read secret file {ref.file}: {exc.strerror}") from None
    if not value:
        raise ConfigError(f"{key}: secret file {ref.file} is empty")
    return SecretStr(value)


def secret_refs(model: BaseModel, prefix: str = "") -> Iterator[tuple[str, SecretRef]]:
    """Every secret reference in use, with its configuration key; disabled sections skipped."""
    if getattr(model, "enabled", True) is False:
        return
    for name in type(model).model_fields:
        value = getattr(model, name)
        key = f"{prefix}{name}"
        items = list(enumerate(value)) if isinstance(value, list) else [(None, value)]
        for index, item in items:
            where = key if index is None else f"{key}[{index}]"
            if isinstance(item, SecretRef):
                yield where, item
            elif isinstance(item, BaseModel):
                yield from secret_refs(item, f"{where}.")


def unresolved_secrets(settings: Settings, environ: Mapping[str, str]) -> list[str]:
    """Why each secret reference cannot be read (all of them, not the first); empty when all can."""
    problems = []
    for key, ref in secret_refs(settings):
        try:
            resolve_secret(ref, key, environ)
        except ConfigError as exc:
            problems.append(str(exc))
    return problems


def mask_account(account: str) -> str:
    """An account identifier fit for logs: only its last four characters."""
    tail = account[-4:] if len(account) > 4 else ""
    return f"…{tail}" if tail else "…"
