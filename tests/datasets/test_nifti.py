"""NIfTI adapter and exporter: round trips (real VesselMNIST3D, synthetic volumes), canonical
reorientation, intensity scaling against hand-computed values, 2D slices, channels, the cache,
held-out splits, and a clear error for every bad input."""
import gzip
import os
import time

import nibabel
import numpy as np
import pytest
import torch
from medmnist import INFO

from benchmarks.core.config import RunConfig
from benchmarks.engine.resolve import resolve_config
from benchmarks.core.errors import CritBenchError
from benchmarks.run import listing
from benchmarks.engine.pipeline import run_benchmark
from datasets import cache as dataset_cache
from datasets import create_dataset, dataset_fingerprint, get_dataset_entry
from datasets.base import SPLITS, distinct_holdout, file_md5, seeded_generator, stratified_holdout
from datasets.medmnist_binary import write_npz
from datasets.registry import register_dataset
from datasets.export import main as export_main
from datasets.nifti import canonical_label, export_nifti
from tests.conftest import MEDMNIST_DIR, TINY, needs


def save(folder, name, array, affine=None):
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    nibabel.save(nibabel.Nifti1Image(np.asarray(array), np.eye(4) if affine is None else affine), path)
    return name


def write_csv(folder, rows, header="path,label,split", name="labels.csv"):
    text = "\n".join([header] + [",".join(map(str, row)) for row in rows]) + "\n" if header is not None else ""
    (folder / name).write_text(text)


def load(folder, cache, size=8, **params):
    return create_dataset("nifti", size=size, data_dir=folder, params={"cache_dir": str(cache), **params})


def volume_folder(folder, n_neg=20, n_pos=10, shape=(8, 8, 8), split=None, seed=0):
    """uint8 volumes with labels; a split column when `split` (a function of the index) is given."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_neg + n_pos):
        name = save(folder, f"v{i:03d}.nii.gz", rng.integers(0, 256, shape, dtype=np.uint8))
        rows.append((name, int(i >= n_neg)) + ((split(i),) if split else ()))
    write_csv(folder, rows, "path,label,split" if split else "path,label")
    return folder


@needs(MEDMNIST_DIR / "vesselmnist3d.npz")
def test_vesselmnist3d_round_trip_gives_the_npz_tensors_and_the_cache_is_used(tmp_path, capsys):
    out = tmp_path / "vessel"
    assert export_main(["--dataset", "vesselmnist3d", "--split", "all", "--to", str(out),
                        "--data-dir", str(MEDMNIST_DIR)]) == 0
    assert "label 1 = aneurysm" in capsys.readouterr().err
    npz = create_dataset("vesselmnist3d", data_dir=MEDMNIST_DIR)
    first = load(out, tmp_path / "cache", size=28)
    second = load(out, tmp_path / "cache", size=28)
    assert first.tensor_md5() == second.tensor_md5() == npz.tensor_md5()
    assert (first.mean, first.std) == (npz.mean, npz.std) == ((0.0,), (1.0,))
    assert first.record()["splits"] == npz.record()["splits"]
    assert (first.notes["cache_hits"], second.notes["cache_hits"]) == (0, 1908)
    assert first.dims == 3 and first.notes["split_source"] == {s: "csv" for s in SPLITS}


@pytest.mark.parametrize("dims", [2, 3])
def test_synthetic_round_trip_is_exact_with_normalize_none(tmp_path, dims):
    source = create_dataset(f"synthetic{dims}d", size=8, params={"n_train": 44})
    export_nifti(source, SPLITS, tmp_path / "export")
    loaded = load(tmp_path / "export", tmp_path / "cache", normalize="none")
    assert loaded.dims == dims and loaded.train.x.shape[1:] == (1,) + (8,) * dims
    assert loaded.tensor_md5() == source.tensor_md5()


def test_export_refuses_to_overwrite_labels_csv(tmp_path, capsys):
    args = ["--dataset", "synthetic3d", "--size", "8", "--split", "test", "--to", str(tmp_path)]
    assert export_main(args) == 0
    assert export_main(args) == 2
    assert "exists" in capsys.readouterr().err
    assert export_main(args + ["--overwrite"]) == 0


def random_affine(rng):
    """An oblique (< 20 degrees) scaled, shifted affine: its closest axes are still x, y, z."""
    angles = rng.uniform(-0.35, 0.35, 3)
    cx, cy, cz = np.cos(angles)
    sx, sy, sz = np.sin(angles)
    rotation = (np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]]) @ np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
                @ np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]]))
    affine = np.eye(4)
    affine[:3, :3] = rotation @ np.diag(rng.uniform(0.5, 2.0, 3))
    affine[:3, 3] = rng.uniform(-100, 100, 3)
    return affine


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_any_orientation_of_a_volume_loads_as_the_same_canonical_array(tmp_path, seed):
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, (8, 8, 8), dtype=np.uint8)
    reference = nibabel.Nifti1Image(data, random_affine(rng))
    permutation = rng.permutation(3)
    flips = rng.choice([-1, 1], 3)
    flips[0] = -1  # at least one flip, so the stored array always differs from the reference
    reoriented = reference.as_reoriented(np.column_stack([permutation, flips]))
    assert not np.array_equal(np.asarray(reoriented.dataobj), data)
    nibabel.save(reference, tmp_path / "a.nii.gz")
    nibabel.save(reoriented, tmp_path / "b.nii.gz")
    nibabel.save(nibabel.Nifti1Image(data[::-1].copy(), np.diag([-1.0, 1, 1, 1])), tmp_path / "c.nii.gz")
    from datasets.nifti import Preprocessor

    preprocess = Preprocessor(8, "none", None, None)
    a, b, c = (preprocess.compute(tmp_path / f"{n}.nii.gz") for n in "abc")
    assert np.array_equal(a, b) and np.array_equal(a, c)
    canonical = np.asarray(nibabel.as_closest_canonical(reference).dataobj)
    assert np.array_equal(a[0], canonical)


def test_a_2d_slice_stored_with_its_flat_axis_first_is_2d(tmp_path):
    from datasets.nifti import Preprocessor

    data = np.arange(64, dtype=np.uint8).reshape(1, 8, 8)  # a sagittal slice: x has length 1
    save(tmp_path, "s.nii.gz", data)
    assert Preprocessor(8, "none", None, None).compute(tmp_path / "s.nii.gz").shape == (1, 8, 8)


def test_intensity_scaling_matches_hand_computed_values(tmp_path):
    from datasets.nifti import Preprocessor

    values = np.zeros((8, 8, 8), np.float32)
    values[4:] = 10.0  # half 0, half 10: mean 5, SD 5, z = -1 / +1
    save(tmp_path, "z.nii.gz", values)
    ct = np.full((8, 8, 8), -300.0, np.float32)
    ct[0], ct[1] = -2000.0, 3000.0  # outside the window: clipped to -1000 and 400
    save(tmp_path, "ct.nii.gz", ct)
    run = lambda name, normalize, clip=None: Preprocessor(8, normalize, clip, None).compute(tmp_path / name)[0]  # noqa: E731
    z = run("z.nii.gz", "zscore")
    assert set(np.unique(z[:4])) == {85} and set(np.unique(z[4:])) == {170}  # (z + 3) / 6 * 255
    m = run("z.nii.gz", "minmax")
    assert set(np.unique(m[:4])) == {0} and set(np.unique(m[4:])) == {255}
    w = run("ct.nii.gz", "minmax", (-1000.0, 400.0))
    assert (w[0] == 0).all() and (w[1] == 255).all() and (w[2:] == 128).all()  # 700 / 1400 * 255 = 127.5 -> 128
    with pytest.raises(CritBenchError, match=r"ct.nii.gz.*outside 0..255.*normalize=minmax"):
        run("ct.nii.gz", "none")


def test_volumes_are_resized_to_the_cube(tmp_path):
    volume_folder(tmp_path, shape=(10, 12, 14))
    assert load(tmp_path, tmp_path / "cache", size=16).train.x.shape[1:] == (1, 16, 16, 16)


@pytest.mark.parametrize("shape, channels", [((8, 8, 8, 2), 2), ((8, 8, 8, 1, 3), 3)])
def test_multichannel_volumes_give_channels(tmp_path, shape, channels):
    volume_folder(tmp_path, shape=shape)
    dataset = load(tmp_path, tmp_path / "cache")
    assert dataset.in_channels == channels and dataset.mean == (0.0,) * channels and dataset.std == (1.0,) * channels


@pytest.mark.parametrize("flag", ["pneumoniamnist", "vesselmnist3d"])
def test_a_medmnist_export_reaches_the_network_as_the_npz(tmp_path, monkeypatch, flag):
    """3D volumes in [0, 1] (mean 0, std 1), 2D slices in [-1, 1] (mean, std 0.5), as MedMNIST's."""
    monkeypatch.setitem(INFO[flag], "MD5", file_md5(write_npz(flag, tmp_path / "npz", n=8)))
    npz = create_dataset(flag, data_dir=tmp_path / "npz")
    export_nifti(npz, SPLITS, tmp_path / "export")
    loaded = load(tmp_path / "export", tmp_path / "cache", size=28, normalize="none")
    mean, std = (0.0, 1.0) if flag.endswith("3d") else (0.5, 0.5)
    assert loaded.tensor_md5() == npz.tensor_md5() and loaded.dims == npz.dims
    assert (loaded.mean, loaded.std) == (npz.mean, npz.std) == ((mean,), (std,))
    assert loaded.record()["preprocessing"]["network_input"] == ("[0, 1] (uint8 / 255)" if flag.endswith("3d") else
                                                                 "[-1, 1] ((uint8 / 255 - 0.5) / 0.5)")


def test_held_out_split_is_stratified_seeded_and_recorded(tmp_path):
    volume_folder(tmp_path, n_neg=40, n_pos=10)
    a = load(tmp_path, tmp_path / "cache")
    b = load(tmp_path, tmp_path / "cache")
    c = create_dataset("nifti", size=8, data_dir=tmp_path, seed=1, params={"cache_dir": str(tmp_path / "cache")})
    assert {s: (len(a.splits[s]), a.splits[s].positives) for s in SPLITS} == \
        {"train": (35, 7), "val": (5, 1), "test": (10, 2)}  # round(40 * 0.1) + round(10 * 0.1), ...
    held = a.notes["held_out_files"]
    assert len(held["val"]) == 5 and len(held["test"]) == 10 and not set(held["val"]) & set(held["test"])
    assert held == b.notes["held_out_files"] != c.notes["held_out_files"]
    assert a.notes["split_source"]["train"] == "csv" and a.notes["split_source"]["val"].startswith("held out")
    record = a.record()
    assert record["held_out_files"] == held and record["labels"] == {"0": 40, "1": 10}


def test_a_split_column_without_val_rows_holds_val_out_of_train(tmp_path):
    volume_folder(tmp_path, n_neg=30, n_pos=10, split=lambda i: "test" if i % 5 == 0 else "train")
    dataset = load(tmp_path, tmp_path / "cache", val_fraction="0.25")
    assert (len(dataset.test), dataset.test.positives) == (8, 2)
    assert (len(dataset.val), dataset.val.positives) == (8, 2)  # round(24 * 0.25), round(8 * 0.25)
    assert dataset.notes["split_source"] == {"train": "csv", "val": "held out from train (seed 0)", "test": "csv"}


def test_text_labels_need_positive_and_numbers_compare_by_value(tmp_path):
    rng = np.random.default_rng(0)
    rows = [(save(tmp_path, f"{i}.nii", rng.integers(0, 256, (8, 8, 8), dtype=np.uint8)), "malignant" if i % 4 == 0 else "benign")
            for i in range(24)]
    write_csv(tmp_path, rows, "path,label")
    with pytest.raises(CritBenchError, match=r"labels.csv: labels are not numeric \(benign, malignant\).*--param positive="):
        load(tmp_path, tmp_path / "cache")
    dataset = load(tmp_path, tmp_path / "cache", positive="malignant")
    assert dataset.critical_class == "malignant" and dataset.negative_class == "benign"
    assert sum(s.positives for s in dataset.splits.values()) == 6
    write_csv(tmp_path, [(name, ["0", "1.0", "01", "2"][i % 4]) for i, (name, _) in enumerate(rows)], "path,label")
    dataset = load(tmp_path, tmp_path / "cache", negative="0")  # label 2 dropped; 1.0 and 01 are label 1
    assert sum(len(s) for s in dataset.splits.values()) == 18
    assert sum(s.positives for s in dataset.splits.values()) == 12


def test_numeric_labels_that_differ_past_six_digits_stay_apart(tmp_path):
    assert canonical_label("1234567") != canonical_label("1234568")
    assert canonical_label("0.1234567") != canonical_label("0.1234568")
    assert canonical_label(str(2**53 + 1)) == str(2**53 + 1) != canonical_label(str(2**53))  # past float precision
    assert canonical_label("1") == canonical_label("1.0") == canonical_label("01") == canonical_label("1e0") == "1"
    assert canonical_label("0.5") == canonical_label(".50") == "0.5" and canonical_label("benign") == "benign"
    volume_folder(tmp_path, n_neg=20, n_pos=10)
    write_csv(tmp_path, [(f"v{i:03d}.nii.gz", 1234568 if i >= 20 else 1234567) for i in range(30)], "path,label")
    dataset = load(tmp_path, tmp_path / "cache", positive="1234568")
    assert sum(s.positives for s in dataset.splits.values()) == 10
    assert dataset.record()["labels"] == {"1234567": 20, "1234568": 10}


def test_cache_is_keyed_by_content_and_settings(tmp_path):
    volume_folder(tmp_path, n_neg=8, n_pos=4, split=lambda i: SPLITS[i % 3])
    cache = tmp_path / "cache"
    first = load(tmp_path, cache)
    assert load(tmp_path, cache).notes["cache_hits"] == 12
    assert load(tmp_path, cache, normalize="zscore").notes["cache_hits"] == 0
    assert load(tmp_path, cache, size=10).notes["cache_hits"] == 0
    save(tmp_path, "v000.nii.gz", np.zeros((8, 8, 8), np.uint8))
    changed = load(tmp_path, cache)
    assert changed.notes["cache_hits"] == 11 and changed.tensor_md5() != first.tensor_md5()
    next(iter(sorted(cache.glob("*.npy")))).write_bytes(b"damaged")
    assert load(tmp_path, cache).tensor_md5() == changed.tensor_md5()  # a damaged entry is recomputed
    assert load(tmp_path, cache, cache_dir="none").tensor_md5() == changed.tensor_md5()


def age(paths, seconds=60):
    """Date the files back by `seconds`, out of the md5 index's racy window."""
    past = time.time_ns() - int(seconds * 1e9)
    for path in paths:
        os.utime(path, ns=(past, past))


def test_a_second_start_hashes_no_unchanged_file_and_a_touched_one_is_rehashed(tmp_path, monkeypatch):
    data, cache = volume_folder(tmp_path / "data", n_neg=8, n_pos=4, split=lambda i: SPLITS[i % 3]), tmp_path / "cache"
    age(data.glob("*.nii.gz"))
    hashed, md5 = [], dataset_cache.file_md5
    monkeypatch.setattr(dataset_cache, "file_md5", lambda path: hashed.append(path.name) or md5(path))

    def start(**params):
        hashed.clear()
        return load(data, cache, **params)

    cold = start()
    assert len(hashed) == 12
    warm = start()
    assert hashed == [] and warm.notes["cache_hits"] == 12
    assert (warm.source_md5, warm.tensor_md5()) == (cold.source_md5, cold.tensor_md5())
    hashed.clear()
    assert dataset_fingerprint("nifti", size=8, data_dir=data, params={"cache_dir": str(cache)}) == cold.source_md5
    assert hashed == []
    os.utime(data / "v003.nii.gz")  # a new mtime, same bytes: re-hashed, same checksum
    assert start().source_md5 == cold.source_md5 and hashed == ["v003.nii.gz"]
    assert start().source_md5 == cold.source_md5 and hashed == ["v003.nii.gz"]  # too recent to be indexed yet
    save(data, "v000.nii.gz", np.zeros((8, 8, 8), np.uint8))
    age([data / "v000.nii.gz", data / "v003.nii.gz"], seconds=30)
    changed = start()
    assert sorted(hashed) == ["v000.nii.gz", "v003.nii.gz"] and changed.source_md5 != cold.source_md5
    assert start().source_md5 == changed.source_md5 and hashed == []
    assert load(data, cache, cache_dir="none").source_md5 == changed.source_md5


def test_params_are_listed_and_routed_to_the_dataset():
    assert "--param normalize" in listing() and "--param clip" in listing()
    config = resolve_config(RunConfig(dataset="nifti", method="bce", params={"normalize": "zscore", "clip": "0,1"}))
    assert config.dataset_params == {"normalize": "zscore", "clip": "0,1"}
    assert "normalize" not in config.params


def test_training_on_a_nifti_folder_records_the_split(tmp_path):
    volume_folder(tmp_path / "data", n_neg=30, n_pos=10)
    config = RunConfig(dataset="nifti", method="bce", data_dir=str(tmp_path / "data"), batch_size=16,
                       params={"cache_dir": str(tmp_path / "cache")}, **TINY)
    record = run_benchmark(resolve_config(config), progress=False)
    assert record["dataset"]["name"] == "nifti" and record["dataset"]["shape"] == [1, 8, 8, 8]
    assert len(record["dataset"]["held_out_files"]["test"]) == len(record["test_scores"]["y_true"]) == 8


# --- every bad input gets a CritBenchError naming the file and the problem ---------------------------

def corrupt_gzip(folder):
    name = save(folder, "bad.nii.gz", np.zeros((8, 8, 8), np.uint8))
    data = (folder / name).read_bytes()
    (folder / name).write_bytes(data[: len(data) // 2])  # truncated download


def not_nifti(folder):
    (folder / "bad.nii.gz").write_bytes(gzip.compress(b"this is not a NIfTI header" * 20))


def nan_volume(folder):
    volume = np.zeros((8, 8, 8), np.float32)
    volume[1, 2, 3] = np.nan
    save(folder, "bad.nii.gz", volume)


def time_series(folder):
    save(folder, "bad.nii.gz", np.zeros((8, 8, 8, 6), np.uint8))


@pytest.mark.parametrize("damage, message", [
    (corrupt_gzip, r"cannot read NIfTI volume .*bad.nii.gz \(.*\); check that the file is complete"),
    (not_nifti, r"cannot read NIfTI volume .*bad.nii.gz"),
    (nan_volume, r"bad.nii.gz: contains NaN"),
    (time_series, r"bad.nii.gz: shape \(8, 8, 8, 6\) has 6 volumes on its 4th axis"),
])
def test_broken_volumes_are_named(tmp_path, damage, message):
    volume_folder(tmp_path, n_neg=8, n_pos=4)
    damage(tmp_path)
    with open(tmp_path / "labels.csv", "a") as handle:
        handle.write("bad.nii.gz,0\n")
    with pytest.raises(CritBenchError, match=message):
        load(tmp_path, tmp_path / "cache")


def test_mixed_2d_and_3d_files_are_refused(tmp_path):
    volume_folder(tmp_path, n_neg=8, n_pos=4)
    save(tmp_path, "flat.nii.gz", np.zeros((8, 8), np.uint8))
    with open(tmp_path / "labels.csv", "a") as handle:
        handle.write("flat.nii.gz,0\n")
    with pytest.raises(CritBenchError, match=r"flat.nii.gz preprocesses to .* \(1, 8, 8\) but v000.nii.gz to \(1, 8, 8, 8\)"):
        load(tmp_path, tmp_path / "cache")


@pytest.mark.parametrize("rows, header, message", [
    ([("missing.nii.gz", 1)], "path,label", r"labels.csv line 2: volume missing.nii.gz not found"),
    ([("v000.nii.gz", 1)] * 2, "path,label", r"labels.csv line 3: duplicate path v000.nii.gz \(also on line 2\)"),
    ([("v000.nii.gz", 1), ("v001.nii.gz", 1)], "path,label", r"labels.csv .*every sample has label '1'"),
    ([], None, r"labels.csv is empty"),
    ([], "path,label", r"labels.csv has a header but no rows"),
    ([("v000.nii.gz", 1)], "file,class", r"labels.csv has columns file, class; it needs path and label"),
    ([("v000.png", 1)], "path,label", r"labels.csv line 2: v000.png is not a .nii or .nii.gz file"),
    ([("v000.nii.gz", 1, "training")], "path,label,split", r"labels.csv line 2: split 'training' is not one of"),
    ([("v000.nii.gz", "")], "path,label", r"labels.csv line 2: empty label"),
])
def test_bad_csvs_are_named(tmp_path, rows, header, message):
    volume_folder(tmp_path, n_neg=2, n_pos=2)
    write_csv(tmp_path, rows, header)
    with pytest.raises(CritBenchError, match=message):
        load(tmp_path, tmp_path / "cache")


def test_a_split_with_no_positives_is_named(tmp_path):
    volume_folder(tmp_path, n_neg=8, n_pos=4, split=lambda i: "val" if i in (0, 1) else ("test" if i in (2, 8) else "train"))
    with pytest.raises(CritBenchError, match=r"labels.csv: the val split has no positives \(label 1\) among its 2 files"):
        load(tmp_path, tmp_path / "cache")


def test_a_positive_label_that_does_not_exist_is_named(tmp_path):
    volume_folder(tmp_path, n_neg=4, n_pos=4)
    with pytest.raises(CritBenchError, match=r"critical class 'yes' .* not among the labels found \(0, 1\)"):
        load(tmp_path, tmp_path / "cache", positive="yes")


@pytest.mark.parametrize("params, message", [
    ({"normalize": "robust"}, r"normalize=robust is invalid; valid: minmax, zscore, none"),
    ({"clip": "400,-1000"}, r"clip=400,-1000 is invalid"),
    ({"val_fraction": "0.6", "test_fraction": "0.5"}, r"together below 1"),
])
def test_bad_params_are_refused(tmp_path, params, message):
    volume_folder(tmp_path, n_neg=4, n_pos=4)
    with pytest.raises(CritBenchError, match=message):
        load(tmp_path, tmp_path / "cache", **params)


def test_no_folder_no_csv_and_bad_size_are_refused(tmp_path):
    with pytest.raises(CritBenchError, match=r"needs --data-dir DIR holding labels.csv"):
        create_dataset("nifti")
    with pytest.raises(CritBenchError, match=r"labels CSV not found: .*labels.csv"):
        create_dataset("nifti", data_dir=tmp_path)
    with pytest.raises(CritBenchError, match=r"--size 300 .* valid: 28, 64 or any side from 8 to 128"):
        create_dataset("nifti", size=300, data_dir=tmp_path)


def test_csv_param_resolves_paths_relative_to_the_csv(tmp_path):
    volume_folder(tmp_path / "volumes", n_neg=8, n_pos=4, split=lambda i: SPLITS[i % 3])
    (tmp_path / "volumes" / "labels.csv").rename(tmp_path / "volumes" / "mine.csv")
    dataset = create_dataset("nifti", size=8, params={"csv": str(tmp_path / "volumes" / "mine.csv"),
                                                       "cache_dir": str(tmp_path / "cache")})
    assert sum(len(s) for s in dataset.splits.values()) == 12 and isinstance(dataset.train.x, torch.Tensor)


def test_exact_copies_are_held_out_together_and_counted(tmp_path):
    volume_folder(tmp_path, n_neg=16, n_pos=8)
    with open(tmp_path / "labels.csv", "a") as handle:
        for name, source in (("copy_a.nii.gz", "v000.nii.gz"), ("copy_b.nii.gz", "v000.nii.gz"), ("copy_c.nii.gz", "v020.nii.gz")):
            (tmp_path / name).write_bytes((tmp_path / source).read_bytes())
            handle.write(f"{name},{int(source == 'v020.nii.gz')}\n")
    for seed in range(4):
        dataset = create_dataset("nifti", size=8, data_dir=tmp_path, seed=seed, params={"cache_dir": str(tmp_path / "cache")})
        split_of = {name: part for part, names in dataset.notes["held_out_files"].items() for name in names}
        part = [split_of.get(name, "train") for name in ("v000.nii.gz", "copy_a.nii.gz", "copy_b.nii.gz", "v020.nii.gz",
                                                          "copy_c.nii.gz")]
        assert part[0] == part[1] == part[2] and part[3] == part[4]
        duplicates = dataset.record()["duplicates_within_split"]
        assert sum(duplicates.values()) == 3 and duplicates[part[0]] >= 2


def test_without_copies_the_held_out_split_is_unchanged(tmp_path):
    """Holding copies together changes nothing for data without copies (the records' splits stay)."""
    strata = torch.tensor([0] * 20 + [1] * 10)
    fractions = {"val": 0.1, "test": 0.2}
    grouped = stratified_holdout(strata, list(range(30)), fractions, seeded_generator(3), ["a", "b"], "x")
    plain = distinct_holdout(strata, fractions, seeded_generator(3), ["a", "b"], "x")
    assert {k: v.tolist() for k, v in grouped.items()} == {k: v.tolist() for k, v in plain.items()}


def test_machine_paths_are_declared_and_only_content_makes_the_fingerprint(tmp_path):
    assert get_dataset_entry("nifti").machine_params == {"cache_dir", "csv"}
    assert get_dataset_entry("imagefolder").machine_params == frozenset()
    with pytest.raises(ValueError, match=r"machine_params \['cache'\] are not among its params"):
        register_dataset("bad", dims=2, sizes=(8,), description="", params={"x": ""}, machine_params=("cache",))
    volume_folder(tmp_path / "a", n_neg=4, n_pos=4)
    (tmp_path / "b").mkdir()
    for path in (tmp_path / "a").iterdir():
        (tmp_path / "b" / path.name).write_bytes(path.read_bytes())
    (tmp_path / "b" / "labels.csv").rename(tmp_path / "b" / "mine.csv")
    same = [dataset_fingerprint("nifti", size=8, data_dir=tmp_path / "a", params={"cache_dir": str(tmp_path / "c1")}),
            dataset_fingerprint("nifti", size=8, params={"csv": str(tmp_path / "b" / "mine.csv"), "cache_dir": "none"})]
    volume_folder(tmp_path / "other", n_neg=4, n_pos=4, seed=1)
    assert same[0] == same[1] != dataset_fingerprint("nifti", size=8, data_dir=tmp_path / "other")
