"""checkov's Kubernetes checks pass on the rendered chart, but for the exceptions its README names.

checkov pins ``packaging<24``, which pytest cannot share, so it runs from its
own environment: ``CHECKOV`` where set, else one built from
``requirements/checkov.lock`` and cached like the SDK environments.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import helm_python

from tests.conformance.sdk_venvs import ensure_locked
from tests.deploy.artefacts import CHART
from tests.deploy.rendered import NAMESPACE, RELEASE, VALUES_FILES, load_values

DIGEST = "sha256:" + "ab" * 32
LOCK = Path(__file__).resolve().parents[2] / "requirements" / "checkov.lock"
RUN_CHECKOV = "import sys; from checkov.main import Checkov; sys.exit(Checkov().run())"
EXCEPTION = re.compile(r"^\| (CKV_K8S_\d+) \|", re.MULTILINE)


def _checkov() -> list[str]:
    given = os.environ.get("CHECKOV")
    if given:
        return [given]
    env = ensure_locked("checkov", LOCK)
    # Run as a module: the cached environment was renamed into place, which breaks its scripts.
    return [str(env.python), "-c", RUN_CHECKOV]


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
            *_checkov(),
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
