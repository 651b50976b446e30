"""The HTML report, leaderboard.csv/.md and the build CLI, from one real run plus records derived from it."""
from __future__ import annotations

import copy
import csv
import hashlib
import json
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import scipy.stats
from plotly.offline import get_plotlyjs, get_plotlyjs_version
from scipy.stats import norm, t as student_t
from sklearn.metrics import roc_auc_score

from benchmarks.core.config import RunConfig
from benchmarks.core.metrics import binary_metrics
from benchmarks.core.identity import stable_hash
from benchmarks.core.storage import save_record, write_json_atomic
from benchmarks.engine.pipeline import run_benchmark
from benchmarks.engine.resolve import resolve_config
from benchmarks.methods import resolve_params
from datasets import get_dataset_entry
from reports.build import main
from reports.paired import main as paired_main
from reports.leaderboard import build_leaderboard
from reports.published import Reference, load_references, published_comparisons, seed_interval
from reports.report import build_report
from reports.runs import load_runs
from reports.stats import delong_paired_test
from tests.conftest import TINY
from tests.reports.record_fixture import current_record, edited

CHROMIUM = Path("/usr/bin/chromium")
QUALITY = {"bce": 1.0, "aucm": 1.3, "alm": 1.6, "focal": 1.1}  # separation of the fabricated logits
# (dataset, size, imbalance, test n, seeds, shared test set, {method: [param overrides per row]})
FABRICATED = [
    ("pneumoniamnist", 28, None, 240, (0, 1, 2), True, {"bce": [{}], "aucm": [{}], "alm": [{"delta": 0.25}, {"delta": 0.5}]}),
    ("cifar10", 32, 100.0, 300, (0, 1), True, {"bce": [{}], "alm": [{"delta": 0.25}]}),
    ("cifar10", 32, 200.0, 300, (0, 1), True, {"bce": [{}], "aucm": [{}]}),
    ("synthetic2d", 8, None, 120, (0, 1), False, {"bce": [{}], "alm": [{}]}),  # bce seed 0 is the real run
]


def fabricate(real: dict, dataset: str, size: int, imbalance, n_test: int, seed: int, shared: bool,
              method: str, overrides: dict) -> dict:
    """A record with the real run's exact schema, for another dataset/method/seed, with synthetic scores."""
    record = copy.deepcopy(real)
    data_rng = np.random.default_rng([len(dataset), int(imbalance or 0), 0 if shared else seed + 1])
    y = (data_rng.random(n_test) < 0.2).astype(int)
    y[:2] = (0, 1)
    if dataset == real["config"]["dataset"] and seed == real["config"]["seed"]:
        y = np.array(real["test_scores"]["y_true"])  # the same seed draws the same synthetic test set
    rng = np.random.default_rng([len(dataset), int(imbalance or 0), seed, sum(map(ord, method)),
                                 int(10 * overrides.get("delta", 0))])
    quality = QUALITY[method] + overrides.get("delta", 0)
    logits = quality * y + rng.normal(0, 1, n_test)
    val = quality * y + rng.normal(0, 1, n_test)
    config = {**record["config"], "dataset": dataset, "size": size, "imbalance": imbalance, "method": method,
              "seed": seed, "params": resolve_params(method, overrides)}
    epochs = np.arange(1, config["epochs"] + 1)
    val_aucs = (0.9 - 0.3 / epochs + 0.01 * rng.normal(size=len(epochs))).round(4)
    record.update(
        config=config,
        run_id=f"{dataset}-{method}-s{seed}-{stable_hash({'config': config})}",
        history=[{"epoch": int(e), "train_loss": 1 / e, "val_auc": float(a), "lr": 1e-3, "seconds": 0.1}
                 for e, a in zip(epochs, val_aucs)],
        best_epoch=int(epochs[val_aucs.argmax()]),
        val=binary_metrics(y, val),
        test=binary_metrics(y, logits),
        test_scores={"y_true": y.tolist(), "y_score": logits.tolist()},
    )
    record["dataset"].update(name=dataset, source_md5=None if dataset.startswith("synthetic") else "0" * 32,
                             splits={**record["dataset"]["splits"], "test": {"n": n_test, "positives": int(y.sum())}},
                             split_md5={**record["dataset"]["split_md5"], "test": real["dataset"]["split_md5"]["test"]
                                        if np.array_equal(y, real["test_scores"]["y_true"]) else
                                        hashlib.md5(f"{dataset}-{imbalance}-{'shared' if shared else seed}".encode()).hexdigest()})
    return record


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory) -> Path:
    """One real synthetic2d run, records derived from it for 4 dataset columns, a failure and junk files."""
    root = tmp_path_factory.mktemp("runs")
    real = run_benchmark(resolve_config(RunConfig(dataset="synthetic2d", method="bce", seed=0, **TINY)), progress=False)
    save_record(real, root / "real")
    for dataset, size, imbalance, n_test, seeds, shared, methods in FABRICATED:
        for method, rows in methods.items():
            for overrides in rows:
                for seed in seeds:
                    if (dataset, method, seed) == ("synthetic2d", "bce", 0):
                        continue
                    record = fabricate(real, dataset, size, imbalance, n_test, seed, shared, method, overrides)
                    save_record(record, root / "suite" / dataset)
    failed = {"status": "failed", "run_id": "pneumoniamnist-alm-s3-deadbeef0000",
              "config": {"dataset": "pneumoniamnist", "method": "alm", "seed": 3},
              "reason": "DivergedError: training loss became nan in epoch 4; try a lower --lr",
              "traceback": "Traceback (most recent call last):\n  ...\nDivergedError", "failed_at": "2026-01-01T00:00:00+00:00"}
    write_json_atomic(root / "suite" / "pneumoniamnist-alm-s3-deadbeef0000.failed.json", failed)
    (root / "suite" / "notes.json").write_text('{"suite": "quick"}')
    (root / "suite" / "broken.json").write_text('{"status": "compl')
    return root


@pytest.fixture(scope="module")
def report(runs_dir, tmp_path_factory) -> Path:
    return build_report(runs_dir, tmp_path_factory.mktemp("report") / "report.html")


class Page(HTMLParser):
    """Every tag's attributes, and the text of the leaderboard's header and row-label cells."""

    def __init__(self):
        super().__init__()
        self.attrs: list[tuple[str, dict]] = []
        self.in_leaderboard = False
        self.cell: list[str] | None = None
        self.headers: list[str] = []
        self.row_labels: list[str] = []
        self.table_links: list[str] = []
        self.cell_kind = ""

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.attrs.append((tag, attrs))
        if tag == "table" and "leaderboard" in (attrs.get("class") or ""):
            self.in_leaderboard = True
        if self.in_leaderboard and tag == "th":
            self.cell, self.cell_kind = [], "row" if attrs.get("scope") == "row" else "header"
        if self.in_leaderboard and tag == "a":
            self.table_links.append(attrs.get("href", ""))

    def handle_endtag(self, tag):
        if tag == "table":
            self.in_leaderboard = False
        if tag == "th" and self.cell is not None:
            text = " ".join("".join(self.cell).split())
            (self.row_labels if self.cell_kind == "row" else self.headers).append(text)
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)


@pytest.fixture(scope="module")
def page(report) -> Page:
    parsed = Page()
    parsed.feed(report.read_text())
    return parsed


def test_table_has_every_dataset_and_method(page):
    for label in ("pneumoniamnist · 28px", "cifar10 · 1:100 · 32px", "cifar10 · 1:200 · 32px", "synthetic2d · 8px"):
        assert label in page.headers
    rows = set(page.row_labels)
    assert {"bce", "aucm", "alm(delta=0.25)", "alm(delta=0.5)"} == {r for r in rows if "ensemble" not in r
                                                                   and "published" not in r}
    assert "MedMNIST v2 ResNet-18 (28)published" in rows  # pneumoniamnist's published rows, tagged
    assert {"alm(delta=0.25)ensemble", "bceensemble"} <= rows  # the seed-ensemble block
    assert "alm" not in rows  # delta varies on pneumoniamnist, so every alm row names it


def test_no_network_address_and_plotly_embedded_once(report, page):
    html = report.read_text()
    for tag, attrs in page.attrs:
        for name in ("src", "href", "action", "srcset", "poster", "data"):
            value = (attrs.get(name) or "").strip()
            assert not re.match(r"^([a-z][a-z0-9+.-]*:)?//", value, re.I), f"<{tag} {name}={value!r}>"
            assert not value.lower().startswith(("http:", "https:", "ftp:")), f"<{tag} {name}={value!r}>"
        if tag == "link":
            pytest.fail("the report must not load stylesheets or other linked resources")
    assert html.count(get_plotlyjs()[:500]) == 1
    assert not [attrs for tag, attrs in page.attrs if tag == "script" and "src" in attrs]


def test_every_run_is_linked_from_the_table(page, runs_dir):
    anchors = [attrs["id"] for tag, attrs in page.attrs if tag == "details" and "run" in attrs.get("class", "")]
    records = [p for p in runs_dir.rglob("*.json") if p.name not in ("notes.json", "broken.json")
               and not p.name.endswith(".failed.json")]
    assert len(anchors) == len(records) == len(set(anchors))
    assert {f"#{anchor}" for anchor in anchors} <= set(page.table_links)


def load_runs_of(runs_dir: Path, dataset: str, method: str, delta=None) -> list[dict]:
    records = [json.loads(p.read_text()) for p in runs_dir.rglob(f"{dataset}-{method}-s*.json")]
    return [r for r in records if r["status"] == "complete" and r["config"]["imbalance"] is None
            and (delta is None or r["config"]["params"]["delta"] == delta)]


def test_leaderboard_numbers_match_the_records(report, runs_dir):
    rows = list(csv.DictReader((report.parent / "leaderboard.csv").open()))
    pneumonia = {(r["method"], r["kind"]): r for r in rows if r["dataset"] == "pneumoniamnist"}
    bce, alm = load_runs_of(runs_dir, "pneumoniamnist", "bce"), load_runs_of(runs_dir, "pneumoniamnist", "alm", 0.5)
    aucs = [r["test"]["auc"] for r in bce]
    assert float(pneumonia["bce", "seeds"]["auc_mean"]) == pytest.approx(np.mean(aucs), abs=1e-5)
    assert float(pneumonia["bce", "seeds"]["auc_std"]) == pytest.approx(np.std(aucs, ddof=1), abs=1e-5)
    assert pneumonia["bce", "seeds"]["n_seeds"] == "3"
    y = np.array(bce[0]["test_scores"]["y_true"])
    ensemble = {name: np.mean([r["test_scores"]["y_score"] for r in runs], axis=0) for name, runs in (("bce", bce), ("alm", alm))}
    assert float(pneumonia["alm(delta=0.5)", "seed_ensemble"]["auc_mean"]) == pytest.approx(roc_auc_score(y, ensemble["alm"]), abs=1e-5)
    test = delong_paired_test(y, ensemble["alm"], ensemble["bce"])
    # the pooled AUC, its CIs and the paired test are the seed ensemble's, so they sit on its line
    line = pneumonia["alm(delta=0.5)", "seed_ensemble"]
    assert float(line["auc_diff_vs_bce"]) == pytest.approx(test.diff, abs=1e-5)
    assert float(line["p_vs_bce"]) == pytest.approx(test.p, rel=1e-4)
    assert float(line["pooled_auc"]) == pytest.approx(float(line["auc_mean"]), abs=1e-5)
    assert float(line["pooled_auc_delong_low"]) < float(line["pooled_auc"]) < float(line["pooled_auc_delong_high"])
    assert line["pooled_auc_estimate"] == "seed ensemble"
    assert pneumonia["alm(delta=0.5)", "seeds"]["pooled_auc"] == ""
    assert float(pneumonia["alm(delta=0.5)", "seeds"]["rank"]) == 1.0  # the best-separated fabricated method
    synthetic = [r for r in rows if r["dataset"] == "synthetic2d"]
    assert {r["kind"] for r in synthetic} == {"seeds"}  # a test set per seed: no ensemble
    assert {r["pooled_auc_estimate"] for r in synthetic} == {"mean of per-seed test sets"}


def test_per_seed_test_sets_are_paired_by_test_set(report, runs_dir):
    """synthetic2d draws a test set per seed: per-test-set paired DeLong tests combined as sum(d)/sqrt(sum(var))."""
    diffs, variances = [], []
    for seed in (0, 1):
        (bce,), (alm,) = ([r for r in load_runs_of(runs_dir, "synthetic2d", m) if r["config"]["seed"] == seed] for m in ("bce", "alm"))
        assert bce["test_scores"]["y_true"] == alm["test_scores"]["y_true"]
        test = delong_paired_test(bce["test_scores"]["y_true"], alm["test_scores"]["y_score"], bce["test_scores"]["y_score"])
        diffs.append(test.diff)
        variances.append(test.se ** 2)
    z = sum(diffs) / np.sqrt(sum(variances))
    rows = list(csv.DictReader((report.parent / "leaderboard.csv").open()))
    (line,) = [r for r in rows if r["dataset"] == "synthetic2d" and r["method"] == "alm(delta=0.25)"]
    assert float(line["auc_diff_vs_bce"]) == pytest.approx(np.mean(diffs), abs=1e-5)
    assert float(line["p_vs_bce"]) == pytest.approx(2 * norm.sf(abs(z)), rel=1e-4)


def test_best_is_bold_and_fpr_lower_is_better(report):
    markdown = (report.parent / "leaderboard.md").read_text()

    def pneumonia_cell(section: str, method: str) -> str:
        lines = markdown.split(f"## {section}")[1].split("##")[0].strip().splitlines()
        column = [c.strip() for c in lines[0].split("|")].index("pneumoniamnist · 28px")
        return next(line for line in lines if line.startswith(f"| {method} |")).split("|")[column].strip()

    # the best-separated fabricated method, also the alm variant with the best validation AUC (✓)
    assert pneumonia_cell("AUC", "alm(delta=0.5) ✓").startswith("**")
    assert not pneumonia_cell("AUC", "bce").startswith("**")
    assert pneumonia_cell("FPR@TPR=0.95", "alm(delta=0.5) ✓").startswith("**")  # lowest FPR is best
    assert not pneumonia_cell("FPR@TPR=0.95", "bce").startswith("**")
    assert "alm(delta=0.5) ✓ (seed ensemble)" in markdown


def test_a_sweep_variant_is_selected_on_validation_never_on_test(runs_dir, tmp_path):
    """Two alm variants: delta=0.1 has the better validation AUC, delta=0.9 the better test AUC.
    Only delta=0.1 is selected and competes for bold (and alone, no rank); delta=0.9 shows its validation AUC
    beside its test numbers and is never bold, though its test AUC is the column's best."""
    real = next(iter(load_runs(runs_dir / "real").runs)).record
    y = np.array(real["test_scores"]["y_true"])
    for delta, val_quality, test_quality in ((0.1, 3.0, 0.5), (0.9, 0.5, 3.0)):
        for seed in (0, 1):
            record = fabricate(real, "pneumoniamnist", 28, None, len(y), seed, True, "alm", {"delta": delta})
            noise = np.random.default_rng([seed, int(10 * delta)]).normal(0, 1, (2, len(y)))
            record["val"] = binary_metrics(y, val_quality * y + noise[0])
            record["test"] = binary_metrics(y, test_quality * y + noise[1])
            record["test_scores"] = {"y_true": y.tolist(), "y_score": (test_quality * y + noise[1]).tolist()}
            save_record(record, tmp_path / "runs")
    board = build_leaderboard(load_runs(tmp_path / "runs"))
    (summary,) = board.datasets
    cells = {row.label: cell for row, cell in summary.cells.items()}
    chosen, other = cells["alm(delta=0.1)"], cells["alm(delta=0.9)"]
    assert chosen.val_auc[0] > other.val_auc[0] and other.seeds["auc"][0] > chosen.seeds["auc"][0]
    assert chosen.selected is True and other.selected is False
    assert "auc" in chosen.best and not other.best and other.rank is None
    assert chosen.rank is None  # the only competing row: a rank of 1 would win nothing
    build_report(tmp_path / "runs", tmp_path / "report.html")
    html = (tmp_path / "report.html").read_text()
    assert html.count("selected on validation") >= 2  # the explanation and the chosen row's mark
    rows = {r["method"]: r for r in csv.DictReader((tmp_path / "leaderboard.csv").open()) if r["kind"] == "seeds"}
    assert rows["alm(delta=0.1)"]["selected_on_validation"] == "True"
    assert rows["alm(delta=0.9)"]["selected_on_validation"] == "False"


def test_variants_with_different_seeds_are_compared_on_the_seeds_they_share(runs_dir, tmp_path):
    """A dose-response point at seed 0 only (val 0.80) beside a variant at seeds 0 and 1 (val 0.85
    at seed 0, 0.70 at seed 1): on the shared seed 0 the second is better (0.85 > 0.80), though its
    mean over its own seeds (0.775) is lower; with no shared seed the own-seed means decide."""
    real = next(iter(load_runs(runs_dir / "real").runs)).record

    def write(delta: float, seed: int, val_auc: float, folder: str):
        record = fabricate(real, "pneumoniamnist", 28, None, 240, seed, True, "alm", {"delta": delta})
        record["val"] = {**record["val"], "auc": val_auc}
        save_record(record, tmp_path / folder)

    write(0.1, 0, 0.80, "shared")
    write(0.9, 0, 0.85, "shared")
    write(0.9, 1, 0.70, "shared")
    (summary,) = build_leaderboard(load_runs(tmp_path / "shared")).datasets
    cells = {row.label: cell for row, cell in summary.cells.items()}
    assert cells["alm(delta=0.9)"].val_auc[0] < cells["alm(delta=0.1)"].val_auc[0]
    assert cells["alm(delta=0.9)"].selected is True and cells["alm(delta=0.1)"].selected is False
    write(0.1, 2, 0.80, "apart")
    write(0.9, 0, 0.85, "apart")
    write(0.9, 1, 0.70, "apart")
    (summary,) = build_leaderboard(load_runs(tmp_path / "apart")).datasets
    cells = {row.label: cell for row, cell in summary.cells.items()}
    assert cells["alm(delta=0.1)"].selected is True and cells["alm(delta=0.9)"].selected is False


def test_failures_and_skipped_files_are_listed_not_counted(report):
    html = report.read_text()
    failures = html.split('id="failures"')[1].split("</section>")[0]
    assert "pneumoniamnist-alm-s3-deadbeef0000" in failures and "DivergedError" in failures
    assert "broken.json" in failures and "notes.json" not in html  # unreadable listed; other JSON ignored
    assert 'skipped files: 1</a>' in html.split("</header>")[0]
    skipped = [r for r in csv.DictReader((report.parent / "leaderboard.csv").open()) if r["kind"] == "skipped"]
    assert [(Path(r["file"]).name, r["reason"]) for r in skipped] == [
        ("broken.json", "is not valid JSON (Unterminated string starting at: line 1 column 12)")]
    assert "pneumoniamnist-alm-s3-deadbeef0000" not in html.split('id="failures"')[0]


def test_non_finite_scores_show_as_nan_not_as_a_result(runs_dir, tmp_path):
    (path,) = (runs_dir / "real").glob("*.json")
    record = json.loads(path.read_text())
    save_record(record, tmp_path / "runs")
    record.update(run_id=record["run_id"] + "-nan", config={**record["config"], "seed": 7},
                  test=binary_metrics(record["test_scores"]["y_true"], np.full(len(record["test_scores"]["y_true"]), np.nan)),
                  test_scores={**record["test_scores"], "y_score": [None] * len(record["test_scores"]["y_true"])})
    save_record(record, tmp_path / "runs")
    build_report(tmp_path / "runs", tmp_path / "report.html")
    rows = list(csv.DictReader((tmp_path / "leaderboard.csv").open()))
    assert [(r["kind"], r["n_seeds"], r["auc_mean"]) for r in rows] == [("seeds", "2", ""), ("seed_ensemble", "1", f"{record_auc(path):.6g}")]
    assert "| bce | NaN |" in (tmp_path / "leaderboard.md").read_text()


def record_auc(path: Path) -> float:
    return json.loads(path.read_text())["test"]["auc"]


def test_cli(runs_dir, tmp_path, capsys):
    assert main(["--runs", str(tmp_path / "missing"), "--out", str(tmp_path / "r.html")]) == 2
    assert "is not a folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["--runs", str(tmp_path / "empty"), "--out", str(tmp_path / "r.html")]) == 2
    assert "no usable run records" in capsys.readouterr().err
    assert main(["--runs", str(runs_dir / "real"), "--out", str(tmp_path / "out" / "r.html")]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == str(tmp_path / "out" / "r.html")
    assert {p.name for p in (tmp_path / "out").iterdir()} == {"r.html", "leaderboard.csv", "leaderboard.md", "leaderboard.tex"}
    # the terminal gets the leaderboard, the dataset's verdict and what to run next
    assert "synthetic2d · 8px\n  method seeds test AUC" in err and "\n  bce    1 " in err
    assert "verdict: only bce ran here: nothing to compare with it" in err
    assert f"next:\n  - open the report in a browser: {tmp_path / 'out' / 'r.html'}" in err
    assert f"load_runs('{runs_dir / 'real'}')" in err
    # its record carries no command: none is guessed (a bare leaderboard command runs the full suite)
    assert "--seeds 0-4" not in err and f"no single recorded command made its records, so none is suggested" in err
    assert f"--out {runs_dir / 'real'} (finished runs are kept)" in err


def test_several_runs_folders_make_one_report_reading_each_record_once(runs_dir, tmp_path, capsys):
    """--runs A B: a new method's runs beside baselines kept elsewhere; a folder inside another (or
    named twice) adds no duplicate, and a missing one is refused before anything is written."""
    suite, real = runs_dir / "suite", runs_dir / "real"
    out = tmp_path / "r.html"
    assert main(["--runs", str(real), str(tmp_path / "missing"), "--out", str(out)]) == 2
    assert f"--runs {tmp_path / 'missing'} is not a folder" in capsys.readouterr().err and not out.exists()
    assert main(["--runs", str(real), str(suite), str(suite / "cifar10"), "--out", str(out)]) == 0
    _, err = capsys.readouterr()
    alone, together = load_runs(suite), load_runs([real, suite, suite / "cifar10"])
    assert len(together.runs) == len(alone.runs) + 1 and not any("duplicate" in why for _, why in together.skipped)
    assert f" from <code>{real} {suite} {suite / 'cifar10'}</code>" in out.read_text()
    assert f"load_runs({[str(real), str(suite), str(suite / 'cifar10')]!r})" in err
    copy_of_real = tmp_path / "copy"
    shutil.copytree(real, copy_of_real)
    twice = load_runs([real, copy_of_real])
    assert len(twice.runs) == 1 and [why for _, why in twice.skipped] == [f"duplicate of run {twice.runs[0].run_id}"]


def test_plotly_from_the_cdn_on_request(runs_dir, tmp_path):
    """--plotly cdn: one <script src> at cdn.plot.ly for the installed plotly.js, nothing embedded."""
    assert main(["--runs", str(runs_dir / "real"), "--out", str(tmp_path / "r.html"), "--plotly", "cdn"]) == 0
    html = (tmp_path / "r.html").read_text()
    sources = re.findall(r'<script src="([^"]+)"', html)
    assert sources == [f"https://cdn.plot.ly/plotly-{get_plotlyjs_version()}.min.js"]
    assert get_plotlyjs()[:500] not in html and len(html) < 1_000_000


def test_building_a_report_does_not_import_torch():
    code = "import sys, reports.build; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).parents[2]).returncode == 0


@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is absent (install Debian's chromium to run the browser test)")
def test_report_renders_in_headless_chromium(report, tmp_path):
    from playwright.sync_api import sync_playwright  # the dev extra; `playwright install` is never needed

    requests, errors = [], []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--no-first-run", "--disable-sync"])
        try:
            view = browser.new_page(viewport={"width": 1400, "height": 900})
            view.on("request", lambda request: requests.append(request.url))
            view.on("pageerror", lambda error: errors.append(str(error)))
            view.goto(report.as_uri(), wait_until="load")
            view.wait_for_selector(".js-plotly-plot .scatterlayer .trace", timeout=30_000)
            plots = view.locator(".js-plotly-plot").count()
            traces = view.locator(".js-plotly-plot .scatterlayer .trace").count()
            drawn_lines = view.locator(".js-plotly-plot .scatterlayer .trace path.js-line").count()
            view.screenshot(path=str(tmp_path / "report.png"), full_page=False)
            first_run = view.locator("details.run").first.get_attribute("id")
            undrawn = view.locator(f"#schedule-{first_run} .scatterlayer .trace").count()
            view.goto(report.as_uri() + "#" + first_run)
            opened = view.locator("details.run").first.get_attribute("open")
            view.wait_for_selector(f"#schedule-{first_run} .scatterlayer .trace", timeout=30_000)  # drawn on opening
        finally:
            browser.close()
    assert not errors, errors
    assert [url for url in requests if not url.startswith(("file:", "data:", "blob:"))] == []
    # ROC and training curves for each of the 4 datasets, and pneumoniamnist's alm delta sweep as a
    # dose-response per seed (3); run schedules wait
    assert plots == 4 + 4 + 3
    assert undrawn == 0
    assert traces > 20 and drawn_lines > 20
    assert (tmp_path / "report.png").stat().st_size > 10_000
    assert opened is not None  # a link to a run opens its section


def image_folder_record(folder: str, md5: str, seed: int) -> dict:
    record = edited(edited(current_record(f"imagefolder-bce-s{seed}-{md5[:6]}{seed:06d}"), "dataset.source_md5", md5),
                    "dataset.source", f"/data/{folder}")
    record["config"].update(dataset="imagefolder", method="bce", seed=seed)
    return record


def test_two_image_folders_never_share_a_column(tmp_path):
    """Two different folders run with the same settings are two dataset columns (keyed by the md5 of
    their content), labelled with folder and md5 as they would read alike; a copy of a folder (the
    same content elsewhere) shares its column, whose label then needs no md5."""
    for folder, md5, seed in (("scans", "a" * 32, 0), ("scans", "b" * 32, 0), ("other", "b" * 32, 1)):
        save_record(image_folder_record(folder, md5, seed), tmp_path / "runs")
    board = build_leaderboard(load_runs(tmp_path / "runs"))
    assert [(d.key.label, len(d.runs)) for d in board.datasets] == [
        ("imagefolder · 8px (scans, md5 aaaaaa)", 1), ("imagefolder · 8px (md5 bbbbbb)", 2)]
    build_report(tmp_path / "runs", tmp_path / "report.html")
    rows = [r for r in csv.DictReader((tmp_path / "leaderboard.csv").open()) if r["kind"] == "seeds"]
    assert sorted((r["data_md5"], r["n_seeds"]) for r in rows) == [("a" * 32, "1"), ("b" * 32, "2")]
    (tmp_path / "runs" / f"{image_folder_record('scans', 'a' * 32, 0)['run_id']}.json").unlink()
    (summary,) = build_leaderboard(load_runs(tmp_path / "runs")).datasets
    assert summary.key.label == "imagefolder · 8px"


def test_records_written_before_the_layout_renovation_are_still_read(tmp_path):
    """tests/reports/records_v1/ holds a record written by CritBench 9ef9df0 (schema version 1,
    before the renovation): the report reads it and shows its run and AUC."""
    old = Path(__file__).parent / "records_v1"
    html = build_report(old, tmp_path / "report.html").read_text()
    record = json.loads(next(old.glob("*.json")).read_text())
    assert record["record_version"] == 1 and record["env"]["git_revision"].startswith("9ef9df0")
    assert record["run_id"] in html and "synthetic2d" in html
    csv_text = (tmp_path / "leaderboard.csv").read_text()
    assert f"{record['test']['auc']:.6g}"[:5] in csv_text


def test_a_run_page_shows_and_plots_the_method_state(tmp_path):
    """An alm run's history carries mu and its multipliers per epoch: the run page tabulates them
    and embeds a schedule figure with a panel for lr and one for each state entry."""
    config = resolve_config(RunConfig(dataset="synthetic2d", method="alm", seed=0, **{**TINY, "epochs": 3}))
    record = run_benchmark(config, progress=False)
    save_record(record, tmp_path / "runs")
    html = build_report(tmp_path / "runs", tmp_path / "report.html").read_text()
    (run,) = load_runs(tmp_path / "runs").runs
    assert {"mu", "mu_frozen", "multiplier_mean", "multiplier_max"} <= set(run.state_keys)
    assert "<th>mu</th>" in html
    script = html.split(f'data-plot="schedule-{run.anchor}" data-lazy>')[1].split("</script>")[0]
    figure = json.loads(script)
    titles = [note["text"].removeprefix("<b>").removesuffix("</b>") for note in figure["layout"]["annotations"]]
    assert titles == ["lr", *run.state_keys]
    assert [trace["mode"] for trace in figure["data"]][titles.index("mu_frozen")] == "markers"  # a boolean: no line
    assert figure["layout"][f"yaxis{titles.index('mu_frozen') + 1}"]["ticktext"] == ["no", "yes"]
    assert figure["layout"]["xaxis"]["tickformat"] == "d" and figure["layout"]["xaxis"]["dtick"] == 1  # whole epochs
    mu = figure["data"][titles.index("mu")]["y"]
    assert mu == [epoch["mu"] for epoch in record["history"]]


@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is absent (install Debian's chromium to run the browser test)")
def test_a_run_page_draws_alms_violation_and_term_to_loss_panels_in_chromium(tmp_path):
    """Issue 22: an ALM run's page plots, per epoch, whether the constraint acted (violation_mean,
    violated_pair_share) and how much its term weighed against the base loss (term_to_loss): opening
    the run's section (its link) draws one panel per state entry, each with the run's values."""
    from playwright.sync_api import sync_playwright  # the dev extra; `playwright install` is never needed

    record = run_benchmark(resolve_config(RunConfig(dataset="synthetic2d", method="alm", seed=0,
                                                    **{**TINY, "epochs": 3})), progress=False)
    save_record(record, tmp_path / "runs")
    path = build_report(tmp_path / "runs", tmp_path / "report.html")
    (run,) = load_runs(tmp_path / "runs").runs
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(f"{path.as_uri()}#{run.anchor}", wait_until="load")
            page.wait_for_selector(f"#schedule-{run.anchor}.js-plotly-plot .scatterlayer", timeout=30_000)
            drawn = page.evaluate("""(id) => { const plot = document.getElementById(id);
              return {titles: Array.from(plot.querySelectorAll(".annotation-text")).map(t => t.textContent),
                      traces: plot.data.map(trace => trace.y)}; }""", f"schedule-{run.anchor}")
        finally:
            browser.close()
    for key in ("violation_mean", "violated_pair_share", "term_to_loss"):
        assert key in drawn["titles"]
        assert drawn["traces"][drawn["titles"].index(key)] == [epoch[key] for epoch in record["history"]]


def test_the_interval_over_seeds_stays_within_the_range_of_an_auc():
    """Two seeds (one degree of freedom, t = 12.7): 0.937 and 0.961 give mean 0.949 +- 0.152; an AUC
    above 1 is impossible, so the interval ends at 1."""
    interval = seed_interval([0.937, 0.961])
    assert interval.auc == pytest.approx(0.949)
    assert interval.low == pytest.approx(0.949 - 12.7062 * 0.012, abs=1e-4) and interval.high == 1.0


def test_published_verdicts_from_the_ci_over_seeds(runs_dir, tmp_path):
    """Three bce seeds on pneumoniamnist with test AUCs a, b, c: a published value inside their 95%
    Student-t interval is consistent, one above the interval makes CritBench "below", one under it
    "above"; a reference whose `match` the runs do not have is shown but not compared."""
    real = next(iter(load_runs(runs_dir / "real").runs)).record
    for seed in (0, 1, 2):
        record = fabricate(real, "pneumoniamnist", 28, None, 240, seed, True, "bce", {})
        record["config"].update(epochs=100, patience=0)
        save_record(record, tmp_path / "runs")
    board = build_leaderboard(load_runs(tmp_path / "runs"))
    aucs = [run.record["test"]["auc"] for run in board.datasets[0].runs]
    interval = seed_interval(aucs)
    half = scipy.stats.t.ppf(0.975, 2) * np.std(aucs, ddof=1) / np.sqrt(3)
    assert interval.low == pytest.approx(np.mean(aucs) - half) and interval.high == pytest.approx(np.mean(aucs) + half)
    match = {"method": "bce", "epochs": 100, "patience": 0}
    references = [Reference("pneumoniamnist", 28, label, auc, "a paper", "a protocol", match=match)
                  for label, auc in (("inside", float(np.mean(aucs))), ("high", interval.high + 0.01),
                                     ("low", interval.low - 0.01))]
    references.append(Reference("pneumoniamnist", 28, "other protocol", 0.9, "a paper", "p", match={"epochs": 50}))
    found = published_comparisons(board, references)[board.datasets[0].key.anchor]
    assert len(found.references) == 4
    assert {c.reference.label: c.verdict for c in found.comparisons} == {
        "inside": "consistent", "high": "below", "low": "above"}
    assert all(c.n == 3 for c in found.comparisons)


def test_the_published_file_reads_and_the_report_shows_it(runs_dir, tmp_path):
    """reports/published.toml loads; MedMNIST v2's ResNet-18 (28) PneumoniaMNIST AUC (0.944,
    recipes.md) appears in the report's pneumoniamnist section with its source."""
    references = load_references()
    pneumonia = {ref.label: ref for ref in references if ref.dataset == "pneumoniamnist"}
    assert pneumonia["MedMNIST v2 ResNet-18 (28)"].auc == 0.944 and pneumonia["MedMNIST v2 ResNet-18 (28)"].match
    assert {ref.dataset for ref in references if ref.scored == "critical class"} == {
        "pneumoniamnist", "breastmnist", "nodulemnist3d", "adrenalmnist3d", "vesselmnist3d", "synapsemnist3d"}
    assert {ref.dataset for ref in references if ref.all_classes} == {  # MedMNIST v2's K-way models
        "pathmnist", "chestmnist", "dermamnist", "octmnist", "retinamnist", "bloodmnist", "tissuemnist",
        "organamnist", "organcmnist", "organsmnist", "organmnist3d", "fracturemnist3d"}
    assert {ref.dataset for ref in references if ref.top1} == {"cifar10_lt"}  # Cao et al. 2019's long-tailed rows
    html = build_report(runs_dir, tmp_path / "report.html").read_text()
    section = html.split('<h3>Published results</h3>')[1].split("</table>")[0]
    assert "0.944" in section and "Scientific Data 2023" in section
    rows = [r for r in csv.DictReader((tmp_path / "leaderboard.csv").open()) if r["kind"] == "published"]
    assert {"MedMNIST v2 ResNet-18 (28)", "MedMNIST+ ResNet-18 end-to-end (28)"} <= {r["method"] for r in rows}
    assert "*MedMNIST v2 ResNet-18 (28)* (published) | — | critical class | 0.944 |" in (tmp_path / "leaderboard.md").read_text()


def test_a_matching_row_carries_its_verdict_into_csv_and_markdown(tmp_path, runs_dir):
    real = next(iter(load_runs(runs_dir / "real").runs)).record
    for seed in (0, 1, 2):
        record = fabricate(real, "pneumoniamnist", 28, None, 240, seed, True, "bce", {})
        record["config"].update(epochs=100, patience=0, width=1.0, batch_size=128)  # MedMNIST v2's protocol (published.toml match)
        save_record(record, tmp_path / "runs")
    build_report(tmp_path / "runs", tmp_path / "report.html")
    (line,) = [r for r in csv.DictReader((tmp_path / "leaderboard.csv").open())
               if r["kind"] == "vs_published" and r["published"] == "MedMNIST v2 ResNet-18 (28)"]
    assert line["method"] == "bce" and line["n_seeds"] == "3" and line["verdict"] in ("consistent", "below", "above")
    assert float(line["auc_ci95_low"]) < float(line["auc_mean"]) < float(line["auc_ci95_high"])
    assert f"| {line['verdict']} |" in (tmp_path / "leaderboard.md").read_text()


def test_seeds_holding_out_different_test_images_are_never_pooled(tmp_path):
    """An image folder without test/: each seed holds out its own test images, with the same label
    sequence. The report must see three test sets (no seed ensemble, no pooled logits), also for
    records written before the test split's md5 was recorded (held-out file lists tell them apart)."""
    stand_in = get_dataset_entry("imagefolder").stand_in(tmp_path / "data")
    shutil.rmtree(tmp_path / "data" / "test")
    kwargs = {**stand_in.run_kwargs(), **TINY, "size": 16, "epochs": 1}
    for seed in (0, 1, 2):
        config = resolve_config(RunConfig(dataset="imagefolder", method="bce", seed=seed, **kwargs))
        save_record(run_benchmark(config, progress=False), tmp_path / "runs")
    runs = load_runs(tmp_path / "runs").runs
    assert len({tuple(run.y_true) for run in runs}) == 1  # the same labels: the old fingerprint pooled them
    (summary,) = build_leaderboard(load_runs(tmp_path / "runs")).datasets
    assert len(summary.test_sets) == 3 and not summary.shared_test_set
    assert all(cell.ensemble is None for cell in summary.cells.values())
    for run in runs:  # as a record from before split_md5
        del run.record["dataset"]["split_md5"]
        run.__dict__.pop("test_set", None)
    assert len({run.test_set for run in runs}) == 3


def test_the_paired_test_uses_only_the_seeds_both_rows_have(tmp_path):
    """Real records of results/validation, CIFAR-10 1:100: bce seeds 0 and 2, alm seed 0 only. The
    comparison pairs alm seed 0 with bce seed 0; an ensemble of both bce seeds would win by
    ensembling alone. (A fixed subset: the folder grows as records land.)"""
    validation = Path(__file__).resolve().parents[2] / "results" / "validation"
    for name in ("cifar10-bce-s1570891622-386c94ede4e9.json", "cifar10-bce-s231066585-5c8317db55e7.json",
                 "cifar10-alm-s1570891622-d90c9a3921cd.json"):
        shutil.copy(validation / name, tmp_path / name)
    board = build_leaderboard(load_runs(tmp_path))
    [cifar] = [summary for summary in board.datasets if summary.key.name == "cifar10"]
    cells = {row.label: cell for row, cell in cifar.cells.items()}
    bce = {run.seed: run for run in cells["bce"].runs}
    [alm] = cells["alm"].runs
    assert len(bce) == 2 and alm.seed in bce
    expected = delong_paired_test(alm.y_true, alm.y_score, bce[alm.seed].y_score)
    assert cells["alm"].vs_baseline.diff == pytest.approx(expected.diff, abs=1e-9)
    assert cells["alm"].vs_baseline.p == pytest.approx(expected.p, rel=1e-6)


def test_paired_tables_test_each_shared_seed_and_the_mean_over_seeds(runs_dir, capsys):
    """`reports.paired`: per seed, the AUCs, the paired DeLong difference and p (recomputed here
    with scikit-learn and `delong_paired_test`) and the operating-point differences; then the
    Student-t interval of the mean difference over the seeds."""
    loaded = load_runs(runs_dir)
    runs = {(run.config["dataset"], run.config["imbalance"], run.method, run.seed): run for run in loaded.runs
            if run.config["params"].get("delta") in (None, 0.25)}
    assert paired_main(["--runs", str(runs_dir), "--method", "alm(delta=0.25)"]) == 0
    out = capsys.readouterr().out
    block = out.split("### cifar10")[1]
    diffs = []
    for seed in (0, 1):
        alm, bce = runs["cifar10", 100.0, "alm", seed], runs["cifar10", 100.0, "bce", seed]
        test = delong_paired_test(alm.y_true, alm.y_score, bce.y_score)
        assert test.diff == pytest.approx(roc_auc_score(alm.y_true, alm.y_score) - roc_auc_score(bce.y_true, bce.y_score))
        tpr = alm.record["test"]["tpr_at_fpr"]["0.1"] - bce.record["test"]["tpr_at_fpr"]["0.1"]
        line = next(line for line in block.splitlines() if line.startswith(f"| {seed} |"))
        assert line.startswith(f"| {seed} | {bce.record['test']['auc']:.3f} | {alm.record['test']['auc']:.3f} | "
                               f"{test.diff:+.3f} [{test.diff - 1.96 * test.se:+.3f}, {test.diff + 1.96 * test.se:+.3f}]")
        assert f"| {tpr:+.3f} |" in line
        diffs.append(test.diff)
    half = student_t.ppf(0.975, 1) * np.std(diffs, ddof=1) / np.sqrt(2)
    assert f"| mean over 2 seeds [95% t] | | | {np.mean(diffs):+.3f} [{np.mean(diffs) - half:+.3f}, {np.mean(diffs) + half:+.3f}] |" in block
    assert "### pneumoniamnist" in out and "### synthetic2d" in out  # every column holding both rows


@pytest.mark.parametrize("args, message", [
    (["--method", "alm"], "--method 'alm' is no row of these records; rows: alm(delta=0.25), alm(delta=0.5), aucm, bce "),
    (["--method", "bce"], "--method and --baseline are both 'bce'; compare two different rows"),
    (["--method", "alm(delta=0.5)", "--baseline", "aucm"], "alm(delta=0.5) and aucm share no seed scored on one test set"),
])
def test_paired_tables_refuse_rows_that_cannot_be_paired(runs_dir, tmp_path, capsys, args, message):
    """Without PneumoniaMNIST's aucm runs, aucm (CIFAR-10 1:200) and alm(delta=0.5) (PneumoniaMNIST) share no column."""
    only_pneumonia_alm = tmp_path / "runs"
    shutil.copytree(runs_dir, only_pneumonia_alm)
    for path in only_pneumonia_alm.rglob("pneumoniamnist-aucm-*.json"):
        path.unlink()
    assert paired_main(["--runs", str(only_pneumonia_alm), *args]) == 2
    assert message in capsys.readouterr().err


def test_the_report_shows_each_row_against_bce_seed_by_seed(report, runs_dir):
    """Each dataset section folds a seed-by-seed table: one line per training seed with the paired
    DeLong difference (recomputed here) and p, and the mean over seeds with its t interval."""
    html = report.read_text()
    (summary,) = [d for d in build_leaderboard(load_runs(runs_dir)).datasets if d.key.label.startswith("cifar10 · 1:100")]
    section = html[html.index(f'id="{summary.key.anchor}"'):]
    table = section[section.index('<details class="seed-pairs">'):section.index("</details>")]
    runs = {(run.method, run.seed): run for run in summary.runs}
    for seed in (0, 1):
        test = delong_paired_test(runs["alm", seed].y_true, runs["alm", seed].y_score, runs["bce", seed].y_score)
        assert f"<td>{test.diff:+.3f} [{test.diff - 1.96 * test.se:+.3f}, {test.diff + 1.96 * test.se:+.3f}]</td>" in table
    assert table.count("<tr") == 1 + 3  # header, two seeds, the mean
    assert "mean over 2<br><small>95% t</small>" in table
