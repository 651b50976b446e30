"""Our top-level `datasets` shadows Hugging Face's; libauc pulls in transformers, which probes it."""
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

PROBE = r"""
import datasets, libauc, libauc.losses, libauc.optimizers
from libauc.losses import AUCMLoss
from libauc.optimizers import PESG
import transformers
from transformers.utils import import_utils
exists, version = import_utils._is_package_available("datasets", return_version=True)
import transformers.trainer
print(datasets.__file__)
"""


def test_libauc_and_transformers_import_with_critbench_installed(tmp_path):
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert Path(result.stdout.strip().splitlines()[-1]).resolve() == REPO / "datasets" / "__init__.py"


def test_critbench_imports_after_transformers(tmp_path):
    code = "import transformers, libauc.losses; from datasets import list_datasets; print(len(list_datasets()))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 0 and int(result.stdout.split()[-1]) >= 10, result.stderr[-3000:]
