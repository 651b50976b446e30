"""The HTML, Markdown and CSV leaderboards come from one table object (reports/leaderboard_table.py):
built from synthetic records, the three files show the same rows in the same order, the same values
and the same bold marks."""
from __future__ import annotations

import csv
import re
from html.parser import HTMLParser

import numpy as np
import pytest

from benchmarks.core.metrics import METRICS, binary_metrics, operating_points
from benchmarks.core.storage import save_record
from reports.deployed import LEADERBOARD_POINT, RATES
from reports.report import build_report
from tests.reports.record_fixture import current_record, edited

QUALITY = {"bce": 1.0, "aucm": 1.4, "alm": 1.8}  # separation of the fabricated scores
# (dataset, size, imbalance): pneumoniamnist 28px brings published rows (reports/published.toml)
DATASETS = {("pneumoniamnist", 28, None): {"bce": [{}], "alm": [{"delta": 0.25}, {"delta": 0.5}]},
            ("synthetic2d", 8, 50.0): {"bce": [{}], "aucm": [{}]}}
KINDS = {"seeds": "seeds", "ensemble": "seed_ensemble", "published": "published"}
TAGS = {"ensemble": " (seed ensemble)", "published": " (published)"}


def synthetic_record(dataset: tuple, method: str, params: dict, seed: int) -> dict:
    """tests/reports' fixture record, as `method` with `params` and `seed` on `dataset`, with fabricated
    test and validation scores (one test set per dataset, shared by the seeds) and operating points."""
    name, size, imbalance = dataset
    record = edited(current_record(f"{name}-{method}-s{seed}-{abs(hash((imbalance, str(params)))) % 10**12:012d}"),
                    "config.params", {**current_record()["config"]["params"], **params})
    record["config"].update(dataset=name, size=size, imbalance=imbalance, method=method, seed=seed)
    y = np.array(record["test_scores"]["y_true"])
    rng = np.random.default_rng([seed, len(method), int(10 * params.get("delta", 0)), int(imbalance or 0)])
    test, val = (QUALITY[method] + params.get("delta", 0)) * y + rng.normal(0, 1, (2, len(y)))
    record.update(test=binary_metrics(y, test), val=binary_metrics(y, val),
                  test_scores={"y_true": y.tolist(), "y_score": test.tolist()},
                  operating_points=operating_points(y, val, y, test))
    return record


class Leaderboard(HTMLParser):
    """The leaderboard table's body rows: [label, tag, selected, cells], each cell (text, classes,
    small text); the text leaves out what a cell shows beneath its value (run links, variant, CI)."""

    def __init__(self):
        super().__init__()
        self.rows: list[list] = []
        self.inside = False
        self.open: list[str] = []  # the elements open inside the current cell
        self.cell: dict | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        classes = (attrs.get("class") or "").split()
        self.inside = self.inside or (tag == "table" and "leaderboard" in classes)
        if not self.inside:
            return
        if tag == "tr":
            self.rows.append(["", "", False, []])
        elif tag == "td" or (tag == "th" and attrs.get("scope") == "row"):
            self.cell = {"tag": tag, "classes": set(classes), "text": "", "small": ""}
            self.open = []
        elif self.cell is not None:
            self.open.append("tag" if "tag" in classes else tag)
            self.rows[-1][2] |= {"variant", "selected"} <= set(classes)

    def handle_endtag(self, tag):
        self.inside = self.inside and tag != "table"
        if self.cell is None:
            return
        if tag == self.cell["tag"]:
            row = self.rows[-1]
            if tag == "th":
                row[0] = self.cell["text"].strip()
            else:
                row[3].append((self.cell["text"].strip(), self.cell["classes"], self.cell["small"].strip()))
            self.cell = None
        elif self.open:
            self.open.pop()

    def handle_data(self, data):
        if self.cell is None:
            return
        if "tag" in self.open:
            self.rows[-1][1] = data
        elif "small" in self.open:
            self.cell["small"] += data
        elif "div" not in self.open:
            self.cell["text"] += data


def html_rows(html: str) -> list[tuple[str, str, bool, list]]:
    """(label, kind, selected on validation, cells) of every row: method, published or seed ensemble."""
    parser = Leaderboard()
    parser.feed(html)
    return [(label, tag or "seeds", selected, cells) for label, tag, selected, cells in parser.rows if label]


def markdown_tables(markdown: str) -> dict[str, list[list[str]]]:
    """Section title -> the rows of its table, each as its cells' text."""
    tables = {}
    for section in markdown.split("\n## ")[1:]:
        title, *lines = section.splitlines()
        tables[title] = [[c.strip() for c in line.strip("|").split("|")] for line in lines if line.startswith("| ")][1:]
    return tables


def same_number(raw: str, shown: str, decimals: int = 3) -> bool:
    """Whether a CSV value (6 significant digits) is the number a table shows ("—": none)."""
    mean = shown.split(" ± ")[0]
    return raw == "" if mean == "—" else abs(float(raw) - float(mean)) <= 0.5 * 10 ** -decimals + 1e-6


def unbold(text: str) -> tuple[str, bool]:
    return (text[2:-2], True) if text.startswith("**") else (text, False)


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("table")
    for dataset, methods in DATASETS.items():
        for method, variants in methods.items():
            for params in variants:
                for seed in (0, 1, 2) if method == "bce" else (0, 1):
                    save_record(synthetic_record(dataset, method, params, seed), root / "runs")
    html = build_report(root / "runs", root / "report.html").read_text()
    return (html_rows(html), markdown_tables((root / "leaderboard.md").read_text()),
            list(csv.DictReader((root / "leaderboard.csv").open())))


def markdown_label(label: str, kind: str) -> str:
    return (f"*{label}*" if kind == "published" else label) + TAGS.get(kind, "")


def test_html_markdown_and_csv_show_the_same_rows_values_and_bold_marks(outputs):
    rows, tables, lines = outputs
    kinds = [kind for _, kind, _, _ in rows]
    assert kinds.count("seeds") == 4 and kinds.count("ensemble") == 4 and kinds.count("published") >= 1
    assert kinds == sorted(kinds, key=["seeds", "published", "ensemble"].index)
    datasets = list(dict.fromkeys(line["dataset"] for line in lines if line["kind"] == "seeds"))
    selected = {label for label, _, chosen, _ in rows if chosen}
    assert selected == {"alm(delta=0.5)"}  # the alm variant with the higher validation AUC
    span = len(METRICS) + len(RATES)
    bold = 0
    for index, metric in enumerate(METRICS):
        shown = [(label, kind, cells) for label, kind, _, cells in rows
                 if any(cells[d * span + index][0] != "—" for d in range(len(datasets)))]
        table = tables[metric.label]
        assert [row[0] for row in table] == [markdown_label(label + (" ✓" if label in selected else ""), kind)
                                            for label, kind, _ in shown]
        for (label, kind, cells), markdown in zip(shown, table):
            for d, dataset in enumerate(datasets):
                text, classes, _ = cells[d * span + index]
                assert unbold(markdown[1 + d]) == (text, "best" in classes)
                bold += "best" in classes
                found = [line for line in lines if line["dataset"] == dataset and line["method"] == label
                         and line["kind"] == KINDS[kind]]
                if text == "—":
                    assert not found or kind == "ensemble" and not found[0][f"{metric.key}_mean"]
                    continue
                (line,) = found
                assert same_number(line[f"{metric.key}_mean"], text)
                assert (line[f"{metric.key}_best"] == "True") == ("best" in classes)
            if index == 0:
                (rank, classes, coverage), (seeds, _, _) = cells[-2:]
                assert markdown[-2:] == [" ".join(filter(None, (f"**{rank}**" if "best" in classes else rank, coverage))),
                                         seeds]
                for line in lines:
                    if line["method"] == label and line["kind"] == KINDS[kind] != "published":
                        assert same_number(line["mean_rank"], rank, decimals=2)
                        assert line["mean_rank_best"] == str("best" in classes)
    assert bold >= 2 * len(METRICS) * len(datasets)  # a best value in every column of both blocks


def test_the_deployed_columns_agree(outputs):
    rows, tables, lines = outputs
    point = "_".join(LEADERBOARD_POINT)
    datasets = list(dict.fromkeys(line["dataset"] for line in lines if line["kind"] == "seeds"))
    span = len(METRICS) + len(RATES)
    seeds = [(label, cells) for label, kind, _, cells in rows if kind == "seeds"]
    for index, rate in enumerate(RATES):
        table = tables[f"Test {rate.upper()} at the validation TPR ≥ {LEADERBOARD_POINT[1]} threshold"]
        assert [row[0].removesuffix(" ✓") for row in table] == [label for label, _ in seeds]
        for (label, cells), markdown in zip(seeds, table):
            for d, dataset in enumerate(datasets):
                text = cells[d * span + len(METRICS) + index][0]
                assert re.sub(r" \[.*\]$", "", markdown[1 + d]) == text
                if text != "—":
                    (line,) = [line for line in lines if line["dataset"] == dataset and line["method"] == label
                               and line["kind"] == "seeds"]
                    assert same_number(line[f"test_{rate}_at_val_{point}_mean"], text)


def test_the_csv_lists_the_rows_in_the_tables_order(outputs):
    rows, _, lines = outputs
    order = {(label, kind): position for position, (label, kind, _, _) in enumerate(rows)}
    for dataset in dict.fromkeys(line["dataset"] for line in lines):
        mine = [(line["method"], line["kind"]) for line in lines if line["dataset"] == dataset]
        for kind, csv_kind in KINDS.items():
            positions = [order[label, kind] for label, found in mine if found == csv_kind]
            assert positions == sorted(positions)
