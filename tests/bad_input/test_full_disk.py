"""A full disk or a file-size limit (issue 27 item 1): a checkpoint that cannot be written ends
checkpointing, not the run, which writes its record; a suite keeps every finished record; caches,
records and reports that cannot be written end with one line. Real write failures: the commands run
in a subprocess under RLIMIT_FSIZE (SIGXFSZ ignored, so a write past the limit fails with EFBIG),
smaller than a checkpoint at width 0.25 (whose tensors cross the limit inside torch.save's zip writer:
the RuntimeError of old; at width 0.125 the limit fell in the final flush) but above the 1 MB probe of --out."""
from __future__ import annotations

import errno
import json
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.core.storage import write_atomic
from tests.bad_input.conftest import FINISHED, snapshot  # and the `out` fixture
from tests.conftest import TINY_SUITE, write_suite

LIMIT = 1_500_000  # bytes: above the 1 MB write probe and any record, below a checkpoint
REPO = Path(__file__).resolve().parents[2]


def limited(argv: list, cwd: Path) -> subprocess.CompletedProcess:
    """`python argv` with every file it writes limited to LIMIT bytes."""
    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (LIMIT, LIMIT))

    return subprocess.run([sys.executable, *map(str, argv)], cwd=cwd, preexec_fn=limit, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)})


def test_a_writer_that_wraps_the_disk_error_raises_the_disk_error(tmp_path):
    """torch.save's zip writer turns the stream's OSError into a RuntimeError ('enforce fail at
    inline_container.cc'), which `except OSError` missed: write_atomic raises the OSError itself,
    and leaves no temporary file."""
    def torch_like(stream):
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError:
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")

    with pytest.raises(OSError) as raised:
        write_atomic(tmp_path / "x.pt", torch_like)
    assert raised.value.errno == errno.ENOSPC
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(RuntimeError, match="not about the disk"):  # other errors pass through unchanged
        write_atomic(tmp_path / "x.pt", lambda stream: (_ for _ in ()).throw(RuntimeError("not about the disk")))


def test_a_run_whose_checkpoint_cannot_be_written_finishes_and_writes_its_record(tmp_path):
    out = tmp_path / "runs"
    done = limited(["-m", "benchmarks.run", "--dataset", "synthetic2d", "--method", "alm", "--epochs", "2",
                    "--width", "0.25", "--size", "8", "--device", "cpu", "--quiet", "--out", out], tmp_path)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    warnings = [line for line in done.stderr.splitlines() if line.startswith("warning: cannot write checkpoint")]
    assert len(warnings) == 1 and "(File too large); the run goes on without checkpoints" in warnings[0]
    record = json.loads(Path(done.stdout.strip().splitlines()[-1]).read_text())
    assert record["status"] == "complete" and len(record["history"]) == 2
    assert not any(out.glob("checkpoints/*")) and not any(out.glob(".*.tmp"))  # no checkpoint, no temporary file


def test_a_suite_under_a_file_size_limit_keeps_every_record_and_says_what_failed(tmp_path, out):
    suite = write_suite(tmp_path, TINY_SUITE.replace("seeds = [0, 1]", "seeds = [0]").replace("width = 0.125", "width = 0.25"))
    before = snapshot(out)
    done = limited(["-m", "benchmarks.leaderboard", "--suite", suite, "--out", out], tmp_path)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.count("warning: cannot write checkpoint") == 2
    assert "2 runs completed, 0 failed, 0 rescued" in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith(
        "error: building the report failed (OSError: [Errno 27] File too large)")
    assert snapshot(out)[f"{FINISHED}.json"] == before[f"{FINISHED}.json"]
    records = [json.loads(path.read_text()) for path in out.glob("synthetic2d-*.json") if path.stem != FINISHED]
    assert sorted(record["config"]["method"] for record in records) == ["alm", "bce"]
    assert all(record["status"] == "complete" for record in records)


def test_a_cache_entry_that_cannot_be_written_is_one_line(tmp_path):
    """The CIFAR cache writes its tensors with torch.save through write_entry: a full cache disk
    is the one-line CritBenchError naming the entry, not torch's RuntimeError."""
    script = ("import torch; from datasets.cache import write_entry\n"
              f"write_entry(__import__('pathlib').Path({str(tmp_path / 'entry.pt')!r}), "
              "lambda stream: torch.save(torch.zeros(1_000_000), stream))\n")
    done = limited(["-c", f"from benchmarks.core.errors import CritBenchError\ntry:\n    exec({script!r})\n"
                          f"except CritBenchError as error:\n    print(error)"], tmp_path)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert done.stdout.strip() == (f"cannot write {tmp_path / 'entry.pt'} (OSError: File too large); free space in --param "
                                   f"cache_dir, or pass cache_dir=none")
