"""The first-hour review's report findings: a run id trained twice with different results, the
"next:" hint, old and new records of one test set, verdicts from two seeds, the validation table's
"rerun one", ranks against bold marks, resumed runs' training time and the verdict's order."""
from __future__ import annotations

import json
import shlex
from pathlib import Path
from types import SimpleNamespace

from benchmarks.core.identity import data_fingerprint, run_id
from benchmarks.core.metrics import METRICS
from benchmarks.core.storage import save_record
from benchmarks.engine.resolve import resolve_config
from benchmarks.run import build_parser, config_from_args
from reports import validation
from reports.leaderboard import build_leaderboard, mark_best_and_rank
from reports.published import seed_interval, verdict
from reports.report import build_report
from reports.runs import load_runs
from reports.terminal import next_steps
from reports.verdicts import verdicts
from tests.reports.test_first_hour import run_record

REPO = Path(__file__).resolve().parents[2]


def test_a_run_id_trained_twice_with_different_results_keeps_the_later_and_says_so(tmp_path, capsys):
    """The same run id in two folders with different test scores: whatever the folder order, the
    record that finished last counts, and the skip line names both files and test AUCs."""
    old, new = run_record("bce", 0, 1.0), run_record("bce", 0, 2.0)
    old["finished_at"], new["finished_at"] = "2026-12-01T00:00:00+00:00", "2026-12-07T00:00:00+00:00"
    save_record(new, tmp_path / "new")
    save_record(old, tmp_path / "old")
    for folders in ([tmp_path / "new", tmp_path / "old"], [tmp_path / "old", tmp_path / "new"]):
        loaded = load_runs(folders)
        assert [run.record["test"]["auc"] for run in loaded.runs] == [new["test"]["auc"]]
        ((path, why),) = loaded.skipped
        assert path.parent == tmp_path / "old" and why.startswith(f"warning: run {new['run_id']} was trained twice with different results")
        assert f"test AUC {new['test']['auc']:.4f}" in why and f"test AUC {old['test']['auc']:.4f}" in why
        assert str(tmp_path / "new") in why and "which ran last" in why
    loaded.report_skipped()
    assert "was trained twice with different results" in capsys.readouterr().err
    html = build_report([tmp_path / "old", tmp_path / "new"], tmp_path / "report.html").read_text()
    assert "was trained twice with different results" in html.split("Files skipped while reading")[1]


def test_the_next_hint_reruns_the_recorded_command_into_the_folder_of_the_records(tmp_path):
    """A suite's records made elsewhere (--out /elsewhere): the hint adds seeds with that command and
    --out where the records are now; benchmarks.run records get one run per missing seed; records of
    several commands get no command (a bare leaderboard command would start the full suite)."""
    suite = "python -m benchmarks.leaderboard --suite tiny --seeds 0 --data-dir /d --out /elsewhere"
    for method in ("bce", "alm"):
        save_record(run_record(method, 0, 1.0, command=suite), tmp_path / "suite")
    steps = "\n".join(next_steps(build_leaderboard(load_runs(tmp_path / "suite")), tmp_path / "suite", tmp_path / "r.html"))
    assert f"`python -m benchmarks.leaderboard --suite tiny --data-dir /d --seeds 0-4 --out {tmp_path / 'suite'}`" in steps
    for seed in (0, 1):
        command = f"python -m benchmarks.run --dataset synthetic2d --method bce --seed {seed} --out /x"
        save_record(run_record("bce", seed, 1.0, command=command), tmp_path / "single")
    steps = "\n".join(next_steps(build_leaderboard(load_runs(tmp_path / "single")), tmp_path / "single", tmp_path / "r.html"))
    assert (f"`for seed in 2 3 4; do python -m benchmarks.run --dataset synthetic2d --method bce --out "
            f"{tmp_path / 'single'} --seed $seed; done`") in steps
    save_record(run_record("alm", 0, 1.0, command=suite), tmp_path / "single")
    steps = "\n".join(next_steps(build_leaderboard(load_runs(tmp_path / "single")), tmp_path / "single", tmp_path / "r.html"))
    assert "benchmarks.leaderboard" not in steps and "no single recorded command made its records" in steps


def test_a_record_without_the_split_md5_pools_with_new_records_of_its_test_set(tmp_path):
    """PneumoniaMNIST's case: seed 0's version-1 record lacks split_md5, seed 1's has it; the same
    source and test labels make them one test set (seed ensemble kept), not a test set per seed."""
    old = run_record("bce", 0, 1.0)
    del old["dataset"]["split_md5"]
    old["record_version"] = 1  # written before split_md5 was recorded
    for record in (old, run_record("bce", 1, 1.0), run_record("alm", 0, 2.0), run_record("alm", 1, 2.0)):
        save_record(record, tmp_path / "runs")
    loaded = load_runs(tmp_path / "runs")
    assert len(loaded.runs) == 4 and not loaded.skipped
    (summary,) = build_leaderboard(loaded).datasets
    assert summary.shared_test_set and len(summary.test_sets) == 1
    assert all(cell.ensemble for cell in summary.cells.values())


def test_two_seeds_give_no_verdict_and_a_clipped_interval_says_so():
    """PneumoniaMNIST's 0.937 and 0.961: the t interval reaches 1.101, cut to 1 and marked, and two
    seeds give no verdict; three seeds do."""
    two = seed_interval([0.937, 0.961])
    assert two.clipped and two.high == 1.0 and two.text() == "[0.797, 1.000] (clipped)"
    assert verdict(0.944, two, 2) == "n=2: no verdict (needs 3 seeds)"
    three = seed_interval([0.937, 0.961, 0.950])
    assert not three.clipped and three.text() == f"[{three.low:.3f}, {three.high:.3f}]"
    assert verdict(0.944, three, 3) == "consistent"


def test_rerun_one_retrains_exactly_that_rows_run_into_the_records_folder():
    """Each row's command is a benchmarks.run of one run, whose resolved config gives the run id of
    the row's first record (a leaderboard command would train 4 runs, into runs/validation)."""
    runs = REPO / "results" / "validation"
    runs_of = load_runs(runs).runs
    for row in validation.table_rows(runs):
        words = shlex.split(row[-1].strip("`"))
        assert words[:3] == ["python", "-m", "benchmarks.run"] and words[-2:] == ["--out", str(runs)]
        config = resolve_config(config_from_args(build_parser().parse_args(words[3:])))
        first = next(run for run in runs_of if run.config["dataset"] == config.dataset and run.method == config.method
                     and run.seed == config.seed)
        if first.record["record_version"] >= 2:  # a version 1 record's id came from older code
            assert run_id(config, data_fingerprint(first.record["dataset"])) == first.run_id


def cells(*aucs: float) -> dict:
    return {f"row{index}": SimpleNamespace(competes=True, best=set(), rank=None,
                                           seeds={m.key: (auc, 0.0) for m in METRICS}) for index, auc in enumerate(aucs)}


def test_rows_bold_together_share_a_rank_and_a_row_alone_gets_none():
    tied = cells(0.8651, 0.8649, 0.5)
    mark_best_and_rank(tied, "seeds")
    assert "auc" in tied["row0"].best and "auc" in tied["row1"].best
    assert [cell.rank for cell in tied.values()] == [1.5, 1.5, 3.0]
    alone = cells(0.9)
    mark_best_and_rank(alone, "seeds")
    assert alone["row0"].rank is None and "auc" in alone["row0"].best


def test_a_resumed_runs_time_in_the_report_counts_the_epochs_before_it_resumed(tmp_path):
    record = run_record("bce", 0, 1.0)
    record["history"][0]["seconds"], record["seconds"], record["resumed_from_epoch"] = 300.0, 45.0, 1
    save_record(record, tmp_path / "runs")
    html = build_report(tmp_path / "runs", tmp_path / "report.html").read_text()
    assert "· 345.0 s (resumed from epoch 1; the last process 45.0 s) ·" in html


def test_the_verdict_leads_with_the_training_seed_view(tmp_path):
    for seed in (0, 1, 2):
        for method, quality in (("bce", 0.5), ("alm", 3.0)):
            save_record(run_record(method, seed, quality), tmp_path / "runs")
    (found,) = verdicts(build_leaderboard(load_runs(tmp_path / "runs")))
    text = found.text
    assert text.index("; over training seeds ΔFPR ") < text.index("given these 3 paired seeds' models, ΔFPR over test negatives")
    assert "p = <" not in text and "p < 0.001" in text


def test_a_diverged_run_is_not_sent_back_to_be_rerun_as_it_is(tmp_path):
    """results/alm_dose's mu0 = 1e-2 diverges again at the same settings: 'rerun to retry it' was wrong advice."""
    save_record(run_record("bce", 0, 1.0), tmp_path)
    for run, failure in (("synthetic2d-alm-s0-a", "diverged"), ("synthetic2d-alm-s1-b", "crashed")):
        (tmp_path / f"{run}.failed.json").write_text(json.dumps({
            "record_version": 2, "run_id": run, "status": "failed", "failure": failure,
            "reason": "DivergedError: training loss became nan in epoch 8", "config": run_record("alm", 0, 1.0)["config"]}))
    steps = "\n".join(next_steps(build_leaderboard(load_runs(tmp_path)), tmp_path, tmp_path / "r.html"))
    assert "1 run diverged (a NaN or infinite loss): the same settings diverge again" in steps
    assert "1 run crashed (the report's Failures section says why): rerun the same command to retry it" in steps
