"""The six binary MedMNIST datasets, read from the official `.npz` files.

Metadata, URLs and checksums come from `medmnist.INFO`; the download uses torchvision's
`download_url` as medmnist does. The `.npz` is read directly because medmnist's Dataset class
asserts the official split sizes and yields per-sample PIL images.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from medmnist import INFO
from medmnist.info import DEFAULT_ROOT

from benchmarks.core.errors import CritBenchError, DataUnavailableError
from datasets.base import BinaryDataset, Split, file_md5
from datasets.registry import LoadRequest, register_dataset

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
            from torchvision.datasets.utils import download_url

            target.mkdir(parents=True, exist_ok=True)
            download_url(url, root=str(target), filename=name, md5=md5)
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


def _critical_label(flag: str, train_labels: np.ndarray) -> int:
    label = CRITICAL_LABEL[flag]
    if label == "minority":
        return int(np.argmin(np.bincount(train_labels, minlength=2)))
    return label


def load_medmnist(flag: str, request: LoadRequest) -> BinaryDataset:
    path = locate_npz(flag, request.size, request.data_dir)
    md5 = verify_md5(path, INFO[flag][f"MD5{size_suffix(request.size)}"])
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


def _register(flag: str) -> None:
    dims = 3 if flag.endswith("3d") else 2
    label = CRITICAL_LABEL[flag]
    critical = "the minority class" if label == "minority" else INFO[flag]["label"][str(label)]
    register_dataset(
        flag,
        dims=dims,
        sizes=SIZES_3D if dims == 3 else SIZES_2D,
        description=f"MedMNIST {INFO[flag]['python_class']} ({dims}D), critical class: {critical}",
    )(lambda request: load_medmnist(flag, request))


for _flag in CRITICAL_LABEL:
    _register(_flag)
