"""Binary CIFAR after the ALM paper's protocol: per-run training counts (stand-in image folders)."""
import pytest

from benchmarks.core.errors import CritBenchError
from datasets import create_dataset, get_dataset_entry


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
