"""Names a user chose (class names, file names) where they surface (issue 27, the half ones):
leaderboard.md shows them as text, not raw HTML or a broken table row; a NIfTI volume listed in
labels.csv under its UTF-8 name but stored under a latin-1 byte name is named as such; a split
without negatives names the negative labels, not the positive one."""
from __future__ import annotations

import os
import re

from benchmarks.core.storage import save_record
from benchmarks.run import main
from datasets import export
from reports.report import build_report
from tests.bad_input.conftest import assert_refused, invoke
from tests.reports.record_fixture import current_record, edited

HOSTILE = "<img src=x onerror=alert(1)>|tumour"


def test_leaderboard_md_escapes_html_and_table_pipes_from_the_records(tmp_path):
    record = edited(current_record("synthetic2d-alm-s0-0123456789ab"), "config.dataset_params", {"critical": HOSTILE})
    save_record(record, tmp_path / "runs")
    build_report(tmp_path / "runs", tmp_path / "report.html")
    markdown = (tmp_path / "leaderboard.md").read_text()
    assert "<img" not in markdown and "|tumour" not in markdown.replace("\\|tumour", "")
    assert "&lt;img src=x onerror=alert(1)&gt;\\|tumour" in markdown
    lines = markdown.splitlines()
    header = next(index for index, line in enumerate(lines) if line.startswith("| method |"))
    cells = re.split(r"(?<!\\)\|", lines[header])  # the pipes that end cells
    assert len(cells) == len(lines[header + 1].split("|"))  # as many cells as the separator row


def export_tiny_nifti(folder, capsys) -> None:
    assert invoke(export.main, ["--dataset", "synthetic3d", "--to", folder], capsys).code == 0


def test_a_latin1_file_name_listed_in_utf8_is_named_as_such(tmp_path, capsys):
    export_tiny_nifti(tmp_path / "data", capsys)
    os.rename(tmp_path / "data" / "train" / "00000.nii.gz", os.fsencode(tmp_path / "data" / "train") + b"/caf\xe9.nii.gz")
    table = tmp_path / "data" / "labels.csv"
    table.write_text(table.read_text().replace("train/00000.nii.gz", "train/café.nii.gz"), encoding="utf-8")
    outcome = invoke(main, ["--dataset", "nifti", "--data-dir", tmp_path / "data", "--method", "bce", "--epochs", "1",
                            "--width", "0.125", "--device", "cpu", "--out", tmp_path / "runs"], capsys)
    assert_refused(outcome, "volume train/café.nii.gz not found at")
    assert "but b'caf\\xe9.nii.gz' is there: its name is latin-1 bytes, not UTF-8; rename it to UTF-8" in outcome.err


def test_a_split_without_negatives_names_the_negative_labels(tmp_path, capsys):
    export_tiny_nifti(tmp_path / "data", capsys)
    table = tmp_path / "data" / "labels.csv"
    lines = table.read_text().splitlines()
    table.write_text("\n".join(lines[:1] + [line for line in lines[1:] if not (",test" in line and ",0," in line)]))
    outcome = invoke(main, ["--dataset", "nifti", "--data-dir", tmp_path / "data", "--method", "bce", "--epochs", "1",
                            "--width", "0.125", "--device", "cpu", "--out", tmp_path / "runs"], capsys)
    assert_refused(outcome, "the test split has no negatives (labels other than 1) among its")
