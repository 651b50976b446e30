"""Bad input and faults for `python -m datasets.export` (issue 13, items 1, 8 and 9): an output that
cannot be written is refused before any image is decoded; unreadable or leaking data is named;
Ctrl-C and a full disk end with one line and leave no `labels.csv`, so nothing blocks the rerun,
and a finished export elsewhere (or in `--to` itself) is never changed."""
from __future__ import annotations

import errno
import os
from pathlib import Path

import nibabel
import pytest

import datasets.imagefolder
from datasets.export import main as export_main
from tests.bad_input.conftest import assert_refused, invoke, snapshot
from tests.bad_input.test_datasets_input import READ_ONLY, bomb_png, copy, images, loop, rewrite_csv, volumes


@pytest.fixture
def exports(tmp_path) -> Path:
    """A folder of exports holding a finished one, `done/`."""
    folder = tmp_path / "exports"
    assert export_main(["--dataset", "synthetic3d", "--size", "8", "--split", "test", "--to", str(folder / "done")]) == 0
    return folder


@pytest.fixture
def decoded(monkeypatch) -> list:
    """The images the export decoded (a refusal of the output leaves this empty)."""
    calls = []
    original = datasets.imagefolder.read_image

    def spy(path, *args, **kwargs):
        calls.append(path)
        return original(path, *args, **kwargs)

    monkeypatch.setattr(datasets.imagefolder, "read_image", spy)
    return calls


def export_images(root: Path, target, *extra) -> list:
    return ["--dataset", "imagefolder", "--data-dir", root, "--param", "positive=pos", "--size", "8", "--to", target,
            *extra]


def finished(folder: Path) -> bool:
    return (folder / "labels.csv").is_file()


def sysfs(path: Path) -> Path:
    """A folder of sysfs, where nothing can be created, even by root (a read-only target)."""
    if not path.parent.is_dir():
        pytest.skip("no sysfs to stand for a read-only folder")
    return path


def a_file(folder: Path) -> Path:
    (folder / "file.txt").write_text("not a folder")
    return folder / "file.txt"


TARGET_CASES = {
    "--to is a file": (a_file, (), "file.txt is a file"),
    "--to under a file": (lambda e: a_file(e) / "sub", (), "file.txt is a file"),
    "--to a finished export": (lambda e: e / "done", (), "labels.csv exists"),
    "--to whose labels.csv is a folder": (lambda e: ((e / "odd/labels.csv").mkdir(parents=True), e / "odd")[1], (),
                                          "labels.csv is a folder"),
    "--to whose train is a file": (lambda e: ((e / "odd").mkdir(), (e / "odd/train").write_text("x"), e / "odd")[2], (),
                                   "train is a file"),
    "--to whose test is a file, one split": (
        lambda e: ((e / "odd").mkdir(), (e / "odd/test").write_text("x"), e / "odd")[2], ("--split", "test"),
        "test is a file"),
    "--to a symlink loop": (lambda e: (loop(e / "loop"), e / "loop")[1], (), "loop"),
    "--to an existing read-only folder": (lambda e: sysfs(Path("/sys/kernel")), (), "/sys/kernel"),
    "--to under a read-only folder": (lambda e: sysfs(READ_ONLY) / "export", (), str(READ_ONLY)),
}


@pytest.mark.parametrize("make, extra, names", TARGET_CASES.values(), ids=TARGET_CASES.keys())
def test_an_output_that_cannot_be_written_is_refused_before_any_image_is_read(tmp_path, exports, capsys, trained,
                                                                               decoded, make, extra, names):
    root = images(tmp_path / "data")
    target = make(exports)
    before = snapshot(exports)
    assert_refused(invoke(export_main, export_images(root, target, *extra), capsys), names)
    assert decoded == [] and trained == []
    assert snapshot(exports) == before


FLAG_CASES = {
    "an unknown --dataset": (["--dataset", "tumors", "--to", "{to}"], "--dataset"),
    "a --size out of range": (["--dataset", "synthetic2d", "--size", "3", "--to", "{to}"], "--size 3"),
    "--size 0": (["--dataset", "synthetic2d", "--size", "0", "--to", "{to}"], "--size 0"),
    "a --size that is not a number": (["--dataset", "synthetic2d", "--size", "big", "--to", "{to}"], "--size"),
    "an unknown --split": (["--dataset", "synthetic2d", "--split", "holdout", "--to", "{to}"], "--split"),
    "a --param without =": (["--dataset", "synthetic2d", "--param", "n_train", "--to", "{to}"], "--param"),
    "a --seed that is not a number": (["--dataset", "synthetic2d", "--seed", "x", "--to", "{to}"], "--seed"),
    "no --to": (["--dataset", "synthetic2d"], "--to"),
    "no --dataset": (["--to", "{to}"], "--dataset"),
}


@pytest.mark.parametrize("argv, names", FLAG_CASES.values(), ids=FLAG_CASES.keys())
def test_a_bad_flag_is_refused(tmp_path, exports, capsys, trained, argv, names):
    before = snapshot(exports)
    outcome = invoke(export_main, [item.format(to=exports / "new") for item in argv], capsys)
    assert_refused(outcome, names)
    assert trained == [] and not finished(exports / "new")
    assert snapshot(exports) == before


DATA_CASES = {
    "a decompression bomb": ("imagefolder", lambda r: bomb_png(r / "train/pos/bomb.png"), "bomb.png"),
    "a folder named like an image": ("imagefolder", lambda r: (r / "val/neg/x.png").mkdir(), "x.png"),
    "an image that is a symlink loop": ("imagefolder", lambda r: loop(r / "test/pos/loop.png"), "loop.png"),
    "a train image copied into test": ("imagefolder", lambda r: copy(r, "train/neg/neg000.png", "test/neg/leak.png"),
                                       "leak.png"),
    "no image folder": ("imagefolder", lambda r: (r / "train").rename(r / "training"), "--data-dir"),
    "a latin-1 labels.csv": ("nifti", lambda r: rewrite_csv(r, "latin-1"), "labels.csv"),
    "a volume that is a symlink loop": ("nifti", lambda r: (r / "v000.nii.gz").unlink() or loop(r / "v000.nii.gz"),
                                        "v000.nii.gz"),
    "a truncated volume": ("nifti", lambda r: (r / "v004.nii.gz").write_bytes((r / "v004.nii.gz").read_bytes()[:60]),
                           "v004.nii.gz"),
    "no labels.csv": ("nifti", lambda r: (r / "labels.csv").unlink(), "labels.csv"),
}


@pytest.mark.parametrize("kind, damage, names", DATA_CASES.values(), ids=DATA_CASES.keys())
def test_bad_data_is_named_and_no_export_is_left(tmp_path, exports, capsys, trained, kind, damage, names):
    root = images(tmp_path / "data") if kind == "imagefolder" else volumes(tmp_path / "data")
    damage(root)
    params = ["--param", "positive=pos"] if kind == "imagefolder" else ["--param", f"cache_dir={tmp_path / 'cache'}"]
    before = snapshot(exports)
    outcome = invoke(export_main, ["--dataset", kind, "--data-dir", root, "--size", "8", "--to", exports / "new"] + params,
                     capsys)
    assert_refused(outcome, names)
    assert trained == [] and not finished(exports / "new")
    assert snapshot(exports) == before


def fail_on_call(monkeypatch, module, name, error, at=3):
    """Make `module.name` raise `error` on its `at`-th call (a Ctrl-C or a full disk mid-export)."""
    original, calls = getattr(module, name), []

    def failing(*args, **kwargs):
        calls.append(args)
        if len(calls) == at:
            raise error
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, failing)


FAULTS = {
    "Ctrl-C while writing volumes": (nibabel, "save", KeyboardInterrupt(), 130, "interrupted"),
    "Ctrl-C while writing labels.csv": (os, "fsync", KeyboardInterrupt(), 130, "interrupted"),
    "Ctrl-C while reading images": (datasets.imagefolder, "read_image", KeyboardInterrupt(), 130, "interrupted"),
    "a full disk while writing volumes": (nibabel, "save", OSError(errno.ENOSPC, "No space left on device"), 2,
                                          ".nii.gz (OSError: No space left on device)"),
    "a full disk while writing labels.csv": (os, "fsync", OSError(errno.ENOSPC, "No space left on device"), 2,
                                             "labels.csv (OSError: No space left on device)"),
}


@pytest.mark.parametrize("overwrite", [False, True], ids=["new folder", "--overwrite"])
@pytest.mark.parametrize("module, name, error, code, names", FAULTS.values(), ids=FAULTS.keys())
def test_an_interrupted_or_failed_export_leaves_nothing_that_blocks_the_rerun(tmp_path, exports, capsys, monkeypatch,
                                                                            module, name, error, code, names, overwrite):
    """A fault before writing starts leaves every finished export as it was; once writing started,
    the target has no labels.csv (an overwrite removes the old one first: never a half-replaced
    export) and no temporary file; the same command then succeeds."""
    root = images(tmp_path / "data")
    target = exports / "done" if overwrite else exports / "new"
    argv = export_images(root, target, *(("--overwrite",) if overwrite else ()))
    finished_before = snapshot(exports / "done")
    with monkeypatch.context() as patch:
        fail_on_call(patch, module, name, error, at=1 if name == "fsync" else 3)
        outcome = invoke(export_main, argv, capsys)
    assert_refused(outcome, names, code=code)
    if name == "read_image" or not overwrite:
        assert snapshot(exports / "done") == finished_before
    if name != "read_image" or not overwrite:
        assert not finished(target)
    assert not [path for path in target.iterdir() if path.name.startswith(".")]
    assert invoke(export_main, argv, capsys).code == 0
    assert finished(target)
