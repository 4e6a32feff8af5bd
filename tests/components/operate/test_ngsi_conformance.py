"""The conformance ratchet: ETSI's NGSI-LD suite (the sections that finish within a few minutes)
and FIWARE's suite run against a local Qala (scripts/ngsi_conformance.py); no section may pass
fewer test cases than tests/ngsi_conformance_baseline.json records.

Raise the figures with ``--record`` after an improvement; a drop fails here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tests.conftest import need

REPO = Path(__file__).resolve().parents[3]
SCRIPT = REPO / "scripts" / "ngsi_conformance.py"
BASELINE = REPO / "tests" / "ngsi_conformance_baseline.json"
# ContextSource runs under `make conformance` only (its notification waits take minutes).
RATCHETED = [
    "CommonBehaviours",
    "Consumption-Discovery",
    "Consumption-Entity",
    "Consumption-TemporalEntity",
    "Provision-BatchEntities",
    "Provision-Entities",
    "Provision-EntityAttributes",
    "Provision-TemporalEntity",
    "Provision-TemporalEntityAttributes",
    "Subscription",
]
pytestmark = pytest.mark.slow


def _peers() -> Path:
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import ngsi_conformance
    finally:
        sys.path.pop(0)
    return Path(ngsi_conformance.PEERS)


def test_baseline_names_every_ratcheted_section() -> None:
    baseline = json.loads(BASELINE.read_text())
    assert set(RATCHETED) <= set(baseline["etsi"])
    assert baseline["fiware"], "the FIWARE sections are recorded"
    for suite in baseline.values():
        for counts in suite.values():
            assert 0 <= counts["passed"] <= counts["total"]


def test_conformance_counts_do_not_drop(tmp_path: Path) -> None:
    peers = _peers()
    need(peers.exists(), f"the NGSI-LD suites are absent from {peers} (../shared/peers)")
    need(shutil.which("npm"), "npm is needed to install jest for FIWARE's suite")
    sections = [arg for name in RATCHETED for arg in ("--section", name)]
    command = [sys.executable, str(SCRIPT), "--suite", "all", *sections]
    outputs = ["--json", str(tmp_path / "counts.json"), "--timeout", "600"]
    result = subprocess.run(
        [*command, "--check", str(BASELINE), *outputs],
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    counts = json.loads((tmp_path / "counts.json").read_text())
    assert set(counts["etsi"]) == set(RATCHETED)
    assert sum(c["passed"] for c in counts["fiware"].values()) > 0
