"""checkov's Kubernetes checks pass on the rendered chart, but for the exceptions its README names.

checkov pins ``packaging<24``, which pytest cannot share, so it is found in
its own environment (``CHECKOV``), next to this interpreter, or on PATH.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import helm_python
import pytest

from tests.deploy.artefacts import CHART
from tests.deploy.rendered import NAMESPACE, RELEASE, VALUES_FILES, load_values

DIGEST = "sha256:" + "ab" * 32
EXCEPTION = re.compile(r"^\| (CKV_K8S_\d+) \|", re.MULTILINE)


def _checkov() -> str:
    found = os.environ.get("CHECKOV") or shutil.which(
        "checkov", path=str(Path(sys.executable).parent)
    )
    found = found or shutil.which("checkov")
    if found is None:
        pytest.skip("checkov is not installed (its own venv: pip install checkov; CHECKOV=…)")
    return found


def test_checkov_passes_on_every_rendered_values_file(
    chart: helm_python.Chart, tmp_path: Path
) -> None:
    exceptions = EXCEPTION.findall((CHART / "README.md").read_text(encoding="utf-8"))
    assert exceptions, "the chart README lists no checkov exceptions"
    for path in VALUES_FILES:
        values = load_values(path)
        values.setdefault("image", {})["digest"] = DIGEST
        manifests = chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
        text = "\n---\n".join(
            t for p, t in sorted(manifests.items()) if p.endswith(".yaml") and t.strip()
        )
        (tmp_path / f"{path.stem}.yaml").write_text(text, encoding="utf-8")
    result = subprocess.run(
        [
            _checkov(),
            "--directory",
            str(tmp_path),
            "--framework",
            "kubernetes",
            "--skip-download",
            "--skip-check",
            ",".join(exceptions),
            "--output",
            "json",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    report = json.loads(result.stdout)
    summary = report["summary"]
    failed = [f"{c['check_id']} {c['resource']}" for c in report["results"]["failed_checks"]]
    assert summary["failed"] == 0 and result.returncode == 0, failed
    assert summary["passed"] > 100
