"""Long-tailed CIFAR (Cao et al. 2019): the reference's per-class counts and training subset, the
validation split drawn beside it, the critical class, the refusals, and the real copy when present."""
import os
import time

import numpy as np
import pytest
import torch

from benchmarks.core.errors import CritBenchError
from datasets import cifar, create_dataset, dataset_fingerprint, get_dataset_entry
from datasets.cifar_lt import CIFAR10_CLASSES, reference_counts, subset_indices
from tests.conftest import CIFAR10_DIR, needs


def reference_img_num_per_cls(img_max, cls_num, imb_type, imb_factor):
    """kaidic/LDAM-DRW imbalance_cifar.py `get_img_num_per_cls`, line by line:
    `num = img_max * (imb_factor**(cls_idx / (cls_num - 1.0)))`, `img_num_per_cls.append(int(num))` for
    `exp`; for `step` `int(img_max)` for the first `cls_num // 2` classes and `int(img_max * imb_factor)`
    for the next `cls_num // 2`."""
    if imb_type == "exp":
        return [int(img_max * (imb_factor ** (cls_idx / (cls_num - 1.0)))) for cls_idx in range(cls_num)]
    return [int(img_max)] * (cls_num // 2) + [int(img_max * imb_factor)] * (cls_num // 2)


def test_counts_at_rho_100_and_10_are_the_references():
    """The well-known per-class counts of long-tailed CIFAR-10 (12,406 images at rho 100, 20,431 at 10)."""
    assert reference_counts(5000, 10, 100, "exp") == [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]
    assert reference_counts(5000, 10, 10, "exp") == [5000, 3871, 2997, 2320, 1796, 1391, 1077, 834, 645, 500]
    assert sum(reference_counts(5000, 10, 100, "exp")) == 12406 and sum(reference_counts(5000, 10, 10, "exp")) == 20431


@pytest.mark.parametrize("rho", [100, 50, 10, 1])
@pytest.mark.parametrize("profile", ["exp", "step"])
@pytest.mark.parametrize("classes,n_max", [(10, 5000), (100, 500)])
def test_counts_follow_the_reference_formula(rho, profile, classes, n_max):
    assert reference_counts(n_max, classes, rho, profile) == reference_img_num_per_cls(n_max, classes, profile, 1 / rho)


def reference_subset(targets, img_num_per_cls, rand_number=0):
    """kaidic/LDAM-DRW imbalance_cifar.py: `np.random.seed(rand_number)`, then per class `idx =
    np.where(targets_np == the_class)[0]`, `np.random.shuffle(idx)`, `selec_idx = idx[:the_img_num]`."""
    np.random.seed(rand_number)
    chosen = []
    for the_class, the_img_num in zip(np.unique(targets), img_num_per_cls):
        idx = np.where(targets == the_class)[0]
        np.random.shuffle(idx)
        chosen.append(idx[:the_img_num])
    return chosen


def test_training_subset_is_the_references_and_validation_lies_beside_it():
    """Every class but the head keeps exactly the reference's images; validation comes from the
    images the profile leaves out, and the head class (kept whole) gives its last ones."""
    targets = np.repeat(np.arange(10), 300)  # 300 per class, class-major as an image-folder listing
    counts = reference_counts(300, 10, 10, "exp")
    train, val = subset_indices(targets, counts, 20, 0, "test")
    reference = reference_subset(targets, counts)
    for index, kept in enumerate(reference):
        mine = train[targets[train] == index]
        expected = kept if counts[index] + 20 <= 300 else kept[:300 - 20]
        np.testing.assert_array_equal(mine, expected)
        assert (targets[val] == index).sum() == 20
    assert not set(train) & set(val)


def test_stand_in_dataset_splits_classes_and_critical(tmp_path):
    entry = get_dataset_entry("cifar10_lt")
    kwargs = entry.stand_in(tmp_path).load_kwargs()  # 12 train, 2 test images per class; rho 5, 3 val per class
    dataset = create_dataset("cifar10_lt", **kwargs, task="multiclass")
    # classes with fewer than 3 images left out (the head, 12 of 12, and class 1, 10 of 12) give the rest from their kept ones
    expected = [min(count, 12 - 3) for count in reference_counts(12, 10, 5, "exp")]
    assert expected[:2] == [9, 9] and expected[2:] == reference_counts(12, 10, 5, "exp")[2:]
    assert dataset.train.class_counts() == expected
    assert dataset.val.class_counts() == [3] * 10 and dataset.test.class_counts() == [2] * 10
    assert dataset.class_names == list(CIFAR10_CLASSES) and dataset.critical_labels == (9,)
    assert torch.equal(dataset.train.y, (dataset.train.classes == 9).to(torch.uint8))
    assert dataset.record()["shot_thresholds"] == {"many_above": 1000, "few_below": 200}
    other = create_dataset("cifar10_lt", **{**kwargs, "params": {**kwargs["params"], "critical": "cat"}}, task="multiclass")
    assert other.critical_labels == (3,) and other.train.positives == expected[3]


@pytest.mark.parametrize("params,message", [
    ({"rho": "0.5"}, "--param rho=0.5 is invalid; valid: a number >= 1"),
    ({"rho": "nan"}, "--param rho=nan is invalid"),
    ({"profile": "linear"}, "--param profile=linear is invalid; valid: exp, step"),
    ({"val_per_class": "0"}, "val_per_class >= 1"),
    ({"critical": "unicorn"}, "'unicorn' is not one of its labels"),
])
def test_bad_params_are_refused_before_any_data_is_read(params, message):
    with pytest.raises(CritBenchError, match=message.replace("(", r"\(").replace("[", r"\[")):
        get_dataset_entry("cifar10_lt").validate_params(params)


def test_validation_larger_than_a_class_is_refused(tmp_path):
    kwargs = get_dataset_entry("cifar10_lt").stand_in(tmp_path).load_kwargs()
    with pytest.raises(CritBenchError, match="too few to hold out --param val_per_class=12"):
        create_dataset("cifar10_lt", **{**kwargs, "params": {**kwargs["params"], "val_per_class": 12}})


@needs(CIFAR10_DIR)
def test_real_copy_has_the_reference_counts(tmp_path):
    dataset = create_dataset("cifar10_lt", data_dir=CIFAR10_DIR.parent, params={"cache_dir": str(tmp_path)},
                             task="multiclass")
    assert dataset.train.class_counts() == [4900, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]
    assert dataset.val.class_counts() == [100] * 10 and dataset.test.class_counts() == [1000] * 10


def test_params_have_one_spelling_per_training():
    """`rho=100` (the default), `rho=100.0` and no rho train the same data: one run id."""
    check = get_dataset_entry("cifar10_lt").validate_params
    assert check({"rho": "100"}) == check({"rho": 100.0}) == check({}) == {}
    assert check({"rho": "10", "profile": "exp", "subset_seed": "0", "critical": "truck"}) == {"rho": 10.0, "critical": "9"}
    assert check({"val_per_class": 50, "profile": "step"}) == {"val_per_class": 50, "profile": "step"}


def test_binary_and_long_tailed_cifar_keep_their_own_md5_index_entries(tmp_path, monkeypatch):
    """Both read one image-folder copy through one cache folder: alternating them must not re-hash
    every file (each overwrote the other's `listing:` entry, whose key lacked the classes)."""
    kwargs = get_dataset_entry("cifar10_lt").stand_in(tmp_path / "data").load_kwargs()
    past = time.time_ns() - 60 * 10**9
    for image in (tmp_path / "data").rglob("*.png"):
        os.utime(image, ns=(past, past))
    machine = {"data_dir": kwargs["data_dir"], "params": {"cache_dir": kwargs["params"]["cache_dir"]}}
    first = {name: dataset_fingerprint(name, **machine) for name in ("cifar10", "cifar10_lt")}
    monkeypatch.setattr(cifar, "listing_md5", lambda listings: pytest.fail("re-hashed the images on a warm start"))
    assert {name: dataset_fingerprint(name, **machine) for name in ("cifar10", "cifar10_lt")} == first
    assert first["cifar10"] != first["cifar10_lt"]
