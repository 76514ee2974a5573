"""The in-memory state and rules of a Confluent-compatible Schema Registry.

Separate from the HTTP layer so the registry's behaviour (ids, versions, soft deletes,
compatibility enforcement) can be reasoned about and tested without sockets. Errors
carry the HTTP status and Confluent ``error_code`` that clients expect, because
confluent-kafka's serializers branch on them (a 404 on a lookup, a 409 on an
incompatible registration).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from connector.governance.compat import (
    LEVELS,
    InvalidSchemaError,
    canonical_form,
    check_compatibility,
)

__all__ = [
    "DEFAULT_COMPATIBILITY",
    "IncompatibleSchemaError",
    "InvalidCompatibilityLevelError",
    "InvalidRegistrySchemaError",
    "InvalidVersionError",
    "RegisteredVersion",
    "RegistryError",
    "SchemaNotFoundError",
    "SchemaStore",
    "StoredSchema",
    "SubjectConfigNotFoundError",
    "SubjectNotFoundError",
    "SubjectNotSoftDeletedError",
    "VersionNotFoundError",
    "VersionNotSoftDeletedError",
    "VersionSoftDeletedError",
]

DEFAULT_COMPATIBILITY = "BACKWARD"
SUPPORTED_SCHEMA_TYPES = ("AVRO",)
_MAX_VERSION = 2**31 - 1


class RegistryError(Exception):
    """A request the registry refuses, with the status and error code Confluent uses."""

    http_status = 500
    error_code = 50001

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class SubjectNotFoundError(RegistryError):
    http_status, error_code = 404, 40401

    def __init__(self, subject: str) -> None:
        super().__init__(f"Subject '{subject}' not found.")


class VersionNotFoundError(RegistryError):
    http_status, error_code = 404, 40402

    def __init__(self, subject: str, version: int | str) -> None:
        super().__init__(f"Version {version} not found for subject '{subject}'.")


class SchemaNotFoundError(RegistryError):
    http_status, error_code = 404, 40403


class SubjectNotSoftDeletedError(RegistryError):
    http_status, error_code = 404, 40405

    def __init__(self, subject: str) -> None:
        super().__init__(
            f"Subject '{subject}' was not deleted first before being permanently deleted"
        )


class VersionSoftDeletedError(RegistryError):
    http_status, error_code = 404, 40406

    def __init__(self, subject: str, version: int) -> None:
        super().__init__(
            f"Version {version} of subject '{subject}' was soft deleted. "
            "Set permanent=true to delete permanently"
        )


class VersionNotSoftDeletedError(RegistryError):
    http_status, error_code = 404, 40407

    def __init__(self, subject: str, version: int) -> None:
        super().__init__(
            f"Version {version} of subject '{subject}' was not deleted first "
            "before being permanently deleted"
        )


class SubjectConfigNotFoundError(RegistryError):
    http_status, error_code = 404, 40408

    def __init__(self, subject: str) -> None:
        super().__init__(
            f"Subject '{subject}' does not have subject-level compatibility configured"
        )


class IncompatibleSchemaError(RegistryError):
    http_status, error_code = 409, 409


class InvalidRegistrySchemaError(RegistryError):
    http_status, error_code = 422, 42201


class InvalidVersionError(RegistryError):
    http_status, error_code = 422, 42202

    def __init__(self, version: object) -> None:
        super().__init__(
            f"The specified version '{version}' is not a valid version id. Allowed values are "
            f'between [1, {_MAX_VERSION}] and the string "latest"'
        )


class InvalidCompatibilityLevelError(RegistryError):
    http_status, error_code = 422, 42203

    def __init__(self, level: object) -> None:
        super().__init__(f"Invalid compatibility level {level!r}; valid values are {LEVELS}")


@dataclass(frozen=True)
class StoredSchema:
    """A schema text under its global id; the first text registered for an id is kept."""

    schema_id: int
    text: str
    schema_type: str = "AVRO"


@dataclass(frozen=True)
class RegisteredVersion:
    """One subject version, as returned by version and lookup endpoints."""

    subject: str
    version: int
    schema_id: int
    schema: str
    schema_type: str = "AVRO"


@dataclass
class _Version:
    schema_id: int
    deleted: bool = False


@dataclass
class _Subject:
    versions: dict[int, _Version] = field(default_factory=dict)
    next_version: int = 1

    def live(self) -> list[tuple[int, _Version]]:
        return [(n, v) for n, v in sorted(self.versions.items()) if not v.deleted]

    def visible(self, deleted: bool) -> list[tuple[int, _Version]]:
        return sorted(self.versions.items()) if deleted else self.live()


def parse_version(version: int | str) -> int | None:
    """Turn a version path parameter into a number, or ``None`` for the latest version."""
    if isinstance(version, str):
        if version == "latest":
            return None
        try:
            number = int(version)
        except ValueError:
            raise InvalidVersionError(version) from None
    else:
        number = version
    if number == -1:
        return None
    if not 1 <= number <= _MAX_VERSION:
        raise InvalidVersionError(version)
    return number


class SchemaStore:
    """Subjects, versions, global schema ids and compatibility settings, guarded by a lock.

    Schema ids are global: the same schema text registered under several subjects shares
    one id, as in Confluent's registry, so a consumer resolves an id without knowing the
    subject. Deletes are soft first (hidden but kept) and permanent second, again as in
    Confluent; schema texts stay resolvable by id after deletes so old records still
    deserialize.
    """

    def __init__(self, default_compatibility: str = DEFAULT_COMPATIBILITY) -> None:
        self._lock = threading.Lock()
        self._schemas: dict[int, StoredSchema] = {}
        self._ids_by_canonical: dict[str, int] = {}
        self._canonical_by_id: dict[int, str] = {}
        self._subjects: dict[str, _Subject] = {}
        self._global_level = _validate_level(default_compatibility)
        self._subject_levels: dict[str, str] = {}

    # -- registration and lookup -------------------------------------------------------

    def register(
        self,
        subject: str,
        schema: str,
        schema_type: str = "AVRO",
        references: object = None,
    ) -> int:
        """Register ``schema`` under ``subject`` and return its global id.

        Idempotent: a schema already live in the subject returns its id without a new
        version. Otherwise the subject's compatibility level is enforced against its live
        versions before a version is added.
        """
        canonical = _canonical(schema, schema_type, references)
        with self._lock:
            state = self._subjects.get(subject)
            live = state.live() if state is not None else []
            for _, version in live:
                if self._canonical_of(version.schema_id) == canonical:
                    return version.schema_id
            level = self._level_for(subject)
            problems = check_compatibility(
                schema,
                [self._schemas[v.schema_id].text for _, v in live],
                level,
                versions=[n for n, _ in live],
            )
            if problems:
                raise IncompatibleSchemaError(
                    "Schema being registered is incompatible with an earlier schema for "
                    f'subject "{subject}" (compatibility {level}): ' + "; ".join(problems)
                )
            schema_id = self._ids_by_canonical.get(canonical)
            if schema_id is None:
                schema_id = max(self._schemas, default=0) + 1
                self._schemas[schema_id] = StoredSchema(schema_id, schema, schema_type)
                self._ids_by_canonical[canonical] = schema_id
                self._canonical_by_id[schema_id] = canonical
            if state is None:
                state = self._subjects[subject] = _Subject()
            state.versions[state.next_version] = _Version(schema_id)
            state.next_version += 1
            return schema_id

    def lookup(
        self, subject: str, schema: str, schema_type: str = "AVRO", deleted: bool = False
    ) -> RegisteredVersion:
        """Find which version of ``subject`` holds ``schema`` (404 when none does)."""
        with self._lock:
            self._subject(subject, deleted)
        canonical = _canonical(schema, schema_type, None)
        with self._lock:
            state = self._subject(subject, deleted)
            for number, version in reversed(state.visible(deleted)):
                if self._canonical_of(version.schema_id) == canonical:
                    return self._registered(subject, number, version)
        raise SchemaNotFoundError(f"Schema not found under subject '{subject}'.")

    def get_schema(self, schema_id: int) -> StoredSchema:
        with self._lock:
            stored = self._schemas.get(schema_id)
        if stored is None:
            raise SchemaNotFoundError(f"Schema {schema_id} not found.")
        return stored

    def schema_types(self) -> list[str]:
        return list(SUPPORTED_SCHEMA_TYPES)

    def subject_versions_for_id(
        self, schema_id: int, deleted: bool = False
    ) -> list[tuple[str, int]]:
        """Every (subject, version) that uses ``schema_id``."""
        self.get_schema(schema_id)
        with self._lock:
            return [
                (name, number)
                for name, state in sorted(self._subjects.items())
                for number, version in state.visible(deleted)
                if version.schema_id == schema_id
            ]

    # -- subjects and versions ---------------------------------------------------------

    def subjects(
        self, prefix: str = "", deleted: bool = False, deleted_only: bool = False
    ) -> list[str]:
        with self._lock:
            names = []
            for name, state in sorted(self._subjects.items()):
                if not name.startswith(prefix) or not state.versions:
                    continue
                is_live = bool(state.live())
                if (deleted_only and not is_live) or (not deleted_only and (is_live or deleted)):
                    names.append(name)
            return names

    def versions(
        self, subject: str, deleted: bool = False, deleted_only: bool = False
    ) -> list[int]:
        with self._lock:
            state = self._subject(subject, deleted or deleted_only)
            if deleted_only:
                return [n for n, v in sorted(state.versions.items()) if v.deleted]
            return [n for n, _ in state.visible(deleted)]

    def get_version(
        self, subject: str, version: int | str, deleted: bool = False
    ) -> RegisteredVersion:
        number = parse_version(version)
        with self._lock:
            state = self._subject(subject, deleted)
            visible = dict(state.visible(deleted))
            if number is None:
                number = max(visible)
            found = visible.get(number)
            if found is None:
                raise VersionNotFoundError(subject, number)
            return self._registered(subject, number, found)

    def delete_subject(self, subject: str, permanent: bool = False) -> list[int]:
        """Soft-delete a subject (``permanent=False``) or erase a soft-deleted one."""
        with self._lock:
            state = self._subjects.get(subject)
            if state is None or not state.versions:
                raise SubjectNotFoundError(subject)
            if permanent:
                if state.live():
                    raise SubjectNotSoftDeletedError(subject)
                del self._subjects[subject]
                self._subject_levels.pop(subject, None)
                return sorted(state.versions)
            live = state.live()
            if not live:
                raise SubjectNotFoundError(subject)
            for _, version in live:
                version.deleted = True
            self._subject_levels.pop(subject, None)
            return [n for n, _ in live]

    def delete_version(self, subject: str, version: int | str, permanent: bool = False) -> int:
        """Soft-delete one version, or erase a version that was soft-deleted before."""
        number = parse_version(version)
        with self._lock:
            state = self._subject(subject, deleted=permanent)
            if number is None:
                candidates = state.visible(deleted=permanent)
                number = candidates[-1][0]
            found = state.versions.get(number)
            if found is None:
                raise VersionNotFoundError(subject, number)
            if permanent:
                if not found.deleted:
                    raise VersionNotSoftDeletedError(subject, number)
                del state.versions[number]
                if not state.versions:
                    del self._subjects[subject]
                return number
            if found.deleted:
                raise VersionSoftDeletedError(subject, number)
            found.deleted = True
            return number

    # -- compatibility -----------------------------------------------------------------

    def get_compatibility(self, subject: str | None = None, default_to_global: bool = False) -> str:
        """The global level, or a subject's own level (404 unless ``default_to_global``)."""
        with self._lock:
            if subject is None:
                return self._global_level
            level = self._subject_levels.get(subject)
            if level is not None:
                return level
            if default_to_global:
                return self._global_level
        raise SubjectConfigNotFoundError(subject)

    def set_compatibility(self, level: str, subject: str | None = None) -> str:
        normalized = _validate_level(level)
        with self._lock:
            if subject is None:
                self._global_level = normalized
            else:
                self._subject_levels[subject] = normalized
        return normalized

    def delete_compatibility(self, subject: str | None = None) -> str:
        """Drop a subject's own level (or reset the global one); returns the old level."""
        with self._lock:
            if subject is None:
                previous, self._global_level = self._global_level, DEFAULT_COMPATIBILITY
                return previous
            previous_level = self._subject_levels.pop(subject, None)
        if previous_level is None:
            raise SubjectConfigNotFoundError(subject)
        return previous_level

    def test_compatibility(
        self,
        subject: str,
        schema: str,
        version: int | str | None = None,
        schema_type: str = "AVRO",
    ) -> list[str]:
        """Why ``schema`` could not be registered next in ``subject`` (empty if it could).

        With a ``version`` the candidate is compared with that version only; without one,
        with all live versions as the subject's level demands (transitive or not).
        """
        _canonical(schema, schema_type, None)
        number = None if version is None else parse_version(version)
        with self._lock:
            level = self._level_for(subject)
            state = self._subjects.get(subject)
            live = state.live() if state is not None else []
            if version is not None:
                if number is None:
                    live = live[-1:]
                else:
                    if not live:
                        raise SubjectNotFoundError(subject)
                    live = [(n, v) for n, v in live if n == number]
                    if not live:
                        raise VersionNotFoundError(subject, number)
            previous = [self._schemas[v.schema_id].text for _, v in live]
        return check_compatibility(schema, previous, level, versions=[n for n, _ in live])

    # -- helpers (callers hold the lock) -----------------------------------------------

    def _subject(self, subject: str, deleted: bool) -> _Subject:
        state = self._subjects.get(subject)
        if state is None or not state.visible(deleted):
            raise SubjectNotFoundError(subject)
        return state

    def _canonical_of(self, schema_id: int) -> str:
        return self._canonical_by_id[schema_id]

    def _level_for(self, subject: str) -> str:
        return self._subject_levels.get(subject, self._global_level)

    def _registered(self, subject: str, number: int, version: _Version) -> RegisteredVersion:
        stored = self._schemas[version.schema_id]
        return RegisteredVersion(subject, number, stored.schema_id, stored.text, stored.schema_type)


def _validate_level(level: object) -> str:
    if not isinstance(level, str) or level.upper() not in LEVELS:
        raise InvalidCompatibilityLevelError(level)
    return level.upper()


def _canonical(schema: str, schema_type: str, references: object) -> str:
    """Validate a submitted schema and return its identity key."""
    if schema_type not in SUPPORTED_SCHEMA_TYPES:
        raise InvalidRegistrySchemaError(
            f"Unsupported schema type {schema_type!r}; this registry supports "
            f"{', '.join(SUPPORTED_SCHEMA_TYPES)} only"
        )
    if references:
        raise InvalidRegistrySchemaError("Schema references are not supported by this registry")
    try:
        return canonical_form(schema)
    except InvalidSchemaError as exc:
        raise InvalidRegistrySchemaError(str(exc)) from exc
