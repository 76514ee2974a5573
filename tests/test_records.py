"""The closed sets of dead-letter codes, read as data."""

from __future__ import annotations

from connector.records import DeadLetterHeader, FrameSource, OptionalHeader, Stage, members


def test_members_are_the_constants_in_declaration_order() -> None:
    assert members(Stage) == (
        "receive",
        "decode",
        "validate",
        "encode",
        "route",
        "deliver",
        "parse",
        "map",
    )
    assert members(FrameSource) == ("rest_snapshot", "rest_baseline")


def test_members_skip_everything_but_upper_case_string_constants() -> None:
    class Closed:
        """Docstrings, methods and other attributes are not members."""

        A = "a"
        B = "b"
        lower = "not a member"
        NUMBER = 3

        def method(self) -> str:
            return self.A

    assert members(Closed) == ("a", "b")


def test_header_names_never_repeat() -> None:
    names = [*members(DeadLetterHeader), *members(OptionalHeader)]
    assert len(names) == len(set(names))
