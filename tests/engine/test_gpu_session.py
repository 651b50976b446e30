"""benchmarks/gpu_session.sh, the prepared GPU session of issues 12 and 15: every step at toy size on
the CPU (SMOKE=1), and a budget that skips what it cannot hold. The GPU numbers themselves are in
docs/speed.md once a GPU has run it."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

from tests.conftest import MEDMNIST_DIR, SHARED_DATA, needs

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_session.sh"
STEPS = ["env", "every-method", "speed", "suite-quick-n1", "suite-quick-n2", "suite-quick-n4", "full-pneumoniamnist-bce",
         "validation-vesselmnist3d"]


def session(data: Path, out: Path, budget: int) -> list[list[str]]:
    """Run the script in smoke mode with this interpreter first on PATH; its steps.tsv rows."""
    env = {**os.environ, "SMOKE": "1", "OMP_NUM_THREADS": "1",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    subprocess.run(["bash", str(SCRIPT), str(data), str(out), str(budget)], env=env, check=True,
                   cwd=SCRIPT.parents[1], capture_output=True, timeout=900)
    return [line.split("\t") for line in (out / "steps.tsv").read_text().splitlines()]


def test_a_budget_too_small_skips_every_timed_step(tmp_path):
    rows = session(tmp_path / "data", tmp_path / "out", 0)
    assert [row[0] for row in rows] == STEPS
    assert rows[0][1] == "0" and all(row[1] == "skipped" for row in rows[1:])


@needs(MEDMNIST_DIR / "pneumoniamnist.npz")
def test_every_step_runs_and_writes_its_results(tmp_path):
    out = tmp_path / "out"
    rows = session(SHARED_DATA, out, 800)
    assert [(row[0], row[1]) for row in rows] == [(name, "0") for name in STEPS], (out / "steps.tsv").read_text()
    every_method = ElementTree.parse(out / "every-method.xml").getroot().find("testsuite")
    assert (every_method.get("tests"), every_method.get("failures"), every_method.get("errors")) == ("2", "0", "0")
    assert json.loads((out / "speed.json").read_text())["cases"][0]["case"] == "2d-28"
    for n in (1, 2, 4):
        suite = json.loads((out / f"suite-quick-n{n}.json").read_text())
        assert suite["runs_per_device"] == n and suite["runs"]["complete"] == 1
    [record] = [json.loads(path.read_text()) for path in (out / "full").glob("pneumoniamnist-bce-*.json")]
    assert record["status"] == "complete" and record["config"]["patience"] == 0
    assert "vesselmnist3d" in (out / "validation-vesselmnist3d.out").read_text()  # the dry run's plan
