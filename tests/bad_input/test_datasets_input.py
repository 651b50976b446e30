"""Bad user data through `benchmarks.run` (issue 13, items 4 and 8): image folders and NIfTI folders
that cannot be read, leak between splits, or point the cache at a file. Each is refused with exit
code 2 and one line naming the file or parameter, before anything trains, and the finished record
already in `--out` is untouched."""
from __future__ import annotations

import gzip
import json
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmarks.run import main as run_main
from tests.bad_input.conftest import assert_refused, invoke, snapshot
from tests.datasets.test_imagefolder import folder_of, write_images
from tests.datasets.test_nifti import save, volume_folder, write_csv

READ_ONLY = Path("/sys/critbench-bad-input")  # sysfs: creating anything here fails, even for root
RUN = ["--method", "bce", "--epochs", "1", "--width", "0.125", "--size", "8", "--device", "cpu", "--quiet"]
MEDMNIST_RUN = [item for item in RUN if item not in ("--size", "8")]


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(path: Path) -> None:
    """A PNG whose header claims 20000 x 20000 pixels (a decompression bomb)."""
    header = struct.pack(">IIBBBBB", 20000, 20000, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b""))


def loop(path: Path) -> None:
    os.symlink(path.name, path)  # points at itself


@pytest.fixture
def out(tmp_path) -> Path:
    """An out folder holding one finished record, which no refusal may touch."""
    folder = tmp_path / "runs"
    folder.mkdir()
    (folder / "done-bce-s0-0123456789ab.json").write_text(json.dumps({"run_id": "done-bce-s0-0123456789ab",
                                                                       "status": "complete"}))
    return folder


def refused(argv, out, capsys, trained, names, run=RUN):
    before = snapshot(out)
    outcome = invoke(run_main, argv + run + ["--out", out], capsys)
    assert_refused(outcome, names)
    assert trained == []
    assert snapshot(out) == before


# --- image folders --------------------------------------------------------------------------------

def images(root: Path) -> Path:
    """A valid image folder: neg/pos classes in train, val and test."""
    return folder_of(root, {"train": {"neg": 6, "pos": 6}, "val": {"neg": 2, "pos": 2}, "test": {"neg": 2, "pos": 2}},
                     shape=(8, 8))


def copy(root, source, target):
    (root / target).parent.mkdir(parents=True, exist_ok=True)
    (root / target).write_bytes((root / source).read_bytes())


IMAGE_CASES = {
    "a folder named like an image": (lambda r: (r / "train/pos/x.png").mkdir(), {}, "x.png"),
    "an image that is a symlink loop": (lambda r: loop(r / "train/pos/loop.png"), {}, "loop.png"),
    "a dangling symlink": (lambda r: os.symlink(r / "gone.png", r / "train/neg/gone.png"), {}, "gone.png"),
    "a decompression bomb": (lambda r: bomb_png(r / "train/pos/bomb.png"), {}, "bomb.png"),
    "a truncated png": (lambda r: (r / "train/neg/cut.png").write_bytes((r / "train/neg/neg000.png").read_bytes()[:40]),
                        {}, "cut.png"),
    "an empty png": (lambda r: (r / "val/pos/empty.png").write_bytes(b""), {}, "empty.png"),
    "text named .jpg": (lambda r: (r / "test/neg/note.jpg").write_text("not an image"), {}, "note.jpg"),
    "text named .tif": (lambda r: (r / "train/pos/scan.tif").write_text("II*\x00 broken"), {}, "scan.tif"),
    "a png with a bad checksum": (lambda r: (r / "train/pos/crc.png").write_bytes(
        (r / "train/pos/pos000.png").read_bytes()[:33] + b"\x00" * 8), {}, "crc.png"),
    "a train image copied into test": (lambda r: copy(r, "train/pos/pos001.png", "test/pos/leak.png"), {}, "leak.png"),
    "a train image copied into val under another class": (
        lambda r: copy(r, "train/neg/neg002.png", "val/pos/other.png"), {}, "train/neg/neg002.png"),
    "a val image copied into test": (lambda r: copy(r, "val/neg/neg000.png", "test/neg/again.png"), {}, "again.png"),
    "a class folder of DICOM files": (lambda r: ((r / "train/dcm").mkdir(), (r / "train/dcm/a.dcm").write_bytes(b"DICM")),
                                      {"negative": "dcm"}, "train/dcm holds no images"),
    "a critical class that is not a folder": (lambda r: None, {"positive": "tumor"}, "--param positive"),
    "a negative class that is not a folder": (lambda r: None, {"negative": "healthy"}, "--param negative"),
    "channels=2": (lambda r: None, {"channels": "2"}, "--param channels=2"),
    "a NaN float TIFF": (lambda r: Image.fromarray(np.full((8, 8), np.nan, np.float32)).save(r / "train/pos/nan.tif"),
                         {}, "nan.tif has NaN or infinite pixels"),
    "an infinite float TIFF": (lambda r: Image.fromarray(np.full((8, 8), np.inf, np.float32)).save(r / "val/neg/inf.tif"),
                               {}, "inf.tif has NaN or infinite pixels"),
    "a val class that train lacks": (lambda r: write_images(r, "val", "cyst", 2, shape=(8, 8)), {},
                                     "class folders that"),
    "val with none of the classes": (
        lambda r: [p.rename(r / "val" / f"other{p.name}") for p in sorted((r / "val").iterdir())], {},
        "train lacks (otherneg, otherpos)"),
    "an empty val folder": (lambda r: [[f.unlink() for f in p.iterdir()] + [p.rmdir()] for p in (r / "val").iterdir()],
                            {}, "has none of the class folders"),
}


@pytest.mark.parametrize("damage, params, names", IMAGE_CASES.values(), ids=IMAGE_CASES.keys())
def test_a_bad_image_folder_is_refused_naming_the_file(tmp_path, out, capsys, trained, damage, params, names):
    root = images(tmp_path / "data")
    damage(root)
    param = [item for key, value in {"positive": "pos", **params}.items() for item in ("--param", f"{key}={value}")]
    refused(["--dataset", "imagefolder", "--data-dir", root] + param, out, capsys, trained, names)


def test_file_and_class_names_that_are_not_utf8_train(tmp_path, out, capsys):
    """A class folder and a file named in latin-1 bytes: listed, checksummed and recorded (issue 27.5)."""
    root = images(tmp_path / "data")
    for split in ("train", "val", "test"):
        os.rename(root / split / "neg", os.fsencode(root / split) + b"/n\xe9g")
    os.rename(root / "train" / "pos" / "pos000.png", os.fsencode(root / "train" / "pos") + b"/\xe9t\xe9.png")
    outcome = invoke(run_main, ["--dataset", "imagefolder", "--data-dir", root, "--param", "positive=pos"] + RUN
                     + ["--out", out], capsys)
    assert outcome.code == 0, outcome.err
    record = json.loads(Path(outcome.out.splitlines()[-1]).read_text())
    assert record["status"] == "complete" and record["dataset"]["negative_class"] == os.fsdecode(b"n\xe9g")


DATA_DIR_CASES = {
    "--data-dir is a file": (lambda d: (d.write_text("x"), ["--data-dir", d])[1], "is a file, not a folder"),
    "--data-dir is a symlink loop": (lambda d: (loop(d), ["--data-dir", d])[1], "broken or looping symbolic link"),
    "a folder named like the npz": (lambda d: ((d / "pneumoniamnist.npz").mkdir(parents=True), ["--data-dir", d])[1],
                                    "pneumoniamnist.npz is there but is not a readable file"),
}


@pytest.mark.parametrize("make, names", DATA_DIR_CASES.values(), ids=DATA_DIR_CASES.keys())
def test_a_data_folder_that_is_not_one_says_what_is_there(tmp_path, out, capsys, trained, make, names):
    argv = make(tmp_path / "data")
    refused(["--dataset", "pneumoniamnist"] + argv, out, capsys, trained, names, run=MEDMNIST_RUN)


def test_critbench_data_naming_a_file_says_so(tmp_path, out, capsys, trained, monkeypatch):
    (tmp_path / "file").write_text("x")
    monkeypatch.setenv("CRITBENCH_DATA", str(tmp_path / "file"))
    refused(["--dataset", "pneumoniamnist"], out, capsys, trained, "CRITBENCH_DATA", run=MEDMNIST_RUN)


HOLDOUT_CASES = {
    "no train folder": (lambda r: r.mkdir(), {}, "train is missing"),
    "a data dir that is a file": (lambda r: r.write_text("not a folder"), {}, "--data-dir"),
    "a single class": (lambda r: write_images(r, "train", "pos", 12, shape=(8, 8)), {}, "every sample has label 'pos'"),
    "too few to hold out": (lambda r: folder_of(r, {"train": {"neg": 6, "pos": 2}}, shape=(8, 8)), {},
                            "class 'pos' has only 2 samples"),
    "copies that are too few to hold out": (
        lambda r: (folder_of(r, {"train": {"neg": 6, "pos": 1}}, shape=(8, 8)),
                   [copy(r, "train/pos/pos000.png", f"train/pos/copy{i}.png") for i in range(3)]), {},
        "class 'pos' has only 1 samples"),
    "val_fraction=0.95": (lambda r: folder_of(r, {"train": {"neg": 6, "pos": 6}}, shape=(8, 8)),
                          {"val_fraction": "0.95"}, "val_fraction=0.95"),
}


@pytest.mark.parametrize("make, params, names", HOLDOUT_CASES.values(), ids=HOLDOUT_CASES.keys())
def test_a_folder_that_cannot_be_split_is_refused(tmp_path, out, capsys, trained, make, params, names):
    root = tmp_path / "data"
    make(root)
    param = [item for key, value in {"positive": "pos", **params}.items() for item in ("--param", f"{key}={value}")]
    refused(["--dataset", "imagefolder", "--data-dir", root] + param, out, capsys, trained, names)


def test_a_duplicate_within_one_split_trains_and_is_recorded(tmp_path, out, capsys):
    root = images(tmp_path / "data")
    copy(root, "train/pos/pos000.png", "train/pos/twin.png")
    outcome = invoke(run_main, ["--dataset", "imagefolder", "--data-dir", root, "--param", "positive=pos"] + RUN
                     + ["--out", out], capsys)
    assert outcome.code == 0, outcome.err
    record = json.loads(Path(outcome.out.splitlines()[-1]).read_text())
    assert record["status"] == "complete"
    assert record["dataset"]["duplicates_within_split"] == {"train": 1, "val": 0, "test": 0}


# --- NIfTI folders --------------------------------------------------------------------------------

def volumes(root: Path) -> Path:
    """A valid NIfTI folder with a split column (both labels in every split)."""
    return volume_folder(root, n_neg=6, n_pos=6, split=lambda i: ("train", "train", "val", "test")[i % 4])


def append(root: Path, line: str) -> None:
    with open(root / "labels.csv", "a") as handle:
        handle.write(line + "\n")


def copy_volume(root, source, name, split):
    (root / name).write_bytes((root / source).read_bytes())
    append(root, f"{name},1,{split}")


def rewrite_csv(root: Path, encoding: str) -> None:
    text = (root / "labels.csv").read_text().replace("v000.nii.gz", "vé000.nii.gz")
    (root / "v000.nii.gz").rename(root / "vé000.nii.gz")
    (root / "labels.csv").write_bytes(text.encode(encoding))


def broken(root: Path, name: str, data: bytes) -> None:
    (root / name).write_bytes(data)
    append(root, f"{name},0,train")


NIFTI_CASES = {
    "a latin-1 labels.csv": (lambda r: rewrite_csv(r, "latin-1"), {}, "labels.csv"),
    "a UTF-16 labels.csv": (lambda r: rewrite_csv(r, "utf-16"), {}, "labels.csv"),
    "labels.csv is a folder": (lambda r: ((r / "labels.csv").unlink(), (r / "labels.csv").mkdir()), {}, "labels.csv"),
    "a volume that is a symlink loop": (lambda r: (loop(r / "loop.nii.gz"), append(r, "loop.nii.gz,0,train")), {},
                                        "loop.nii.gz"),
    "a volume that is a folder": (lambda r: ((r / "dir.nii.gz").mkdir(), append(r, "dir.nii.gz,0,train")), {},
                                  "dir.nii.gz"),
    "a dangling symlink": (lambda r: (os.symlink(r / "gone.nii.gz", r / "link.nii.gz"), append(r, "link.nii.gz,0,train")),
                           {}, "link.nii.gz"),
    "an empty volume": (lambda r: broken(r, "empty.nii.gz", b""), {}, "empty.nii.gz"),
    "a truncated volume": (lambda r: broken(r, "cut.nii.gz", (r / "v001.nii.gz").read_bytes()[:100]), {}, "cut.nii.gz"),
    "not a NIfTI inside the gzip": (lambda r: broken(r, "text.nii.gz", gzip.compress(b"no header" * 50)), {},
                                    "text.nii.gz"),
    "a raw .nii of random bytes": (lambda r: broken(r, "noise.nii", bytes(range(256)) * 2), {}, "noise.nii"),
    "a NaN volume": (lambda r: (save(r, "nan.nii.gz", np.full((8, 8, 8), np.nan, np.float32)),
                                append(r, "nan.nii.gz,0,train")), {}, "nan.nii.gz"),
    "a time series": (lambda r: (save(r, "time.nii.gz", np.zeros((8, 8, 8, 6), np.uint8)),
                                 append(r, "time.nii.gz,0,train")), {}, "time.nii.gz"),
    "a 2D slice among volumes": (lambda r: (save(r, "flat.nii.gz", np.zeros((8, 8), np.uint8)),
                                            append(r, "flat.nii.gz,0,train")), {}, "flat.nii.gz"),
    "a missing volume": (lambda r: append(r, "missing.nii.gz,0,train"), {}, "missing.nii.gz"),
    "a path listed twice": (lambda r: append(r, "./v001.nii.gz,1,train"), {}, "duplicate path ./v001.nii.gz"),
    "a png in the csv": (lambda r: append(r, "photo.png,0,train"), {}, "photo.png"),
    "an unknown split": (lambda r: append(r, "v099.nii.gz,1,training"), {}, "split 'training'"),
    "an empty label": (lambda r: append(r, "v099.nii.gz,,train"), {}, "empty label"),
    "a train volume copied into test": (lambda r: copy_volume(r, "v000.nii.gz", "leak.nii.gz", "test"), {}, "leak.nii.gz"),
    "a test volume copied into train": (lambda r: copy_volume(r, "v003.nii.gz", "back.nii.gz", "train"), {},
                                        "v003.nii.gz"),
    "a train volume copied into val": (lambda r: copy_volume(r, "v001.nii.gz", "peek.nii.gz", "val"), {}, "peek.nii.gz"),
    "cache_dir is a file": (lambda r: (r / "cache.npy").write_text("x"), {"cache_dir": "{root}/cache.npy"}, "cache_dir"),
    "cache_dir under a file": (lambda r: (r / "cache.npy").write_text("x"), {"cache_dir": "{root}/cache.npy/sub"},
                               "cache_dir"),
    "a read-only cache_dir": (lambda r: None, {"cache_dir": str(READ_ONLY)}, "cache_dir"),
    "csv names a missing file": (lambda r: None, {"csv": "other.csv"}, "other.csv"),
    "a critical label that is absent": (lambda r: None, {"positive": "7"}, "--param positive"),
    "normalize=robust": (lambda r: None, {"normalize": "robust"}, "--param normalize=robust"),
    "clip=400,-1000": (lambda r: None, {"clip": "400,-1000"}, "--param clip=400,-1000"),
    "normalize=none on CT values": (lambda r: (save(r, "ct.nii.gz", np.full((8, 8, 8), -1000, np.int16)),
                                               append(r, "ct.nii.gz,0,train")), {"normalize": "none"}, "ct.nii.gz"),
}


@pytest.mark.parametrize("damage, params, names", NIFTI_CASES.values(), ids=NIFTI_CASES.keys())
def test_a_bad_nifti_folder_is_refused_naming_the_file(tmp_path, out, capsys, trained, damage, params, names):
    if str(READ_ONLY) in params.values() and not READ_ONLY.parent.is_dir():
        pytest.skip("no sysfs to stand for a read-only folder")
    root = volumes(tmp_path / "data")
    damage(root)
    params = {"cache_dir": str(tmp_path / "cache"), **params}
    param = [item for key, value in params.items() for item in ("--param", f"{key}={value.format(root=root)}")]
    refused(["--dataset", "nifti", "--data-dir", root] + param, out, capsys, trained, names)


CSV_CASES = {
    "an empty csv": (None, [], "labels.csv is empty"),
    "a header without rows": ("path,label", [], "labels.csv has a header but no rows"),
    "no label column": ("file,class", [("v000.nii.gz", 1)], "labels.csv has columns file, class"),
    "text labels without positive": ("path,label", [("v000.nii.gz", "yes"), ("v001.nii.gz", "no")],
                                     "--param positive=<label>"),
    "no train rows": ("path,label,split", [("v000.nii.gz", 0, "val"), ("v001.nii.gz", 1, "test")], "no train rows"),
    "a split without positives": ("path,label,split", [("v000.nii.gz", 0, "train"), ("v001.nii.gz", 1, "train"),
                                                       ("v002.nii.gz", 0, "val"), ("v003.nii.gz", 1, "test"),
                                                       ("v004.nii.gz", 0, "test")], "the val split has no positives"),
}


@pytest.mark.parametrize("header, rows, names", CSV_CASES.values(), ids=CSV_CASES.keys())
def test_a_bad_labels_csv_is_refused_naming_it(tmp_path, out, capsys, trained, header, rows, names):
    root = volumes(tmp_path / "data")
    write_csv(root, rows, header)
    refused(["--dataset", "nifti", "--data-dir", root, "--param", f"cache_dir={tmp_path / 'cache'}"], out, capsys,
            trained, names)
