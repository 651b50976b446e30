"""The six binary MedMNIST datasets, read from the official `.npz` files.

Metadata, URLs and checksums come from `medmnist.INFO`; the download uses torchvision's
`download_url` as medmnist does. The `.npz` is read directly because medmnist's Dataset class
asserts the official split sizes and yields per-sample PIL images.
"""
from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import torch
from medmnist import INFO
from medmnist.info import DEFAULT_ROOT
from torchvision.datasets import utils as torchvision_utils

from benchmarks.core.errors import CritBenchError, DataUnavailableError
from datasets.base import BinaryDataset, Split, file_md5
from datasets.registry import LoadRequest, register_dataset
from datasets.stand_in import StandIn

# Which label is the critical class. BreastMNIST's label 0 is "malignant"; SynapseMNIST3D has no
# clinically critical class, so its minority class (resolved from the train labels) is used.
CRITICAL_LABEL = {
    "pneumoniamnist": 1,
    "breastmnist": 0,
    "nodulemnist3d": 1,
    "adrenalmnist3d": 1,
    "vesselmnist3d": 1,
    "synapsemnist3d": "minority",
}
SIZES_2D = (28, 64, 128, 224)
SIZES_3D = (28, 64)


def size_suffix(size: int) -> str:
    """medmnist's suffix for a size, in file names and INFO keys: '' for 28, '_64' for 64."""
    return "" if size == 28 else f"_{size}"


def npz_name(flag: str, size: int) -> str:
    return f"{flag}{size_suffix(size)}.npz"


def _candidates(data_dir: Path | None) -> list[Path]:
    if data_dir is None:
        return [Path(DEFAULT_ROOT).expanduser()]
    return [data_dir, data_dir / "medmnist"]


def locate_npz(flag: str, size: int, data_dir: Path | None, download: bool = True) -> Path:
    """Find `flag`'s file in the data folders, downloading it into the first one if absent."""
    info, suffix = INFO[flag], size_suffix(size)
    url, md5 = info[f"url{suffix}"], info[f"MD5{suffix}"]
    name = npz_name(flag, size)
    folders = _candidates(data_dir)
    for folder in folders:
        if (folder / name).is_file():
            return folder / name
    target = folders[0]
    if download:
        try:
            target.mkdir(parents=True, exist_ok=True)
            torchvision_utils.download_url(url, root=str(target), filename=name, md5=md5)
            return target / name
        except Exception as error:  # any network or disk failure: explain what to fetch by hand
            reason = f"download failed ({type(error).__name__}: {error})"
    else:
        reason = "downloads are disabled"
    raise DataUnavailableError(
        f"{flag} (size {size}) needs {name} (md5 {md5}), not found in "
        f"{', '.join(str(f) for f in folders)}; {reason}. Download {url} and put it in "
        f"{target}, or point --data-dir / CRITBENCH_DATA at the folder holding it"
    )


def verify_md5(path: Path, expected: str) -> str:
    actual = file_md5(path)
    if actual != expected:
        raise CritBenchError(
            f"{path} has md5 {actual} but medmnist INFO expects {expected}: the file is corrupt "
            f"or from another release; delete it and download it again"
        )
    return actual


def expected_md5(flag: str, size: int) -> str:
    return INFO[flag][f"MD5{size_suffix(size)}"]


def checked_npz(flag: str, request: LoadRequest) -> tuple[Path, str]:
    """The located `.npz` and its md5, verified against medmnist INFO (the recorded checksum)."""
    path = locate_npz(flag, request.size, request.data_dir)
    return path, verify_md5(path, expected_md5(flag, request.size))


def fingerprint_medmnist(flag: str, request: LoadRequest) -> str:
    return checked_npz(flag, request)[1]


def write_npz(flag: str, folder: Path, size: int = 28, n: int = 16, seed: int = 0) -> Path:
    """A MedMNIST-format file of random images, both labels in every split, positives darker."""
    rng = np.random.default_rng(seed)
    dims = 3 if flag.endswith("3d") else 2
    arrays = {}
    for split in ("train", "val", "test"):
        labels = np.array([0, 1] * (n // 2), dtype=np.uint8).reshape(-1, 1)
        images = rng.integers(0, 255, (n,) + (size,) * dims, dtype=np.uint8)
        images[labels[:, 0] == 1] //= 2
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = images, labels
    path = folder / npz_name(flag, size)
    folder.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)
    return path


def stand_in_medmnist(flag: str, folder: Path) -> StandIn:
    """A 28 px stand-in file; INFO is patched to expect its md5 (it cannot match the real one)."""
    path = write_npz(flag, folder, size=28)
    return StandIn(data_dir=folder, stem="standard", patches=((INFO[flag], "MD5", file_md5(path)),))


def _critical_label(flag: str, train_labels: np.ndarray) -> int:
    label = CRITICAL_LABEL[flag]
    if label == "minority":
        return int(np.argmin(np.bincount(train_labels, minlength=2)))
    return label


def load_medmnist(flag: str, request: LoadRequest) -> BinaryDataset:
    path, md5 = checked_npz(flag, request)
    with np.load(path) as npz:
        arrays = {key: npz[key] for key in npz.files}
    critical = _critical_label(flag, arrays["train_labels"].ravel())
    splits = {}
    for split in ("train", "val", "test"):
        images = torch.from_numpy(arrays[f"{split}_images"])
        if images.ndim == 4 and images.shape[-1] == 3 and INFO[flag]["n_channels"] == 3:
            images = images.permute(0, 3, 1, 2)
        else:
            images = images.unsqueeze(1)
        labels = torch.from_numpy((arrays[f"{split}_labels"].ravel() == critical).astype(np.uint8))
        splits[split] = Split(images.contiguous(), labels)
    names = INFO[flag]["label"]
    return BinaryDataset(
        name=flag,
        dims=3 if flag.endswith("3d") else 2,
        critical_class=names[str(critical)],
        negative_class=names[str(1 - critical)],
        source_md5=md5,
        notes={"source_file": path.name, "critical_label": critical},
        **splits,
    )


for _flag, _label in CRITICAL_LABEL.items():
    _dims = 3 if _flag.endswith("3d") else 2
    _critical = "the minority class" if _label == "minority" else INFO[_flag]["label"][str(_label)]
    register_dataset(
        _flag,
        dims=_dims,
        sizes=SIZES_3D if _dims == 3 else SIZES_2D,
        description=f"MedMNIST {INFO[_flag]['python_class']} ({_dims}D), critical class: {_critical}",
        stand_in=partial(stand_in_medmnist, _flag),
        fingerprint=partial(fingerprint_medmnist, _flag),
    )(partial(load_medmnist, _flag))
