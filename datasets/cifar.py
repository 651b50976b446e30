"""Imbalanced binary CIFAR after Sangalli et al. (NeurIPS 2021), see shared/reference/recipes.md.

cifar10: automobile (negative) vs truck (positive); cifar100: aquatic mammals (beaver, dolphin,
otter, seal, whale) vs shark. Validation is held out per class from the official train split and
is disjoint from train (the original code's validation overlaps its training set). For CIFAR-100
each run then trains on a seeded 90% of each negative class, as alm-dnn's
`BinaryUnbalancedCIFAR100` does (`img_max = int(((len(self.data) / original_num_classes) -
val_samples_per_cls) * perc_per_run)`, `perc_per_run=0.9`: 405 per class); its released code has no
CIFAR-10 loader, so CIFAR-10 keeps every remaining image (`--param train_fraction` sets either).
The imbalance (default 1:100: 20 sharks for 2025 CIFAR-100 negatives, 10 at 1:200, as the
reference's `img_min`) is applied to train only, by `create_dataset`. Test is the classes' full official
test split. Source: an image-folder copy (`train/<class>/*`, `test/<class>/*`) under `--data-dir`,
or torchvision's download. A copy's decoded images are cached under `cache_dir` (default
$XDG_CACHE_HOME/critbench/cifar, else ~/.cache/critbench/cifar), keyed by its checksum and the
decoder's versions, so a later start decodes none; the checksum itself is reused from the cache's md5
index while every file keeps its size and mtime, so a later start reads no image at all.
"""
from __future__ import annotations

import hashlib
from functools import partial
from pathlib import Path

import PIL
import torch
from PIL import features
from torchvision.datasets import CIFAR10, CIFAR100

from benchmarks.core.errors import CritBenchError, DataUnavailableError
from datasets.base import BinaryDataset, Split, seeded_generator
from datasets.cache import Md5Index, cache_folder, cache_param_help, entry_name, read_entry, write_entry
from datasets.imagefolder import list_image_folder, listing_md5, read_image_folder, write_image_folder
from datasets.registry import LoadRequest, register_dataset
from datasets.stand_in import StandIn

CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2023, 0.1994, 0.2010)
AUGMENT = "crop_flip"  # random crop (pad 4) and horizontal flip: alm-dnn's and kaidic/LDAM-DRW's training transform
DECODE_VERSION = 1  # bump when decoding changes, to invalidate cached tensors
ARRAYS = ("train_x", "train_c", "test_x", "test_c")
TASKS = {
    "cifar10": {"negatives": ("automobile",), "positives": ("truck",), "val_per_class": 500, "train_fraction": 1.0},
    "cifar100": {
        "negatives": ("beaver", "dolphin", "otter", "seal", "whale"),
        "positives": ("shark",),
        "val_per_class": 50,
        "train_fraction": 0.9,  # alm-dnn main.py: BinaryUnbalancedCIFAR100(..., perc_per_run=0.9)
    },
}


def task_classes(name: str) -> tuple[str, ...]:
    """Negatives then positives: class index >= len(negatives) is the critical class."""
    return TASKS[name]["negatives"] + TASKS[name]["positives"]


def find_image_folder(source: str, probe: str, data_dir: Path | None) -> Path | None:
    """The first of DIR, DIR/<source>-jpg, DIR/<source> that holds a `train/<probe>/` class folder."""
    if data_dir is None:
        return None
    for folder in (data_dir, data_dir / f"{source}-jpg", data_dir / source):
        if (folder / "train" / probe).is_dir():
            return folder
    return None


def list_copy(classes: tuple[str, ...], folder: Path):
    """The train and test listings of `classes` in an image-folder copy."""
    return [list_image_folder(folder, split, classes) for split in ("train", "test")]


def torchvision_root(request: LoadRequest) -> Path:
    """Where torchvision's CIFAR download lives: `--data-dir`, else `~/.cache/critbench`."""
    return request.data_dir or Path("~/.cache/critbench").expanduser()


def read_torchvision(name: str, root: Path, train: bool, classes: tuple[str, ...]):
    """Images (N, 3, 32, 32) and class indices into `classes` of torchvision's train or test split,
    downloaded into `root` when absent; DataUnavailableError when that fails."""
    cls = CIFAR10 if name == "cifar10" else CIFAR100
    try:
        data = cls(root=str(root), train=train, download=True)
    except Exception as error:
        raise DataUnavailableError(
            f"{name} is not in {root} and torchvision's download failed ({type(error).__name__}: "
            f"{error}); download it where there is internet (python -c \"from torchvision.datasets import "
            f"{cls.__name__}; {cls.__name__}('DIR', download=True)\") and pass --data-dir DIR, or pass --data-dir DIR "
            f"with an image-folder copy in DIR, DIR/{name}-jpg or DIR/{name} (train/<class>/ and test/<class>/ "
            f"folders of .png or .jpg images)"
        ) from None
    wanted = [data.class_to_idx[c] for c in classes]
    targets = torch.tensor(data.targets)
    keep = torch.isin(targets, torch.tensor(wanted))
    images = torch.from_numpy(data.data).permute(0, 3, 1, 2)[keep].contiguous()
    remap = {w: i for i, w in enumerate(wanted)}
    return images, torch.tensor([remap[int(t)] for t in targets[keep]])


def read_torchvision_splits(source: str, root: Path, classes: tuple[str, ...]) -> tuple[torch.Tensor, ...]:
    """Train images, train classes, test images, test classes of `classes` of torchvision's `source`."""
    return read_torchvision(source, root, True, classes) + read_torchvision(source, root, False, classes)


def arrays_md5(arrays) -> str:
    """The recorded checksum of torchvision's copy: md5 over the task's arrays."""
    digest = hashlib.md5()
    for array in arrays:
        digest.update(array.numpy().tobytes())
    return digest.hexdigest()


def copy_md5(listings, cache_dir: Path | None) -> str:
    """`listing_md5` of an image-folder copy, reused from the cache folder's md5 index while every
    file keeps its size and mtime (reading 12,000 files' bytes took ~1 s per run)."""
    index = Md5Index(cache_dir)
    files = [listing.root / relative for listing in listings for relative in listing.paths]
    key = "listing:" + "|".join(f"{listing.root / listing.split}:{','.join(listing.classes)}" for listing in listings)
    # the classes in the key: the binary task (2 folders) and the long-tailed one (10) share the cache
    md5 = index.digest(key, files, partial(listing_md5, listings))
    index.save()
    return md5


def fingerprint_cifar(name: str, request: LoadRequest) -> str:
    """The `source_md5` `load_cifar` would record, without decoding an image."""
    folder = find_image_folder(name, TASKS[name]["positives"][0], request.data_dir)
    if folder is not None:
        return copy_md5(list_copy(task_classes(name), folder), cache_folder(request.params, "cifar"))
    return arrays_md5(read_torchvision_splits(name, torchvision_root(request), task_classes(name)))


def decode_copy(listings) -> tuple[torch.Tensor, ...]:
    """Train images, train classes, test images, test classes of an image-folder copy (RGB, as stored)."""
    (train_x, train_c), (test_x, test_c) = (read_image_folder(listing) for listing in listings)
    return train_x, train_c, test_x, test_c


def read_decoded(path: Path, listings) -> tuple[torch.Tensor, ...]:
    """A cache entry's tensors, refused (ValueError) unless they fit the listed files."""
    saved = torch.load(path, weights_only=True)
    arrays = tuple(saved[key] for key in ARRAYS)
    for x, c, listing in zip(arrays[::2], arrays[1::2], listings):
        if x.dtype != torch.uint8 or len(x) != len(c) or not torch.equal(c, torch.tensor(listing.labels)):
            raise ValueError("its tensors do not fit the listed images")
    return arrays


def cached_decode(name: str, listings, md5: str, cache_dir: Path | None) -> tuple[tuple[torch.Tensor, ...], str]:
    """`decode_copy` through the cache, and whether the cache was "hit", "miss" or "off" (cache_dir=none)."""
    if cache_dir is None:
        return decode_copy(listings), "off"
    settings = {"task": name, "source_md5": md5, "channels": 3, "version": DECODE_VERSION,
                "pillow": PIL.__version__, "libjpeg": features.version("jpg"),
                "libjpeg_turbo": features.version("libjpeg_turbo")}
    path = cache_dir / entry_name(settings, ".pt")
    arrays = read_entry(path, partial(read_decoded, listings=listings))
    if arrays is not None:
        return arrays, "hit"
    arrays = decode_copy(listings)
    write_entry(path, lambda stream: torch.save(dict(zip(ARRAYS, arrays)), stream))
    return arrays, "miss"


def stand_in_cifar(name: str, folder: Path) -> StandIn:
    """A tiny image-folder copy of task `name` in `folder`, for tests."""
    write_image_folder(folder, task_classes(name), {"train": 30, "test": 4})
    return StandIn(data_dir=folder, stem="standard", imbalance=5,
                   params={"val_per_class": 6, "cache_dir": str(folder / "cache")})


def load_cifar(name: str, request: LoadRequest) -> BinaryDataset:
    """Binary CIFAR task `name` (the ALM paper's protocol): validation held out per class from the
    official train split, a seeded `train_fraction` of each negative class, the official test split.

    Reads an image-folder copy under `--data-dir` (decoded through the cache) or torchvision's download.
    """
    task = TASKS[name]
    classes = task_classes(name)
    folder = find_image_folder(name, TASKS[name]["positives"][0], request.data_dir)
    if folder is not None:
        cache_dir = cache_folder(request.params, "cifar")
        listings = list_copy(classes, folder)
        md5 = copy_md5(listings, cache_dir)
        (train_x, train_c, test_x, test_c), cache = cached_decode(name, listings, md5, cache_dir)
        source = f"image folder {folder}"
    else:
        root = torchvision_root(request)
        arrays = read_torchvision_splits(name, root, classes)
        md5 = arrays_md5(arrays)
        train_x, train_c, test_x, test_c = arrays
        source = f"torchvision {name} in {root}"
        cache = "not used (torchvision's arrays need no decoding)"
    positive = len(task["negatives"])
    val_per_class = request.number("val_per_class", task["val_per_class"], int, low=1)
    train_fraction = request.number("train_fraction", task["train_fraction"], float, low=0, high=1)
    if train_fraction == 0:
        raise CritBenchError("--param train_fraction=0 is invalid; valid: a share in (0, 1]")
    gen = seeded_generator(request.seed)
    val_mask = torch.zeros(len(train_c), dtype=torch.bool)
    for index in range(len(classes)):
        members = (train_c == index).nonzero().flatten()
        if len(members) <= val_per_class:
            raise CritBenchError(f"{name}: class {classes[index]} has {len(members)} train images, too few to hold out {val_per_class} for validation")
        val_mask[members[torch.randperm(len(members), generator=gen)[:val_per_class]]] = True
    train_mask = ~val_mask
    for index in range(positive if train_fraction < 1 else 0):  # each negative class: this run's share
        members = (train_mask & (train_c == index)).nonzero().flatten()
        dropped = members[torch.randperm(len(members), generator=gen)[int(len(members) * train_fraction):]]
        train_mask[dropped] = False
    labels = (train_c >= positive).to(torch.uint8)
    return BinaryDataset(
        name=name,
        dims=2,
        critical_class="/".join(task["positives"]),
        negative_class="/".join(task["negatives"]),
        train=Split(train_x[train_mask], labels[train_mask]),
        val=Split(train_x[val_mask], labels[val_mask]),
        test=Split(test_x, (test_c >= positive).to(torch.uint8)),
        source_md5=md5,
        mean=CIFAR_MEAN,
        std=CIFAR_STD,
        augment=AUGMENT,
        notes={"source": source, "val_per_class": val_per_class, "train_fraction": train_fraction, "cache": cache},
    )


for _name, _task in TASKS.items():
    register_dataset(
        _name,
        dims=2,
        sizes=(32,),
        default_imbalance=100,
        augment=AUGMENT,
        patience=30,  # the ALM paper: alm-dnn main.py `"--patience_early_stopping", type=int, default=30`
        params={"val_per_class": f"validation images held out per class (default {_task['val_per_class']})",
                "train_fraction": f"seeded share of each negative class trained on per run (default {_task['train_fraction']:g})",
                "cache_dir": cache_param_help("cifar")},
        machine_params=("cache_dir",),
        description=(f"binary CIFAR ({', '.join(_task['negatives'])} vs {', '.join(_task['positives'])}), "
                     f"train imbalance 1:100 by default"),
        stand_in=partial(stand_in_cifar, _name),
        fingerprint=partial(fingerprint_cifar, _name),
    )(partial(load_cifar, _name))
