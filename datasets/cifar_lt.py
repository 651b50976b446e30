"""Long-tailed CIFAR-10/100 (Cui et al. 2019; Cao et al. 2019, repo kaidic/LDAM-DRW): every class,
training counts decaying from 5,000 (CIFAR-10; 500 for CIFAR-100) to 5,000 / rho, the balanced
official test set.

Training counts are the reference's (`imbalance_cifar.py` `get_img_num_per_cls`): profile `exp`
keeps int(n_max * (1/rho)^(i / (K - 1))) images of class i, `step` keeps n_max for the first K/2
classes and int(n_max / rho) for the rest. The images are the reference's too: with
`subset_seed` s (default 0, its `--rand_number 0`) each class's train indices, in the original
CIFAR order, are shuffled by `np.random.seed(s)`'s generator, class after class, and the first
n_i kept (`np.random.shuffle(idx); selec_idx = idx[:the_img_num]`).

Validation (the reference has none: it selects on test): `val_per_class` images of each class
(default 100), drawn from the same shuffled order right after the kept ones, so from the train
images the profile leaves out and never from the test set. A class the profile keeps whole (the
head class, 5,000 of 5,000) has none left out: its validation images are the last
`val_per_class` of its kept ones, which it then does not train on (4,900 instead of 5,000 at the
default; the record lists every class's train and validation count). Test: the full official test
split (1,000 images per class for CIFAR-10).

The default critical class is the rarest, the last (class K-1: truck for CIFAR-10).
"""
from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import torch

from benchmarks.core.errors import CritBenchError
from datasets.base import BinaryDataset, Split
from datasets.cache import cache_folder, cache_param_help
from datasets.cifar import (
    AUGMENT,
    CIFAR_MEAN,
    CIFAR_STD,
    arrays_md5,
    cached_decode,
    copy_md5,
    find_image_folder,
    list_copy,
    read_torchvision_splits,
    torchvision_root,
)
from datasets.critical import PARAM, PARAM_HELP, CriticalDefault, canonical_params, choose_critical
from datasets.imagefolder import write_image_folder
from datasets.medmnist_binary import other_classes
from datasets.registry import LoadRequest, register_dataset
from datasets.stand_in import StandIn

PROFILES = ("exp", "step")
# CIFAR's label names in index order, which is also their alphabetical (image-folder) order.
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR100_CLASSES = (
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle", "bowl", "boy",
    "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle", "chair", "chimpanzee", "clock",
    "cloud", "cockroach", "couch", "crab", "crocodile", "cup", "dinosaur", "dolphin", "elephant", "flatfish",
    "forest", "fox", "girl", "hamster", "house", "kangaroo", "keyboard", "lamp", "lawn_mower", "leopard", "lion",
    "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain", "mouse", "mushroom", "oak_tree", "orange",
    "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree", "plain", "plate", "poppy", "porcupine",
    "possum", "rabbit", "raccoon", "ray", "road", "rocket", "rose", "sea", "seal", "shark", "shrew", "skunk",
    "skyscraper", "snail", "snake", "spider", "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank",
    "telephone", "television", "tiger", "tractor", "train", "trout", "tulip", "turtle", "wardrobe", "whale",
    "willow_tree", "wolf", "woman", "worm",
)
SOURCES = {"cifar10_lt": ("cifar10", CIFAR10_CLASSES), "cifar100_lt": ("cifar100", CIFAR100_CLASSES)}
# The official training images per class (5,000 of CIFAR-10's 50,000, 500 of CIFAR-100's), which
# bound rho and val_per_class before any image is read.
TRAIN_PER_CLASS = {"cifar10_lt": 5000, "cifar100_lt": 500}
DEFAULTS = {"rho": 100.0, "profile": "exp", "val_per_class": 100, "subset_seed": 0}
# Many/medium/few-shot groups by training images per class: (many above, few below). CIFAR-100-LT:
# the convention of Liu et al. 2019 (OLTR), many > 100, few < 20. CIFAR-10-LT has no such convention
# (at rho 100 those thresholds leave no few-shot class): CritBench's choice, many > 1,000, few < 200,
# gives 4 / 3 / 3 classes at rho = 100.
SHOT_THRESHOLDS = {"cifar10_lt": (1000, 200), "cifar100_lt": (100, 20)}
PARAMS = {
    "rho": "imbalance ratio n_max / n_min of the training counts (default 100; the literature uses 100, 50, 10)",
    "profile": "exp (Cao et al.'s exponential decay, default) or step (half the classes at n_max, half at n_max / rho)",
    "val_per_class": "validation images per class, from the train images the profile leaves out (default 100)",
    "subset_seed": "seed of the training subset (default 0: kaidic/LDAM-DRW's --rand_number 0)",
    PARAM: PARAM_HELP + " (default: the rarest class, the last)",
    "cache_dir": cache_param_help("cifar"),
}


def reference_counts(n_max: int, num_classes: int, rho: float, profile: str) -> list[int]:
    """Training images per class, as kaidic/LDAM-DRW `imbalance_cifar.py` `get_img_num_per_cls`
    with `imb_factor = 1 / rho` (see the module docstring)."""
    factor = 1 / rho
    if profile == "exp":
        return [int(n_max * (factor ** (index / (num_classes - 1.0)))) for index in range(num_classes)]
    half = num_classes // 2
    return [int(n_max)] * half + [int(n_max * factor)] * (num_classes - half)


def checked_settings(params: dict) -> tuple[float, str, int, int]:
    """rho, profile, val_per_class and subset_seed from `params`; CritBenchError naming the first
    invalid one, with its valid values."""
    rho = setting(params, "rho", float, lambda value: 1 <= value < float("inf"), "a number >= 1 (1: balanced)")
    profile = str(params.get("profile", DEFAULTS["profile"]))
    if profile not in PROFILES:
        raise CritBenchError(f"--param profile={profile} is invalid; valid: {', '.join(PROFILES)}")
    val_per_class = setting(params, "val_per_class", int, lambda value: value >= 1, "val_per_class >= 1 (an integer)")
    subset_seed = setting(params, "subset_seed", int, lambda value: 0 <= value < 2**32, "subset_seed in [0, 2**32) (an integer)")
    return rho, profile, val_per_class, subset_seed


def setting(params: dict, key: str, kind: type, valid, valid_text: str):
    """`params[key]` (else its default) as `kind`, refused unless `valid(value)` (NaN never is)."""
    text = str(params.get(key, DEFAULTS[key]))
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or not valid(value):
        raise CritBenchError(f"--param {key}={text} is invalid; valid: {valid_text}")
    return value


def checked_counts(name: str, n_max: int, rho: float, profile: str) -> list[int]:
    """The profile's training counts (`reference_counts`) for classes of `n_max` train images;
    CritBenchError where a class would keep no training image (rho > n_max)."""
    classes = SOURCES[name][1]
    counts = reference_counts(n_max, len(classes), rho, profile)
    empty = [index for index, count in enumerate(counts) if count < 1]
    if empty:
        raise CritBenchError(f"{name}: --param rho={rho:g} leaves {len(empty)} of {len(classes)} classes no training "
                             f"image (the first: {empty[0]} '{classes[empty[0]]}'); valid: 1 <= rho <= {n_max}, "
                             f"which keeps n_max / rho >= 1 image of the rarest")
    return counts


def check_holdout(name: str, which: str, images: int, val_per_class: int) -> None:
    """CritBenchError where holding out `val_per_class` images of a class of `images` train images
    (`which`: the class) would leave it none to train on."""
    if val_per_class >= images:
        raise CritBenchError(f"{name}: {which} has {images} train images, too few to hold out --param "
                             f"val_per_class={val_per_class}; valid: 1 <= val_per_class <= {images - 1}")


def critical_default(name: str) -> CriticalDefault:
    classes = SOURCES[name][1]
    return CriticalDefault((len(classes) - 1,), f"{classes[-1]}: the rarest class of the long tail")


def checked_params(name: str, params: dict) -> dict:
    """The params in one spelling per training (a run's identity): rho, profile, val_per_class and
    subset_seed as numbers and names, left out where they equal the defaults (`rho=100`, `rho=100.0`
    and no rho are one run), `critical` as label indices; invalid values are refused before loading."""
    values = dict(zip(("rho", "profile", "val_per_class", "subset_seed"), checked_settings(params)))
    checked_counts(name, TRAIN_PER_CLASS[name], values["rho"], values["profile"])
    check_holdout(name, "each class", TRAIN_PER_CLASS[name], values["val_per_class"])
    canonical = {**params, **{key: value for key, value in values.items() if key in params}}
    canonical = {key: value for key, value in canonical.items() if key not in DEFAULTS or value != DEFAULTS[key]}
    return canonical_params(canonical, list(SOURCES[name][1]), critical_default(name), name)


def subset_indices(classes: np.ndarray, counts: list[int], val_per_class: int, seed: int, name: str):
    """Train and validation indices into the official train split (module docstring)."""
    rng = np.random.RandomState(seed)  # the reference's legacy `np.random.seed` generator
    train, val = [], []
    for index, kept in enumerate(counts):
        members = np.where(classes == index)[0]
        rng.shuffle(members)
        check_holdout(name, f"class {index}", len(members), val_per_class)
        kept = min(kept, len(members) - val_per_class)
        train.append(members[:kept])
        val.append(members[kept:kept + val_per_class])
    return np.concatenate(train), np.concatenate(val)


def read_source(name: str, request: LoadRequest):
    """The official train and test arrays of every class, the checksum, and notes on the source."""
    source, classes = SOURCES[name]
    folder = find_image_folder(source, classes[-1], request.data_dir)
    if folder is not None:
        cache_dir = cache_folder(request.params, "cifar")
        listings = list_copy(classes, folder)
        md5 = copy_md5(listings, cache_dir)
        arrays, cache = cached_decode(f"{source}/all", listings, md5, cache_dir)
        return arrays, md5, {"source": f"image folder {folder}", "cache": cache}
    root = torchvision_root(request)
    arrays = read_torchvision_splits(source, root, classes)
    return arrays, arrays_md5(arrays), {"source": f"torchvision {source} in {root}"}


def fingerprint_cifar_lt(name: str, request: LoadRequest) -> str:
    """The `source_md5` `load_cifar_lt` records, without decoding an image."""
    source, classes = SOURCES[name]
    folder = find_image_folder(source, classes[-1], request.data_dir)
    if folder is not None:
        return copy_md5(list_copy(classes, folder), cache_folder(request.params, "cifar"))
    return arrays_md5(read_torchvision_splits(source, torchvision_root(request), classes))


def load_cifar_lt(name: str, request: LoadRequest) -> BinaryDataset:
    """Long-tailed CIFAR `name` (module docstring), every label kept as the splits' classes and the
    critical class (`--param critical`, default the rarest) as the binary labels."""
    rho, profile, val_per_class, subset_seed = checked_settings(request.params)
    class_names = list(SOURCES[name][1])
    choice = choose_critical(request.params, class_names, critical_default(name), name)
    (train_x, train_c, test_x, test_c), md5, notes = read_source(name, request)
    n_max = int(torch.bincount(train_c.long()).max())
    counts = checked_counts(name, n_max, rho, profile)
    train_index, val_index = subset_indices(train_c.numpy(), counts, val_per_class, subset_seed, name)
    critical = torch.tensor(choice.labels)

    def split(x: torch.Tensor, c: torch.Tensor) -> Split:
        return Split(x.contiguous(), torch.isin(c, critical).to(torch.uint8), c.to(torch.uint8))

    train = split(train_x[train_index], train_c[train_index])
    return BinaryDataset(
        name=name,
        dims=2,
        critical_class="+".join(class_names[i] for i in choice.labels),
        negative_class=other_classes(class_names, choice.labels),
        train=train,
        val=split(train_x[val_index], train_c[val_index]),
        test=split(test_x, test_c),
        source_md5=md5,
        mean=CIFAR_MEAN,
        std=CIFAR_STD,
        augment=AUGMENT,
        notes={**notes, "rho": rho, "profile": profile, "subset_seed": subset_seed, "val_per_class": val_per_class,
               "reference_train_counts": counts, **choice.record()},
        class_names=class_names,
        critical_labels=tuple(choice.labels),
        shot_thresholds=SHOT_THRESHOLDS[name],
    )


def stand_in_cifar_lt(name: str, folder: Path) -> StandIn:
    """A tiny image-folder copy with every class (12 train, 2 test images each), for tests."""
    write_image_folder(folder, SOURCES[name][1], {"train": 12, "test": 2})
    return StandIn(data_dir=folder, params={"rho": 5, "val_per_class": 3, "cache_dir": str(folder / "cache")})


for _name in SOURCES:
    register_dataset(
        _name,
        dims=2,
        sizes=(32,),
        params=PARAMS,
        machine_params=("cache_dir",),
        check_params=partial(checked_params, _name),
        class_labels="multi-class",
        preset="cifar_lt",  # Cao et al.'s recipe (benchmarks/methods/presets.py), for --task multiclass methods
        augment=AUGMENT,
        epochs=200,  # kaidic/LDAM-DRW cifar_train.py: `parser.add_argument('--epochs', default=200, ...)`
        description=(f"long-tailed CIFAR-{len(SOURCES[_name][1])} (Cao et al. 2019): every class, train counts "
                     f"decaying to n_max / rho (rho 100 by default), the balanced test set; critical class: "
                     f"{SOURCES[_name][1][-1]}, the rarest; --task multiclass trains Cao et al.'s recipe (ResNet-32, "
                     f"SGD, 200 epochs)"),
        stand_in=partial(stand_in_cifar_lt, _name),
        fingerprint=partial(fingerprint_cifar_lt, _name),
    )(partial(load_cifar_lt, _name))
