"""Every MedMNIST dataset (`medmnist.INFO`: 12 2D, 6 3D, every size), read from the official `.npz`
files, as a binary task: the critical class (`datasets.critical`) against the rest; the splits keep
every label too (`Split.classes`), which `--task multiclass` trains.

Metadata, URLs and checksums come from `medmnist.INFO`; the download uses torchvision's
`download_url` as medmnist does. The `.npz` is read directly because medmnist's Dataset class
asserts the official split sizes and yields per-sample PIL images.

The network's input is what MedMNIST/experiments feeds (`input_scaling`): 2D images in [-1, 1],
3D volumes in [0, 1].
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
from datasets.critical import (MINORITY, PARAM, PARAM_HELP, CriticalChoice, CriticalDefault, canonical_params,
                               choose_critical, default_name)
from datasets.registry import LoadRequest, register_dataset
from datasets.stand_in import StandIn

# The critical class of each dataset where the clinical choice is unambiguous (docs/datasets.md
# repeats the reasons). OrganA/C/S/3D, TissueMNIST and BloodMNIST have none (anatomy or cell types,
# none of them the finding not to miss), nor ChestMNIST (pneumothorax, mass and nodule are all
# defensible): a run on them names one with --param critical.
CRITICAL_DEFAULTS = {
    "pneumoniamnist": CriticalDefault((1,), "pneumonia: the finding a screening reader must not miss"),
    "breastmnist": CriticalDefault((0,), "malignant: the tumour to not miss among normal and benign scans"),
    "nodulemnist3d": CriticalDefault((1,), "malignant: the lung nodule that needs work-up"),
    "adrenalmnist3d": CriticalDefault((1,), "hyperplasia: the abnormal adrenal gland"),
    "vesselmnist3d": CriticalDefault((1,), "aneurysm: the vessel at risk of rupture"),
    "synapsemnist3d": CriticalDefault(MINORITY, "no clinically critical class (synapse types): the train split's "
                                                "rarer label"),
    "dermamnist": CriticalDefault((4,), "melanoma: the deadliest of its seven skin lesions"),
    "pathmnist": CriticalDefault((8,), "colorectal adenocarcinoma epithelium: the cancer among nine tissue types"),
    "octmnist": CriticalDefault((0,), "choroidal neovascularization: the urgent, treatable retinal finding"),
    "fracturemnist3d": CriticalDefault((2,), "displaced rib fracture: the fracture type that needs treatment"),
    "retinamnist": CriticalDefault((2, 3, 4), "referable retinopathy (grade >= 2): the referral threshold of "
                                               "diabetic retinopathy screening"),
}
def sizes(flag: str) -> tuple[int, ...]:
    """The sides medmnist offers for `flag` (INFO's MD5 keys: 28, then _64, _128, _224)."""
    return (28,) + tuple(int(key[4:]) for key in INFO[flag] if key.startswith("MD5_"))


def input_scaling(flag: str) -> dict:
    """The dataset's per-channel `mean` and `std` (applied to pixels / 255), as MedMNIST/experiments
    scales its inputs: 2D, MedMNIST2D/train_and_eval_pytorch.py `transforms.ToTensor()` then
    `transforms.Normalize(mean=[.5], std=[.5])`, so [-1, 1]; 3D, medmnist's `MedMNIST3D.__getitem__`
    `np.stack([img / 255.0] ...)` then MedMNIST3D/train_and_eval_pytorch.py `Transform3D()` (only
    `voxel.astype(np.float32)`, or `voxel * 0.5` / `np.random.uniform()` with `--shape_transform`,
    the `scale` augmentation here), so [0, 1] with no normalization."""
    channels = INFO[flag]["n_channels"]
    if dims_of(flag) == 3:
        return {"mean": (0.0,) * channels, "std": (1.0,) * channels}
    return {"mean": (0.5,) * channels, "std": (0.5,) * channels}


def label_names(flag: str) -> list[str]:
    """INFO's label names in index order."""
    labels = INFO[flag]["label"]
    return [labels[str(index)] for index in range(len(labels))]


def is_multilabel(flag: str) -> bool:
    """Whether a sample of `flag` can carry several labels (ChestMNIST)."""
    return INFO[flag]["task"].startswith("multi-label")


def dims_of(flag: str) -> int:
    """3 for the `*3d` datasets, else 2."""
    return 3 if flag.endswith("3d") else 2


def size_suffix(size: int) -> str:
    """medmnist's suffix for a size, in file names and INFO keys: '' for 28, '_64' for 64."""
    return "" if size == 28 else f"_{size}"


def npz_name(flag: str, size: int) -> str:
    """The official file name: `<flag>.npz` at 28 px, `<flag>_<size>.npz` otherwise."""
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
        if (folder / name).exists() or (folder / name).is_symlink():
            raise CritBenchError(f"{folder / name} is there but is not a readable file (a folder, or a broken or looping "
                                 f"link); replace it with {flag}'s file (md5 {md5}) from {url}")
    target = folders[0]
    if data_dir is not None and not data_dir.exists():  # a typo: say so, and create no folder of that name
        raise DataUnavailableError(f"--data-dir {data_dir} does not exist (a typo?); {flag} (size {size}) needs "
                                   f"{name}: point --data-dir / CRITBENCH_DATA at the folder holding it, or create "
                                   f"{data_dir} for the download from {url}")
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
    """The file's md5; CritBenchError (delete it, download it again) unless it is `expected`."""
    actual = file_md5(path)
    if actual != expected:
        raise CritBenchError(
            f"{path} has md5 {actual} but medmnist INFO expects {expected}: the file is corrupt "
            f"or from another release; delete it and download it again"
        )
    return actual


def expected_md5(flag: str, size: int) -> str:
    """medmnist INFO's md5 of the `.npz` of `flag` at side `size`."""
    return INFO[flag][f"MD5{size_suffix(size)}"]


def checked_npz(flag: str, request: LoadRequest) -> tuple[Path, str]:
    """The located `.npz` and its md5, verified against medmnist INFO (the recorded checksum)."""
    path = locate_npz(flag, request.size, request.data_dir)
    return path, verify_md5(path, expected_md5(flag, request.size))


def fingerprint_medmnist(flag: str, request: LoadRequest) -> str:
    """The `source_md5` `load_medmnist` would record: the verified md5 of the `.npz`, without loading it."""
    return checked_npz(flag, request)[1]


def critical_choice(flag: str, params: dict) -> CriticalChoice:
    """The run's critical class of `flag`: `--param critical` or the default (checked before loading)."""
    return choose_critical(params, label_names(flag), CRITICAL_DEFAULTS.get(flag), flag)


def checked_params(flag: str, params: dict) -> dict:
    """`params` of `flag` checked before loading, `critical` in its canonical form."""
    return canonical_params(params, label_names(flag), CRITICAL_DEFAULTS.get(flag), flag)


def write_npz(flag: str, folder: Path, size: int = 28, n: int = 16, seed: int = 0) -> Path:
    """A MedMNIST-format file of random images in `flag`'s channels and label layout: labels
    alternate (multi-class: every other sample in the default critical class, the rest cycling
    through the labels; multi-label: each finding present and absent), critical-class images darker."""
    rng = np.random.default_rng(seed)
    n_classes, channels = len(INFO[flag]["label"]), INFO[flag]["n_channels"]
    shape = (size,) * dims_of(flag) + ((channels,) if channels == 3 else ())
    default = CRITICAL_DEFAULTS.get(flag)
    critical = default.labels if default and default.labels != MINORITY else (1,)
    arrays = {}
    for split in ("train", "val", "test"):
        if is_multilabel(flag):
            labels = (np.arange(n)[:, None] // (1 + np.arange(n_classes)[None, :] % 3)) % 2  # findings overlap
            darker = labels[:, 0] == 1
        else:
            labels = (np.arange(n) % n_classes).reshape(-1, 1)
            if n_classes > 2:
                labels[::2] = critical[0]  # half critical, the rest cycling through the labels
            darker = np.isin(labels[:, 0], critical)
        images = rng.integers(0, 255, (n,) + shape, dtype=np.uint8)
        images[darker] //= 2
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = images, labels.astype(np.uint8)
    path = folder / npz_name(flag, size)
    folder.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)
    return path


def stand_in_medmnist(flag: str, folder: Path) -> StandIn:
    """A 28 px stand-in file; INFO is patched to expect its md5 (it cannot match the real one). A
    dataset without a default critical class trains its label 1 (`--param critical=1`)."""
    path = write_npz(flag, folder, size=28)
    params = {} if flag in CRITICAL_DEFAULTS else {PARAM: "1"}
    return StandIn(data_dir=folder, stem="standard", params=params, patches=((INFO[flag], "MD5", file_md5(path)),))


def critical_labels(choice: CriticalChoice, train_labels: np.ndarray) -> tuple[int, ...]:
    """The choice's label indices; MINORITY resolves to the train split's rarer label."""
    if choice.labels == MINORITY:
        return (int(np.argmin(np.bincount(train_labels.ravel(), minlength=2))),)
    return choice.labels


def binary_targets(labels: np.ndarray, critical: tuple[int, ...], multilabel: bool) -> torch.Tensor:
    """uint8 1 where a sample has the critical class (multi-label: any of the critical findings)."""
    hits = labels[:, list(critical)].any(1) if multilabel else np.isin(labels.ravel(), critical)
    return torch.from_numpy(hits.astype(np.uint8))


def other_classes(names: list[str], critical: tuple[int, ...]) -> str:
    """The negative class's display name: the other label, or how many other labels."""
    rest = [name for index, name in enumerate(names) if index not in critical]
    return rest[0] if len(rest) == 1 else f"the other {len(rest)} classes"


def load_medmnist(flag: str, request: LoadRequest) -> BinaryDataset:
    """MedMNIST dataset `flag` at `--size` from its official `.npz` (located, downloaded when absent,
    md5-verified), official splits, labels made binary: the critical class (`--param critical` or the
    dataset's default) against the rest, with every label kept as the splits' `classes`."""
    choice = critical_choice(flag, request.params)
    path, md5 = checked_npz(flag, request)
    with np.load(path) as npz:
        arrays = {key: npz[key] for key in npz.files}
    critical = critical_labels(choice, arrays["train_labels"])
    splits = {}
    for split in ("train", "val", "test"):
        images = torch.from_numpy(arrays[f"{split}_images"])
        if images.ndim == 4 and images.shape[-1] == 3 and INFO[flag]["n_channels"] == 3:
            images = images.permute(0, 3, 1, 2)
        else:
            images = images.unsqueeze(1)
        labels = arrays[f"{split}_labels"]
        classes = torch.from_numpy(labels if is_multilabel(flag) else labels.reshape(-1)).to(torch.uint8)
        splits[split] = Split(images.contiguous(), binary_targets(labels, critical, is_multilabel(flag)), classes)
    names = label_names(flag)
    # one critical label keeps the record's critical_label as it has always been
    label = {"critical_label": critical[0]} if len(critical) == 1 else {}
    return BinaryDataset(
        name=flag,
        dims=dims_of(flag),
        critical_class=choice.name if len(critical) > 1 else names[critical[0]],
        negative_class=other_classes(names, critical),
        source_md5=md5,
        notes={"source_file": path.name, **label, **choice.record()},
        class_names=names,
        multilabel=is_multilabel(flag),
        critical_labels=critical,
        **input_scaling(flag),
        **splits,
    )


def describe_default(flag: str) -> str:
    """The `--list` note on the critical class of `flag`: its default, or that one must be chosen."""
    default = CRITICAL_DEFAULTS.get(flag)
    if default is None:
        return f"critical class: choose with --param {PARAM}"
    return f"critical class: {default_name(default, label_names(flag))}"


for _flag in INFO:
    register_dataset(
        _flag,
        dims=dims_of(_flag),
        sizes=sizes(_flag),
        description=f"MedMNIST {INFO[_flag]['python_class']} ({dims_of(_flag)}D, {INFO[_flag]['task']}), "
                    f"{describe_default(_flag)}",
        params={PARAM: PARAM_HELP},
        check_params=partial(checked_params, _flag),
        class_labels="multi-label" if is_multilabel(_flag) else "multi-class",
        stand_in=partial(stand_in_medmnist, _flag),
        fingerprint=partial(fingerprint_medmnist, _flag),
    )(partial(load_medmnist, _flag))
