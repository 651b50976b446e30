"""`python -m reports.validation`: the Validation summary in README.md and the full table in
docs/validation.md, generated from run records alone."""
from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from benchmarks.core.config import RunConfig, rerun_command
from benchmarks.core.metrics import binary_metrics
from benchmarks.core.identity import stable_hash
from benchmarks.core.storage import save_record
from reports import validation
from reports.runs import run_seconds
from reports.stats import delong_paired_test
from tests.reports.record_fixture import current_record

REPO = Path(__file__).resolve().parents[2]


def pneumonia_record(seed: int) -> dict:
    """A bce record at MedMNIST v2's PneumoniaMNIST protocol (which published.toml matches), with
    synthetic test scores on one shared test set, its command naming this machine's paths."""
    record = current_record()
    y = np.array([0, 1] * 120)
    scores = 1.5 * y + np.random.default_rng(seed).normal(size=len(y))
    config = {**record["config"], "dataset": "pneumoniamnist", "size": 28, "method": "bce", "seed": seed,
              "epochs": 100, "patience": 0, "width": 1.0, "batch_size": 128, "params": {}}
    record.update(config=config, run_id=f"pneumoniamnist-bce-s{seed}-{stable_hash({'config': config})}",
                  test=binary_metrics(y, scores), test_scores={"y_true": y.tolist(), "y_score": scores.tolist()},
                  finished_at=f"2026-11-0{seed + 1}T10:00:00+00:00",
                  command=(f"python -m benchmarks.run --dataset pneumoniamnist --method bce --seed {seed} "
                           f"--data-dir '/home/me/my data' --out=/scratch/runs"))
    record["dataset"].update(name="pneumoniamnist", source_md5="0" * 32,
                             splits={**record["dataset"]["splits"], "test": {"n": len(y), "positives": int(y.sum())}})
    record["env"]["cpu"] = "Some CPU 9000"
    return record


def rows_of(text: str, prefix: str = "| pneumoniamnist") -> list[list[str]]:
    return [[cell.strip() for cell in line.split("|")[1:-1]] for line in text.splitlines() if line.startswith(prefix)]


def test_readme_gets_the_summary_and_docs_the_full_table(tmp_path):
    """n per cell, mean and 95% CI, the published value with its verdict in both; device, dates,
    wall time and a portable rerun command in the full table only."""
    for seed in (0, 1, 2):
        save_record(pneumonia_record(seed), tmp_path / "runs")
    readme, docs = tmp_path / "README.md", tmp_path / "validation.md"
    for path in (readme, docs):
        path.write_text(f"# x\n\n## Validation\n\n{validation.START}\nold\n{validation.END}\n\nafter\n")
    assert validation.main(["--runs", str(tmp_path / "runs"), "--readme", str(readme), "--docs", str(docs)]) == 0
    full, summary = docs.read_text(), readme.read_text()
    for text in (full, summary):
        assert "old" not in text and text.endswith("after\n") and text.count(validation.START) == 1
        assert f"--readme {readme} --docs {docs}" in text  # the comment names the command that regenerates both
    (row,) = rows_of(full)
    assert len(row) == len(validation.COLUMNS)
    assert row[1] == "bce" and row[2] == "3" and "MedMNIST v2 ResNet-18 (28)" in row[4]
    assert re.search(r"\((consistent|below|above)\)", row[4])
    assert row[-1].startswith("`python -m benchmarks.run --dataset pneumoniamnist --method bce --batch-size 128")
    assert row[-1].endswith(f" --data-dir DIR --out {tmp_path / 'runs'}`") and "/home/me" not in row[-1]
    assert row[7] == "2026-11-01 to 2026-11-03" and "(Some CPU 9000)" in row[6]
    assert rows_of(summary) == [row[:validation.SUMMARY_COLUMNS]]
    assert "Some CPU" not in summary and "--data-dir DIR" not in summary


def test_without_a_target_the_full_table_is_printed(tmp_path, capsys):
    save_record(pneumonia_record(0), tmp_path / "runs")
    assert validation.main(["--runs", str(tmp_path / "runs")]) == 0
    (row,) = rows_of(capsys.readouterr().out)
    assert len(row) == len(validation.COLUMNS) and row[2] == "1"


def test_a_file_without_markers_is_refused_in_one_line(tmp_path, capsys):
    save_record(pneumonia_record(0), tmp_path / "runs")
    readme = tmp_path / "README.md"
    readme.write_text("no markers")
    assert validation.main(["--runs", str(tmp_path / "runs"), "--readme", str(readme)]) == 2
    assert "has no <!-- validation:start -->" in capsys.readouterr().err and readme.read_text() == "no markers"


def test_the_committed_tables_are_up_to_date(tmp_path, monkeypatch):
    """README.md and docs/validation.md hold what the generator makes of results/validation now (run
    from the repository, as its "rerun one" commands write to --out results/validation)."""
    monkeypatch.chdir(REPO)
    runs = Path("results") / "validation"
    for name in ("README.md", "docs/validation.md"):
        copy = tmp_path / Path(name).name
        copy.write_text((REPO / name).read_text(encoding="utf-8"), encoding="utf-8")
        flag = "--readme" if name == "README.md" else "--docs"
        assert validation.main(["--runs", str(runs), flag, str(copy)]) == 0
        generated = re.search(re.escape(validation.START) + r"\n<!--.*?-->\n(.*?)" + re.escape(validation.END),
                              copy.read_text(encoding="utf-8"), re.S)[1]
        assert generated in (REPO / name).read_text(encoding="utf-8"), f"{name} is stale: rerun reports.validation"


def test_the_dates_leave_out_records_without_them_and_old_device_names_read_well():
    runs = [SimpleNamespace(record={"env": {"device_name": "cpu (AMD EPYC, 1 threads)", "precision": "fp32"}})]
    assert validation.date_range(runs) == "—"  # a record from before finished_at
    runs.append(SimpleNamespace(record={"finished_at": "2026-12-05T06:00:00+00:00"}))
    assert validation.date_range(runs) == "2026-12-05"
    assert validation.device(runs[0]) == "cpu (AMD EPYC, 1 thread), fp32"


def test_a_resumed_runs_wall_time_counts_the_epochs_before_it_resumed():
    history = [{"seconds": 10.0}, {"seconds": 20.0}, {"seconds": 40.0}]
    assert run_seconds({"seconds": 45.0, "history": history, "resumed_from_epoch": 2}) == 75.0
    assert run_seconds({"seconds": 71.0, "history": history, "resumed_from_epoch": None}) == 71.0


def test_a_record_without_its_command_gets_an_equivalent_one():
    """Every method parameter travels, not only the preset: a suite's lr beside the preset changes
    the run id, and a value with a space is quoted for the shell."""
    config = RunConfig(dataset="cifar10", method="alm", seed=7, epochs=100, imbalance=200.0, batch_size=64,
                       params={"preset": "c10_1to200", "lr": 0.01}, dataset_params={"val_per_class": 500}, amp=False)
    assert rerun_command(config) == ("python -m benchmarks.run --dataset cifar10 --method alm --seed 7 --batch-size 64 "
                                     "--imbalance 200 --no-amp --param preset=c10_1to200 --param lr=0.01 --param val_per_class=500")
    spaced = RunConfig(dataset="cifar10", method="alm", params={"preset": "a b"})
    assert rerun_command(spaced).endswith("--param 'preset=a b'")
    assert "preset" not in rerun_command(RunConfig(dataset="cifar10", method="bce", params={"preset": "", "lr": 0.1}))


def test_a_run_without_a_finite_test_auc_is_counted_not_a_crash(tmp_path):
    """A record stores a non-finite test AUC as null: the row's mean and interval are over the
    finite ones, and the row says how many runs had none."""
    for seed in (0, 1, 2):
        record = pneumonia_record(seed)
        if seed == 2:
            record["test"]["auc"] = None
        save_record(record, tmp_path / "runs")
    (row,) = validation.table_rows(tmp_path / "runs")
    finite = [pneumonia_record(seed)["test"]["auc"] for seed in (0, 1)]
    assert row[2] == "3" and row[3].startswith(f"{np.mean(finite):.3f} [")
    assert row[3].endswith("(1 of 3 runs without a finite test AUC)")


def test_the_paired_column_shows_the_ensembles_it_compares():
    """The paired test is on seed ensembles, whose AUCs differ from the per-seed means beside them:
    the cell names both, and a tiny negative difference reads +0.000."""
    test = SimpleNamespace(auc_a=0.86531, auc_b=0.86544, diff=-0.00013, p=0.9971)
    assert validation.paired_text(test) == "ensembles 0.865 vs 0.865: ΔAUC +0.000, p 0.997"
    assert validation.paired_text(None) == "—"


def test_the_paired_column_shows_no_p_where_the_test_set_has_too_few_of_a_class():
    """A test set with one positive gives the paired DeLong test no p (None): shown as —, not a crash."""
    y = np.r_[1, np.zeros(99, dtype=int)]
    rng = np.random.default_rng(0)
    test = delong_paired_test(y, rng.normal(0, 1, 100) + y, rng.normal(0, 1, 100))
    assert validation.paired_text(test).endswith(f"ΔAUC {test.diff:+.3f}, p —")
