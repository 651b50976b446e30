"""Imbalanced binary CIFAR after Sangalli et al. (NeurIPS 2021), see shared/reference/recipes.md.

cifar10: automobile (negative) vs truck (positive); cifar100: aquatic mammals (beaver, dolphin,
otter, seal, whale) vs shark. Validation is held out per class from the official train split and
is disjoint from train (the original code's validation overlaps its training set); the imbalance
(default 1:100) is applied to train only, by `create_dataset`. Test is the classes' full official
test split. Source: an image-folder copy (`train/<class>/*`, `test/<class>/*`) under `--data-dir`,
or torchvision's download.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from benchmarks.core.errors import CritBenchError, DataUnavailableError
from datasets.base import BinaryDataset, Split, seeded_generator
from datasets.imagefolder import read_image_folder
from datasets.registry import LoadRequest, register_dataset

CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2023, 0.1994, 0.2010)
TASKS = {
    "cifar10": {"negatives": ("automobile",), "positives": ("truck",), "val_per_class": 500},
    "cifar100": {
        "negatives": ("beaver", "dolphin", "otter", "seal", "whale"),
        "positives": ("shark",),
        "val_per_class": 50,
    },
}


def find_image_folder(name: str, data_dir: Path | None) -> Path | None:
    """The first of DIR, DIR/<name>-jpg, DIR/<name> that holds `train/<class>/` folders."""
    if data_dir is None:
        return None
    task = TASKS[name]
    for folder in (data_dir, data_dir / f"{name}-jpg", data_dir / name):
        if (folder / "train" / task["positives"][0]).is_dir():
            return folder
    return None


def read_torchvision(name: str, root: Path, train: bool, classes: tuple[str, ...]):
    from torchvision.datasets import CIFAR10, CIFAR100

    cls = CIFAR10 if name == "cifar10" else CIFAR100
    try:
        data = cls(root=str(root), train=train, download=True)
    except Exception as error:
        raise DataUnavailableError(
            f"{name} is not in {root} and torchvision's download failed ({type(error).__name__}: "
            f"{error}); download it with torchvision, or pass --data-dir with an image-folder copy "
            f"(train/<class>/*.png, test/<class>/*.png)"
        ) from None
    wanted = [data.class_to_idx[c] for c in classes]
    targets = torch.tensor(data.targets)
    keep = torch.isin(targets, torch.tensor(wanted))
    images = torch.from_numpy(data.data).permute(0, 3, 1, 2)[keep].contiguous()
    remap = {w: i for i, w in enumerate(wanted)}
    return images, torch.tensor([remap[int(t)] for t in targets[keep]])


def load_cifar(name: str, request: LoadRequest) -> BinaryDataset:
    task = TASKS[name]
    classes = task["negatives"] + task["positives"]
    folder = find_image_folder(name, request.data_dir)
    digest = hashlib.md5()
    if folder is not None:
        train_x, train_c, _ = read_image_folder(folder, "train", classes, digest)
        test_x, test_c, _ = read_image_folder(folder, "test", classes, digest)
        source = f"image folder {folder}"
    else:
        root = request.data_dir or Path("~/.cache/critbench").expanduser()
        train_x, train_c = read_torchvision(name, root, True, classes)
        test_x, test_c = read_torchvision(name, root, False, classes)
        source = f"torchvision {name} in {root}"
        for array in (train_x, train_c, test_x, test_c):
            digest.update(array.numpy().tobytes())
    positive = len(task["negatives"])
    val_per_class = int(request.params.get("val_per_class", task["val_per_class"]))
    gen = seeded_generator(request.seed)
    val_mask = torch.zeros(len(train_c), dtype=torch.bool)
    for index in range(len(classes)):
        members = (train_c == index).nonzero().flatten()
        if len(members) <= val_per_class:
            raise CritBenchError(f"{name}: class {classes[index]} has {len(members)} train images, too few to hold out {val_per_class} for validation")
        val_mask[members[torch.randperm(len(members), generator=gen)[:val_per_class]]] = True
    labels = (train_c >= positive).to(torch.uint8)
    return BinaryDataset(
        name=name,
        dims=2,
        critical_class="/".join(task["positives"]),
        negative_class="/".join(task["negatives"]),
        train=Split(train_x[~val_mask], labels[~val_mask]),
        val=Split(train_x[val_mask], labels[val_mask]),
        test=Split(test_x, (test_c >= positive).to(torch.uint8)),
        source_md5=digest.hexdigest(),
        mean=CIFAR_MEAN,
        std=CIFAR_STD,
        augment="crop_flip",
        notes={"source": source, "val_per_class": val_per_class},
    )


for _name, _task in TASKS.items():
    register_dataset(
        _name,
        dims=2,
        sizes=(32,),
        default_imbalance=100,
        params={"val_per_class": f"validation images held out per class (default {_task['val_per_class']})"},
        description=(f"binary CIFAR ({', '.join(_task['negatives'])} vs {', '.join(_task['positives'])}), "
                     f"train imbalance 1:100 by default"),
    )(lambda request, _name=_name: load_cifar(_name, request))
