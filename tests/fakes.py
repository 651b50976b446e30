"""Tiny stand-in sources for every real dataset adapter, so the generic test needs no real data.

`fake_source(name, folder)` writes files in the adapter's real on-disk format and returns the
keyword arguments for `create_dataset` / `RunConfig` that make the adapter read them.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from medmnist import INFO

from datasets.medmnist_binary import CRITICAL_LABEL, npz_name

CIFAR_CLASSES = {
    "cifar10": ("automobile", "truck"),
    "cifar100": ("beaver", "dolphin", "otter", "seal", "whale", "shark"),
}


def write_fake_npz(flag: str, folder: Path, size: int = 28, n: int = 16, seed: int = 0) -> Path:
    """A MedMNIST-format file with both labels in every split; its md5 is returned via INFO patching."""
    rng = np.random.default_rng(seed)
    dims = 3 if flag.endswith("3d") else 2
    arrays = {}
    for split in ("train", "val", "test"):
        labels = np.array([0, 1] * (n // 2), dtype=np.uint8).reshape(-1, 1)
        images = rng.integers(0, 255, (n,) + (size,) * dims, dtype=np.uint8)
        images[labels[:, 0] == 1] //= 2  # learnable: positives darker
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = images, labels
    path = folder / npz_name(flag, size)
    folder.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)
    return path


def write_fake_image_folder(classes, folder: Path, per_class: dict, seed: int = 0) -> Path:
    from PIL import Image

    rng = np.random.default_rng(seed)
    for split, count in per_class.items():
        for index, cls in enumerate(classes):
            target = folder / split / cls
            target.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                pixels = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8) // (1 + index % 2)
                Image.fromarray(pixels).save(target / f"{i:04d}.png")
    return folder


def write_fake_nifti_folder(folder: Path, size: int = 8, n: int = 12, seed: int = 0) -> Path:
    """`labels.csv` + `.nii.gz` volumes (both labels in every split), via the NIfTI exporter."""
    import torch

    from datasets.base import SPLITS, BinaryDataset, Split
    from datasets.export import export_nifti

    rng = np.random.default_rng(seed)
    splits = {}
    for split in SPLITS:
        labels = np.array([0, 1] * (n // 2), dtype=np.uint8)
        images = rng.integers(0, 255, (n, 1) + (size,) * 3, dtype=np.uint8)
        images[labels == 1] //= 2  # learnable: positives darker
        splits[split] = Split(torch.from_numpy(images), torch.from_numpy(labels))
    return export_nifti(BinaryDataset("fake", 3, "1", "0", **splits), SPLITS, folder)


def fake_source(name: str, folder: Path, monkeypatch) -> dict:
    """Write a stand-in for dataset `name` under `folder`; returns RunConfig keyword arguments.

    Full-size stand-ins (28 px and up) use the cheap standard stem to keep the generic test fast."""
    if name in CRITICAL_LABEL:
        path = write_fake_npz(name, folder)
        monkeypatch.setitem(INFO[name], "MD5", hashlib.md5(path.read_bytes()).hexdigest())
        return {"data_dir": str(folder), "stem": "standard"}
    if name in CIFAR_CLASSES:
        write_fake_image_folder(CIFAR_CLASSES[name], folder, {"train": 30, "test": 4})
        return {"data_dir": str(folder), "stem": "standard", "imbalance": 5, "dataset_params": {"val_per_class": 6}}
    if name.startswith("synthetic"):
        return {"size": 8}
    if name == "nifti":
        write_fake_nifti_folder(folder)
        return {"data_dir": str(folder), "size": 8, "dataset_params": {"cache_dir": str(folder / "cache")}}
    if name == "imagefolder":
        write_fake_image_folder(("neg", "pos"), folder, {"train": 12, "val": 4, "test": 4})
        return {"data_dir": str(folder), "size": 16, "dataset_params": {"positive": "pos"}}
    raise KeyError(f"tests/fakes.py has no stand-in source for dataset {name!r}: add one")
