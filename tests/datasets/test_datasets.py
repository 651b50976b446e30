"""Dataset adapters: MedMNIST files (fake and real), CIFAR image folders, synthetic data."""
import numpy as np
import pytest
import torch
from medmnist import INFO

from benchmarks.core.config import MACHINE_PARAMS, RunConfig
from benchmarks.core.errors import CritBenchError, DataUnavailableError
from datasets import create_dataset, dataset_fingerprint, get_dataset_entry, list_datasets
from datasets.base import Split, copies_across_splits, file_md5
from datasets.imagefolder import write_image_folder
from datasets.medmnist_binary import stand_in_medmnist, write_npz
from datasets.subsample import class_stratified_index, stratified_index
from tests.conftest import CIFAR10_DIR, MEDMNIST_DIR, needs


def test_registry_lists_every_required_dataset():
    required = {"pneumoniamnist", "breastmnist", "nodulemnist3d", "adrenalmnist3d", "vesselmnist3d",
                "synapsemnist3d", "cifar10", "cifar100", "synthetic2d", "synthetic3d"}
    assert required <= set(list_datasets())


@pytest.mark.parametrize("dims", [2, 3])
def test_synthetic_is_seeded_uint8_and_imbalanced(dims):
    a = create_dataset(f"synthetic{dims}d", size=8, seed=1)
    b = create_dataset(f"synthetic{dims}d", size=8, seed=1)
    c = create_dataset(f"synthetic{dims}d", size=8, seed=2)
    assert a.tensor_md5() == b.tensor_md5() != c.tensor_md5()
    assert a.train.x.dtype == torch.uint8 and a.train.x.shape[1:] == (1,) + (8,) * dims
    assert a.train.positives / len(a.train) < 0.15


def test_breastmnist_critical_class_is_malignant_label_0(tmp_path, monkeypatch):
    for mapping, key, value in stand_in_medmnist("breastmnist", tmp_path).patches:
        monkeypatch.setitem(mapping, key, value)
    dataset = create_dataset("breastmnist", data_dir=tmp_path)
    raw = np.load(tmp_path / "breastmnist.npz")["test_labels"].ravel()
    assert dataset.critical_class == "malignant"
    assert dataset.test.y.tolist() == (raw == 0).astype(int).tolist()


def test_synapse_critical_class_is_the_train_minority(tmp_path, monkeypatch):
    path = write_npz("synapsemnist3d", tmp_path, n=24)
    with np.load(path) as npz:
        arrays = dict(npz)
    arrays["train_labels"][:18] = 1  # label 1 is now the majority in train
    np.savez(path, **arrays)
    monkeypatch.setitem(INFO["synapsemnist3d"], "MD5", file_md5(path))
    dataset = create_dataset("synapsemnist3d", data_dir=tmp_path)
    assert dataset.critical_class == INFO["synapsemnist3d"]["label"]["0"]
    assert dataset.train.positives == 3  # label 0 remains only at indices 18, 20, 22


def test_md5_mismatch_is_refused_with_advice_also_by_the_fingerprint(tmp_path):
    write_npz("pneumoniamnist", tmp_path)  # INFO's md5 is the real file's: mismatch
    for check in (create_dataset, dataset_fingerprint):
        with pytest.raises(CritBenchError, match=r"md5 .* expects 28209eda62fecd6e6a2d98b1501bb15f.*download it again"):
            check("pneumoniamnist", data_dir=tmp_path)


def test_missing_file_names_file_url_md5_and_folder(tmp_path, monkeypatch):
    def no_network(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr("torchvision.datasets.utils.download_url", no_network)
    for check in (create_dataset, dataset_fingerprint):
        with pytest.raises(DataUnavailableError) as error:
            check("vesselmnist3d", size=64, data_dir=tmp_path)
        message = str(error.value)
        assert "vesselmnist3d_64.npz" in message and INFO["vesselmnist3d"]["MD5_64"] in message
        assert INFO["vesselmnist3d"]["url_64"] in message and str(tmp_path) in message


def test_size_is_validated(tmp_path):
    with pytest.raises(CritBenchError, match="--size 32 is not available for vesselmnist3d; valid: 28, 64"):
        create_dataset("vesselmnist3d", size=32, data_dir=tmp_path)


def test_stratified_subset_keeps_the_class_ratio_and_is_seeded():
    y = torch.tensor([1] * 20 + [0] * 180, dtype=torch.uint8)
    index = stratified_index(y, 50, torch.Generator().manual_seed(0))
    assert len(index) == 50 and int(y[index].sum()) == 5
    assert torch.equal(index, stratified_index(y, 50, torch.Generator().manual_seed(0)))
    assert not torch.equal(index, stratified_index(y, 50, torch.Generator().manual_seed(1)))


def test_a_multiclass_subset_keeps_every_class_in_proportion():
    """synthetic2d_mc trains noise 96, low 48, middle 48, high 16: binary stratification of 4 samples
    (2 positives, 2 negatives) always lost a negative class."""
    smallest = create_dataset("synthetic2d_mc", size=8, max_train_samples=4, task="multiclass")
    assert smallest.train.class_counts() == [1, 1, 1, 1]
    subset = create_dataset("synthetic2d_mc", size=8, max_train_samples=40, task="multiclass")
    assert subset.train.class_counts() == [18, 9, 9, 4]  # 1 each, then 36 of the other 204 by largest remainder
    assert subset.train.positives == 4 and subset.val.class_counts() == [32, 16, 16, 12]
    binary = create_dataset("synthetic2d_mc", size=8, max_train_samples=40)  # the binary task: as before
    assert binary.train.summary() == {"n": 40, "positives": 3}


def test_multiclass_imbalance_keeps_every_critical_class():
    """With three critical classes (1, 2, 3: 48, 48, 16 training images) and 96 negatives, --imbalance
    32 keeps 3 positives: uniformly drawn, a critical class could drop out of train."""
    for seed in range(8):
        dataset = create_dataset("synthetic2d_mc", size=8, seed=seed, imbalance=32, task="multiclass",
                                 params={"critical": "1+2+3"})
        assert dataset.train.class_counts() == [96, 1, 1, 1] and dataset.notes["imbalance_positives"]["kept"] == 3
    binary = create_dataset("synthetic2d_mc", size=8, imbalance=32, params={"critical": "1+2+3"})
    assert binary.train.summary() == {"n": 99, "positives": 3}  # the binary task draws from the pooled positives
    with pytest.raises(CritBenchError, match=r"--imbalance 48 keeps 2 training positives, fewer than the 3 critical "
                                             r"classes.*at most 32"):
        create_dataset("synthetic2d_mc", size=8, imbalance=48, task="multiclass", params={"critical": "1+2+3"})


def test_a_multiclass_subset_is_seeded_and_needs_a_sample_per_class():
    classes = torch.tensor([0] * 500 + [1] * 100 + [2] * 20 + [3] * 5 + [4] * 1, dtype=torch.uint8)
    index = class_stratified_index(classes, 20, torch.Generator().manual_seed(0))
    assert torch.bincount(classes[index].long()).tolist() == [13, 3, 2, 1, 1] and len(index.unique()) == 20
    assert torch.equal(index, class_stratified_index(classes, 20, torch.Generator().manual_seed(0)))
    assert not torch.equal(index, class_stratified_index(classes, 20, torch.Generator().manual_seed(1)))
    assert torch.equal(class_stratified_index(classes, 626, torch.Generator()), torch.arange(626))
    with pytest.raises(CritBenchError, match=r"--max-train-samples 4 is fewer than the 5 classes of train.*"
                                             r"give at least 5"):
        class_stratified_index(classes, 4, torch.Generator())


def test_cifar_protocol_on_a_synthetic_image_folder(tmp_path):
    write_image_folder(tmp_path, ("automobile", "truck"), {"train": 60, "test": 5})
    dataset = create_dataset("cifar10", data_dir=tmp_path, imbalance=10, params={"val_per_class": 10})
    assert dataset.val.summary() == {"n": 20, "positives": 10}
    assert dataset.train.summary() == {"n": 50 + 5, "positives": 5}  # 50 negatives, 1 per 10
    assert dataset.test.summary() == {"n": 10, "positives": 5}
    assert dataset.train.x.shape[1:] == (3, 32, 32) and dataset.critical_class == "truck"
    rows = lambda split: {bytes(image.numpy()) for image in split.x}
    assert not rows(dataset.train) & rows(dataset.val), "validation must be disjoint from train"
    other = create_dataset("cifar10", data_dir=tmp_path, imbalance=10, seed=1, params={"val_per_class": 10})
    assert other.tensor_md5() != dataset.tensor_md5(), "the subsample follows the seed"
    assert create_dataset("cifar10", data_dir=tmp_path, imbalance=10, params={"val_per_class": 10}).tensor_md5() == dataset.tensor_md5()


@needs(MEDMNIST_DIR / "pneumoniamnist.npz")
def test_real_pneumoniamnist_counts_and_checksum():
    dataset = create_dataset("pneumoniamnist", data_dir=MEDMNIST_DIR.parent)
    record = dataset.record()
    assert record["source_md5"] == "28209eda62fecd6e6a2d98b1501bb15f"
    assert record["splits"] == {"train": {"n": 4708, "positives": 3494}, "val": {"n": 524, "positives": 389},
                                "test": {"n": 624, "positives": 390}}
    assert record["critical_class"] == "pneumonia"
    # the official split leaks: 8 val images are exact copies of train images (counted with hashlib by hand)
    assert record["copies_across_splits"] == {"train/val": 8, "train/test": 0, "val/test": 0}


def test_copies_across_splits_count_the_second_splits_samples():
    x = torch.arange(6, dtype=torch.uint8).view(6, 1, 1, 1).expand(6, 1, 2, 2).contiguous()
    y = torch.zeros(6, dtype=torch.uint8)
    splits = {"train": Split(x[:3], y[:3]), "val": Split(x[[0, 0, 4]], y[:3]), "test": Split(x[[4, 5]], y[:2])}
    assert copies_across_splits(splits) == {"train/val": 2, "train/test": 0, "val/test": 1}


@needs(MEDMNIST_DIR / "vesselmnist3d.npz")
def test_real_vesselmnist3d_counts():
    dataset = create_dataset("vesselmnist3d", data_dir=MEDMNIST_DIR)
    assert dataset.train.x.shape == (1335, 1, 28, 28, 28)
    assert [dataset.splits[s].positives for s in ("train", "val", "test")] == [150, 22, 43]
    assert dataset.critical_class == "aneurysm"


@needs(CIFAR10_DIR)
def test_real_cifar10_copy_follows_the_protocol():
    dataset = create_dataset("cifar10", data_dir=CIFAR10_DIR.parent, imbalance=200)
    assert dataset.val.summary() == {"n": 1000, "positives": 500}
    assert dataset.train.summary() == {"n": 4500 + 22, "positives": 22}
    assert dataset.test.summary() == {"n": 2000, "positives": 1000}


def test_machine_path_params_of_every_dataset_stay_out_of_the_run_identity():
    """Where files are (cache_dir, csv) is not what they hold: the identity drops every adapter's machine params."""
    machine = set().union(*(get_dataset_entry(name).machine_params for name in list_datasets()))
    assert machine and machine <= set(MACHINE_PARAMS)
    config = RunConfig(dataset="nifti", method="bce", dataset_params={"cache_dir": "/a", "csv": "/b/l.csv", "clip": "0,1"})
    assert config.identity()["dataset_params"] == {"clip": "0,1"}
