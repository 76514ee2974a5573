"""deploy/connector.example.yaml is the settings model: every key, its real default, its doc."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from connector.cli import main
from connector.governance.config_example import render
from connector.settings import SecretRef, Settings, load_settings

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "connector.example.yaml"


def _keys(model: type[BaseModel], prefix: str = "") -> set[str]:
    keys = set()
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if (
            isinstance(annotation, type)
            and issubclass(annotation, BaseModel)
            and annotation is not SecretRef
        ):
            keys |= _keys(annotation, f"{prefix}{name}.")
            continue
        keys.add(f"{prefix}{name}")
    return keys


def _paths(tree: dict[str, Any], prefix: str = "") -> set[str]:
    found = set()
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            found |= _paths(value, f"{prefix}{key}.")
        else:
            found.add(f"{prefix}{key}")
    return found


def test_the_committed_example_is_what_the_model_generates() -> None:
    assert EXAMPLE.read_text(encoding="utf-8") == render(), (
        "run `connector config example --output deploy/connector.example.yaml`"
    )


def test_the_example_holds_every_key_with_its_real_default() -> None:
    tree = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    assert _paths(tree) == _keys(Settings)
    assert load_settings(EXAMPLE, {}) == Settings()
    assert tree["kafka"]["delivery_timeout_ms"] == 0


def test_every_key_carries_its_description() -> None:
    text = render()
    for line in [
        "# Give up start-up (exit 1) when no broker answered for this long.",
        "# Producer compression codec. One of: none | gzip | snappy | lz4 | zstd.",
        "#     private_key: <required>",
    ]:
        assert line in text


def test_check_fails_on_a_stale_file_and_output_rewrites_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stale = tmp_path / "example.yaml"
    stale.write_text(render().replace("delivery_timeout_ms: 0", "delivery_timeout_ms: 300000"))
    assert main(["config", "example", "--output", str(stale), "--check"]) == 1
    assert "is stale" in capsys.readouterr().err
    assert main(["config", "example", "--output", str(stale)]) == 0
    assert main(["config", "example", "--output", str(stale), "--check"]) == 0
    assert stale.read_text(encoding="utf-8") == render()
