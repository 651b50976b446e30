"""Binary CIFAR after the ALM paper's protocol: per-run training counts, and the cache of decoded
images (stand-in image folders)."""
import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from benchmarks.core.errors import CritBenchError
from benchmarks.run import main as run_main
from datasets import cifar, create_dataset, dataset_fingerprint, get_dataset_entry
from tests.bad_input.conftest import assert_refused, invoke, out, snapshot, trained  # noqa: F401 (fixtures)


def test_cifar100_trains_on_the_references_90_percent_of_each_negative_class(tmp_path):
    """alm-dnn `utils/CIFAR100_dataset.py`: `img_max = int(((len(self.data) / original_num_classes) -
    val_samples_per_cls) * perc_per_run)` with `perc_per_run=0.9` (main.py), so each negative class
    keeps int(0.9 x its non-validation images) per seed (405 of 450 on the real data), and the
    positives follow from the imbalance: `img_min = int(img_max * 5 * imb_factor)` = floor(negatives / R)."""
    kwargs = get_dataset_entry("cifar100").stand_in(tmp_path).load_kwargs()  # 30 train images per class
    kwargs["params"]["val_per_class"] = 6  # 24 left per class
    dataset = create_dataset("cifar100", **{**kwargs, "imbalance": 20})
    negatives = len(dataset.train) - dataset.train.positives
    assert negatives == 5 * int(24 * 0.9) and dataset.train.positives == negatives // 20
    assert dataset.notes["train_fraction"] == 0.9
    other_seed = create_dataset("cifar100", **{**kwargs, "imbalance": 20, "seed": 1})
    assert not (other_seed.train.x.shape == dataset.train.x.shape and (other_seed.train.x == dataset.train.x).all())


def test_cifar10_keeps_every_remaining_image_unless_told(tmp_path):
    """The released alm-dnn has no CIFAR-10 loader (main.py warns "Dataset is not listed"), so CIFAR-10
    keeps every non-validation image; `train_fraction` sets the share for either dataset."""
    kwargs = get_dataset_entry("cifar10").stand_in(tmp_path).load_kwargs()
    full = create_dataset("cifar10", **{**kwargs, "imbalance": 4})
    assert len(full.train) - full.train.positives == 30 - 6
    half = create_dataset("cifar10", **{**kwargs, "imbalance": 4, "params": {**kwargs["params"], "train_fraction": "0.5"}})
    assert len(half.train) - half.train.positives == 12
    with pytest.raises(CritBenchError, match="train_fraction=0 is invalid"):
        create_dataset("cifar10", **{**kwargs, "params": {**kwargs["params"], "train_fraction": "0"}})


def test_decoded_images_are_cached_byte_identical_and_a_damaged_entry_is_rebuilt(tmp_path, capsys):
    kwargs = get_dataset_entry("cifar10").stand_in(tmp_path / "data").load_kwargs()
    cache = Path(kwargs["params"]["cache_dir"])
    cold, warm = (create_dataset("cifar10", **kwargs, imbalance=4) for _ in range(2))
    uncached = create_dataset("cifar10", **{**kwargs, "params": {**kwargs["params"], "cache_dir": "none"}}, imbalance=4)
    assert (cold.notes["cache"], warm.notes["cache"], uncached.notes["cache"]) == ("miss", "hit", "off")
    assert cold.tensor_md5() == warm.tensor_md5() == uncached.tensor_md5()
    assert cold.source_md5 == warm.source_md5 == uncached.source_md5
    (entry,) = cache.glob("*.pt")
    entry.write_bytes(entry.read_bytes()[:100])
    capsys.readouterr()
    rebuilt = create_dataset("cifar10", **kwargs, imbalance=4)
    assert rebuilt.notes["cache"] == "miss" and rebuilt.tensor_md5() == cold.tensor_md5()
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and str(entry) in err[0] and "rebuilding" in err[0]
    assert create_dataset("cifar10", **kwargs, imbalance=4).notes["cache"] == "hit"


def test_the_cache_is_keyed_by_the_images_content(tmp_path):
    kwargs = get_dataset_entry("cifar10").stand_in(tmp_path / "data").load_kwargs()
    first = create_dataset("cifar10", **kwargs, imbalance=4)
    image = tmp_path / "data" / "test" / "truck" / "0000.png"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(image)
    changed = create_dataset("cifar10", **kwargs, imbalance=4)
    assert changed.notes["cache"] == "miss" and changed.source_md5 != first.source_md5
    assert changed.tensor_md5() != first.tensor_md5()
    assert changed.test.x[-4].eq(0).all()  # truck's first test image, after automobile's four


def test_an_entry_that_does_not_fit_the_listed_images_is_rebuilt(tmp_path, capsys):
    kwargs = get_dataset_entry("cifar10").stand_in(tmp_path / "data").load_kwargs()
    first = create_dataset("cifar10", **kwargs, imbalance=4)
    (entry,) = Path(kwargs["params"]["cache_dir"]).glob("*.pt")
    saved = torch.load(entry, weights_only=True)
    torch.save({**saved, "train_c": saved["train_c"].flip(0)}, entry)
    again = create_dataset("cifar10", **kwargs, imbalance=4)
    assert again.notes["cache"] == "miss" and again.tensor_md5() == first.tensor_md5()
    assert "do not fit the listed images" in capsys.readouterr().err


def test_the_cache_folder_defaults_under_xdg_cache_home_and_stays_out_of_the_identity(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    kwargs = get_dataset_entry("cifar10").stand_in(tmp_path / "data").load_kwargs()
    params = {key: value for key, value in kwargs["params"].items() if key != "cache_dir"}
    create_dataset("cifar10", **{**kwargs, "params": params}, imbalance=4)
    assert len(list((tmp_path / "xdg" / "critbench" / "cifar").glob("*.pt"))) == 1
    assert get_dataset_entry("cifar10").machine_params == get_dataset_entry("cifar100").machine_params == {"cache_dir"}


def test_a_cache_dir_that_is_a_file_is_refused_before_training(tmp_path, out, capsys, trained):
    stand_in = get_dataset_entry("cifar10").stand_in(tmp_path / "data")
    (tmp_path / "cache").write_text("x")
    before = snapshot(out)
    outcome = invoke(run_main, ["--dataset", "cifar10", "--method", "bce", "--data-dir", stand_in.data_dir,
                                "--param", f"cache_dir={tmp_path / 'cache'}", "--out", out], capsys)
    assert_refused(outcome, "--param cache_dir")
    assert trained == [] and snapshot(out) == before


def test_a_warm_start_reads_no_image_and_a_changed_file_is_seen(tmp_path, monkeypatch):
    kwargs = get_dataset_entry("cifar10").stand_in(tmp_path / "data").load_kwargs()
    past = time.time_ns() - 60 * 10**9
    images = sorted((tmp_path / "data").glob("*/*/*.png"))
    for image in images:
        os.utime(image, ns=(past, past))
    first = create_dataset("cifar10", **kwargs, imbalance=4)
    monkeypatch.setattr(cifar, "listing_md5", lambda listings: pytest.fail("read the images' bytes on a warm start"))
    warm = create_dataset("cifar10", **kwargs, imbalance=4)
    assert warm.source_md5 == first.source_md5 and warm.notes["cache"] == "hit"
    assert dataset_fingerprint("cifar10", **kwargs) == first.source_md5
    monkeypatch.undo()
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(images[0])
    os.utime(images[0], ns=(past, past))
    changed = create_dataset("cifar10", **kwargs, imbalance=4)
    assert changed.source_md5 != first.source_md5 and changed.notes["cache"] == "miss"
