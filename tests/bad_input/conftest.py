"""The bad-input harness shared by every command's cases (issue 13): call a command's `main()` in
process and check what a user sees: the exit code, one line naming the culprit, no traceback, no
training before a refusal that could be made up front, and finished records untouched."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from benchmarks.engine.trainer import Trainer
from tests.reports.record_fixture import current_record

FINISHED = "synthetic2d-bce-s0-0123456789ab"


@dataclass
class Outcome:
    code: int
    out: str
    err: str


def invoke(main, argv, capsys) -> Outcome:
    """Run a command's `main(argv)` as `python -m` would: SystemExit (argparse) is its exit code;
    any other exception escapes and fails the test with its traceback."""
    try:
        code = main([str(item) for item in argv])
    except SystemExit as error:
        code = error.code if isinstance(error.code, int) else 2
    captured = capsys.readouterr()
    return Outcome(code, captured.out, captured.err)


def assert_refused(outcome: Outcome, names: str, code: int = 2, one_line: bool = True) -> None:
    """Refused with exit `code` and a message naming `names` (the flag, file or parameter), without
    a Python traceback; `one_line`: stderr is that single line."""
    err = outcome.err
    assert "Traceback" not in err, err
    assert outcome.code == code, (outcome.code, err)
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines, "no message on stderr"
    assert any(names in line for line in lines), err
    if one_line:
        assert len(lines) == 1, err


def snapshot(folder: Path) -> dict:
    """Every file under `folder` with the sha256 of its bytes, to prove nothing finished was lost or changed."""
    return {str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(Path(folder).rglob("*")) if path.is_file()}


@pytest.fixture
def trained(monkeypatch) -> list:
    """The configs that reached `Trainer.fit` (a refusal made up front leaves this empty)."""
    calls = []
    original = Trainer.fit

    def spy(self, *args, **kwargs):
        calls.append(self.config)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "fit", spy)
    return calls


@pytest.fixture
def out(tmp_path) -> Path:
    """An out folder holding one finished record, which no refusal may change."""
    folder = tmp_path / "runs"
    folder.mkdir()
    (folder / f"{FINISHED}.json").write_text(json.dumps(current_record(FINISHED)))
    return folder
