"""Your own volumes: `--dataset nifti --data-dir DIR` with `DIR/labels.csv` (or `--param csv=FILE`).

The CSV has columns `path,label[,split]`: paths (`.nii`/`.nii.gz`) relative to the CSV's folder,
any labels (`--param positive=VALUE` is the critical class, default 1; numbers compare by value,
so 1, 1.0 and 01 are the same label), split `train`/`val`/`test`. Parts missing from the CSV
(all of val and test when there is no split column) are held out from train, label by label,
with the run's seed (`val_fraction` 0.1, `test_fraction` 0.2), and the held-out files are
recorded in the run record.

Each file is read with nibabel, reoriented to the closest canonical (RAS+) orientation, scaled to
[0, 1] per channel (`normalize`: `minmax` per volume, or the `clip` window when one is given;
`zscore` per volume, with -3..+3 SD mapped to 0..1; `none`: the values already are 0..255), resized
to the `--size` cube with MONAI (trilinear, anti-aliased; voxel spacing is not used, as in
MedMNIST) and quantized to uint8 as round(255 x), so values on the 0..255 grid survive exactly.
The network sees volumes in [0, 1] and 2D slices in [-1, 1], as MedMNIST's 3D and 2D data.
2D files (a single slice: one axis of length 1) give a 2D dataset trained by the 2D ResNet at
`--size` x `--size`; a 4th axis of up to 4 volumes (or NIfTI's vector 5th axis) gives channels.

Preprocessed tensors are cached as `.npy` under `cache_dir` (default
$XDG_CACHE_HOME/critbench/nifti, else ~/.cache/critbench/nifti), keyed by the file's md5 and every
setting that changes them; the md5s are indexed there by path, size and mtime, so a second start
neither decodes nor re-hashes an unchanged file.
"""
from __future__ import annotations

import csv
import hashlib
import io
import os
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import monai
import nibabel
import numpy as np
import torch
from monai.transforms import NormalizeIntensity, Resize, ScaleIntensity, ScaleIntensityRange
from monai.utils import convert_to_numpy

from benchmarks.core.errors import CritBenchError
from benchmarks.core.storage import write_text_atomic
from datasets.base import (
    SPLITS,
    BinaryDataset,
    Split,
    binary_labels,
    content_groups,
    duplicates_within_split,
    holdout_fractions,
    reading,
    seeded_generator,
    stratified_holdout,
    writing,
)
from datasets.cache import Md5Index, cache_folder, cache_param_help, entry_name, read_entry, write_entry
from datasets.registry import LoadRequest, register_dataset
from datasets.stand_in import StandIn

NORMALIZATIONS = ("minmax", "zscore", "none")
MAX_CHANNELS = 4
ZSCORE_RANGE = 3.0  # z-scores in [-3, 3] map to [0, 1]; beyond are clipped
PREPROCESS_VERSION = 1  # bump when preprocessing changes, to invalidate cached tensors
HOLDOUT_DEFAULTS = {"val": 0.1, "test": 0.2}
PARAMS = {
    "csv": "labels CSV with columns path,label[,split] (default DIR/labels.csv); paths relative to its folder",
    "positive": "label of the critical class (default 1); required when labels are text",
    "negative": "comma-separated negative labels (default: every other label)",
    "normalize": "minmax (default: per volume, or the clip window), zscore (per volume, +-3 SD), none (values already 0..255)",
    "clip": "intensity window LOW,HIGH applied first, e.g. CT HU -1000,400",
    "val_fraction": "share of each label held out for validation when the CSV has no val rows (default 0.1)",
    "test_fraction": "share of each label held out for test when the CSV has no test rows (default 0.2)",
    "cache_dir": cache_param_help("nifti"),
}


def canonical_label(value: str) -> str:
    """Numbers by exact value (`1.0` and `01` are `1`; `1234567` and `1234568` stay apart, and so do
    integers past float precision, 2**53 + 1 and 2**53); any other text as is."""
    try:
        return str(int(value))
    except ValueError:
        pass
    try:
        number = float(value)
    except ValueError:
        return value
    return str(int(number)) if number.is_integer() else repr(number)


def is_number(value: str) -> bool:
    """Whether a label text reads as a number (`1`, `1.0`)."""
    try:
        float(value)
        return True
    except ValueError:
        return False


def latin1_named(path: Path) -> Path | None:
    """The file whose name is `path`'s name in latin-1 bytes (a file named on an older system),
    when that exists and `path` itself does not; None otherwise."""
    try:
        other = path.with_name(os.fsdecode(path.name.encode("latin-1")))
    except UnicodeEncodeError:  # a character latin-1 has not: no such file
        return None
    return other if other != path and os.path.lexists(other) else None


def read_table(path: Path) -> list[dict]:
    """The CSV's rows as dicts with `path` (absolute Path), `label`, `split` (or None), `line`."""
    if not path.is_file():
        raise CritBenchError(f"labels CSV not found: {path}; --dataset nifti needs --data-dir DIR holding labels.csv "
                             f"(columns path,label[,split]) or --param csv=FILE")
    with reading(path, "labels CSV", "save it as UTF-8 text with the columns path,label[,split]"), \
            open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None:
            raise CritBenchError(f"{path} is empty; it needs a header path,label[,split] and one row per volume")
        columns = [name.strip().lower() for name in reader.fieldnames]
        if "path" not in columns or "label" not in columns:
            raise CritBenchError(f"{path} has columns {', '.join(columns)}; it needs path and label (and optionally split)")
        reader.fieldnames = columns
        rows = [(reader.line_num, row) for row in reader if any((value or "").strip() for value in row.values())]
    if not rows:
        raise CritBenchError(f"{path} has a header but no rows; add one row per volume (path,label[,split])")
    has_split = "split" in columns
    table, seen = [], {}
    for line, row in rows:
        name, label = (row.get("path") or "").strip(), (row.get("label") or "").strip()
        split = (row.get("split") or "").strip().lower() if has_split else None
        where = f"{path} line {line}"
        if not name or not label:
            raise CritBenchError(f"{where}: empty {'path' if not name else 'label'}")
        if not name.lower().endswith((".nii", ".nii.gz")):
            raise CritBenchError(f"{where}: {name} is not a .nii or .nii.gz file")
        if has_split and split not in SPLITS:
            raise CritBenchError(f"{where}: split {split!r} is not one of {', '.join(SPLITS)}")
        with reading(path.parent / name, "volume", f"fix line {line} of {path.name} or the file"):
            volume = (path.parent / name).resolve()
        if volume in seen:
            raise CritBenchError(f"{where}: duplicate path {name} (also on line {seen[volume]}); list each volume once")
        seen[volume] = line
        if not volume.is_file():
            problem = f"is a folder ({volume}), not a NIfTI file" if volume.is_dir() else f"not found at {volume}"
            if latin1 := latin1_named(path.parent / name):
                problem = (f"not found at {volume}, but {os.fsencode(latin1.name)!r} is there: its name is "
                           f"latin-1 bytes, not UTF-8; rename it to UTF-8 (e.g. convmv -f latin1 -t utf8)")
            raise CritBenchError(f"{where}: volume {name} {problem}")
        table.append({"path": volume, "name": name, "label": label, "split": split, "line": line})
    return table


class Preprocessor:
    """File -> uint8 `(C, *spatial)` tensor with the run's settings, through the on-disk cache."""

    def __init__(self, size: int, normalize: str, clip: tuple[float, float] | None, cache_dir: Path | None):
        if normalize not in NORMALIZATIONS:
            raise CritBenchError(f"--param normalize={normalize} is invalid; valid: {', '.join(NORMALIZATIONS)}")
        self.size, self.normalize, self.clip, self.cache_dir = size, normalize, clip, cache_dir
        self.settings = {"size": size, "normalize": normalize, "clip": clip, "version": PREPROCESS_VERSION,
                         "monai": monai.__version__, "nibabel": nibabel.__version__}
        self.hits = 0

    def __call__(self, path: Path, md5: str) -> np.ndarray:
        if self.cache_dir is None:
            return self.compute(path)
        cached = self.cache_dir / entry_name({"file": md5, **self.settings}, ".npy")
        array = read_entry(cached, lambda entry: np.load(entry, allow_pickle=False))
        if array is not None:
            self.hits += 1
            return array
        array = self.compute(path)
        write_entry(cached, lambda stream: np.save(stream, array))
        return array

    def read(self, path: Path) -> np.ndarray:
        """Float32 `(C, X, Y, Z)` in the closest canonical orientation."""
        with reading(path, "NIfTI volume", "check that the file is complete and a valid .nii/.nii.gz"):
            image = nibabel.load(path)
            data = image.get_fdata(dtype=np.float32)
            # As nibabel.as_closest_canonical, which refuses 2D arrays: reorder/flip the 3 spatial axes.
            orientation = nibabel.orientations.io_orientation(image.affine)
        shape = data.shape
        if data.ndim == 2:
            data = data[..., None]
        if data.ndim == 5 and shape[3] == 1:  # NIfTI vector images keep components on the 5th axis
            data = data[:, :, :, 0]
        if data.ndim == 3:
            data = data[..., None]
        if data.ndim != 4:
            raise CritBenchError(f"{path}: shape {shape} is not a 2D slice (X,Y), a volume (X,Y,Z) or a "
                                 f"multi-channel volume (X,Y,Z,C)")
        if data.shape[3] > MAX_CHANNELS:
            raise CritBenchError(f"{path}: shape {shape} has {data.shape[3]} volumes on its 4th axis (a time series?); "
                                 f"CritBench takes at most {MAX_CHANNELS} channels: extract the ones to use")
        if not np.isfinite(data).all():
            raise CritBenchError(f"{path}: contains NaN or infinite values; fix or remove the file")
        data = nibabel.orientations.apply_orientation(data, orientation)
        return np.ascontiguousarray(np.moveaxis(data, 3, 0))

    def compute(self, path: Path) -> np.ndarray:
        """One file as uint8 `(C, *spatial)`: reoriented, clipped, normalized to [0, 1], resized to the
        `size` cube (or square), quantized to 256 levels."""
        data = self.read(path)
        flat = [axis for axis in range(1, 4) if data.shape[axis] == 1]
        if len(flat) > 1:
            raise CritBenchError(f"{path}: spatial shape {data.shape[1:]} has {len(flat)} axes of length 1; "
                                 f"expected a 3D volume or a 2D slice")
        data = data.squeeze(flat[0]) if flat else data
        if self.clip is not None:
            data = np.clip(data, *self.clip)
        if self.normalize == "none":
            if data.min() < 0 or data.max() > 255:
                raise CritBenchError(f"{path}: values {data.min():g}..{data.max():g} are outside 0..255, which "
                                     f"--param normalize=none requires; use normalize=minmax or zscore")
            data = ScaleIntensityRange(a_min=0, a_max=255, b_min=0, b_max=1)(data)
        elif self.normalize == "minmax" and self.clip is not None:
            data = ScaleIntensityRange(a_min=self.clip[0], a_max=self.clip[1], b_min=0, b_max=1)(data)
        elif self.normalize == "minmax":
            data = ScaleIntensity(minv=0.0, maxv=1.0, channel_wise=True)(data)
        else:
            data = NormalizeIntensity(channel_wise=True)(data)
            data = ScaleIntensityRange(a_min=-ZSCORE_RANGE, a_max=ZSCORE_RANGE, b_min=0, b_max=1, clip=True)(data)
        dims = data.ndim - 1
        data = Resize((self.size,) * dims, mode="trilinear" if dims == 3 else "bilinear", anti_aliasing=True)(data)
        return np.round(np.clip(convert_to_numpy(data), 0, 1) * 255).astype(np.uint8)


def input_scaling(dims: int, channels: int) -> dict:
    """Per-channel `mean` and `std` (applied to pixels / 255), as the MedMNIST adapter's: 2D slices
    in [-1, 1] (mean, std 0.5), 3D volumes in [0, 1] (mean 0, std 1)."""
    if dims == 3:
        return {"mean": (0.0,) * channels, "std": (1.0,) * channels}
    return {"mean": (0.5,) * channels, "std": (0.5,) * channels}


def parse_clip(value: str | None) -> tuple[float, float] | None:
    """`--param clip=LOW,HIGH` as (low, high), None when not given; CritBenchError unless LOW < HIGH."""
    if value is None:
        return None
    try:
        low, high = (float(part) for part in value.split(","))
    except ValueError:
        low = high = None
    if low is None or not low < high:
        raise CritBenchError(f"--param clip={value} is invalid; give the window as LOW,HIGH with LOW < HIGH, e.g. clip=-1000,400")
    return low, high


def assign_splits(table: list[dict], strata: torch.Tensor, names: list[str], params: dict, seed: int,
                  source: str) -> tuple[dict[str, torch.Tensor], dict]:
    """Row indices per split: the CSV's split column, parts it lacks held out from train (exact
    copies, same `md5`, kept together)."""
    given = torch.tensor([SPLITS.index(row["split"] or "train") for row in table])
    parts = {split: (given == i).nonzero().flatten() for i, split in enumerate(SPLITS)}
    if len(parts["train"]) == 0:
        raise CritBenchError(f"{source} has no train rows; label some rows split=train, or drop the split column")
    missing = tuple(split for split in SPLITS if len(parts[split]) == 0)
    held_out = {}
    if missing:
        fractions = holdout_fractions(params, missing, HOLDOUT_DEFAULTS)
        train = parts["train"]
        groups = content_groups([table[i]["md5"] for i in train.tolist()])
        index = stratified_holdout(strata[train], groups, fractions, seeded_generator(seed), names, source)
        parts.update({part: train[i] for part, i in index.items()})
        held_out = {part: [table[i]["name"] for i in parts[part].tolist()] for part in missing}
    return parts, held_out


@dataclass(frozen=True)
class NiftiSource:
    """What `load_nifti` reads: the CSV, its kept rows (label filter applied, each with its file's
    `md5`), their splits, the recorded checksum, the exact copies kept within a split and the
    cache folder (None: no cache)."""

    csv_path: Path
    table: list[dict]
    labels: list[str]
    names: list[str]
    strata: torch.Tensor
    positive: str
    negative_class: str
    parts: dict[str, torch.Tensor]
    held_out: dict
    md5: str
    duplicates: dict[str, int]
    cache_dir: Path | None


def find_nifti_source(request: LoadRequest) -> NiftiSource:
    """Read and check the labels CSV, keep the rows of the binary task and assign their splits."""
    params = request.params
    if "csv" in params:
        csv_path = Path(params["csv"]).expanduser()
        if not csv_path.is_absolute() and request.data_dir is not None and not csv_path.exists():
            csv_path = request.data_dir / csv_path
    elif request.data_dir is not None:
        csv_path = request.data_dir / "labels.csv"
    else:
        raise CritBenchError("--dataset nifti needs --data-dir DIR holding labels.csv (columns path,label[,split]) "
                             "or --param csv=FILE")
    with reading(csv_path, "labels CSV"):
        csv_path = csv_path.resolve()
    table = read_table(csv_path)
    labels = [canonical_label(row["label"]) for row in table]
    text = sorted({row["label"] for row in table if not is_number(row["label"])})
    if text and "positive" not in params:
        raise CritBenchError(f"{csv_path}: labels are not numeric ({', '.join(text[:5])}); name the critical class "
                             f"with --param positive=<label>")
    positive = canonical_label(str(params.get("positive", "1")))
    negatives = [canonical_label(v.strip()) for v in params["negative"].split(",")] if params.get("negative") else None
    keep, _, negative_class = binary_labels(labels, positive, negatives, f"{csv_path} (label column)")
    cache_dir = cache_folder(params, "nifti")
    index = Md5Index(cache_dir)
    table = [{**row, "md5": index.md5(row["path"])} for row, kept in zip(table, keep.tolist()) if kept]
    index.save()
    labels = [label for label, kept in zip(labels, keep.tolist()) if kept]
    names = sorted(set(labels))
    strata = torch.tensor([names.index(label) for label in labels])
    parts, held_out = assign_splits(table, strata, names, params, request.seed, str(csv_path))
    split_of = dict(sorted((i, split) for split, index in parts.items() for i in index.tolist()))
    duplicates = duplicates_within_split(content_groups([row["md5"] for row in table]), list(split_of.values()),
                                         [row["name"] for row in table], str(csv_path))
    return NiftiSource(csv_path, table, labels, names, strata, positive, negative_class, parts, held_out,
                       source_digest(csv_path, table), duplicates, cache_dir)


def source_digest(csv_path: Path, table: list[dict]) -> str:
    """The recorded checksum: md5 of the CSV bytes, then of each kept file's md5."""
    with reading(csv_path, "labels CSV"):
        digest = hashlib.md5(csv_path.read_bytes())
    for row in table:
        digest.update(row["md5"].encode())
    return digest.hexdigest()


def fingerprint_nifti(request: LoadRequest) -> str:
    """The `source_md5` `load_nifti` would record (the CSV and every file's md5), without preprocessing."""
    return find_nifti_source(request).md5


def to_nifti_array(x: np.ndarray) -> np.ndarray:
    """`(C, *spatial)` to NIfTI's layout: `(X, Y, Z)`, `(X, Y)` for 2D, channels on a 4th axis."""
    if x.shape[0] == 1:
        return x[0]
    spatial = x.shape[1:] if x.ndim == 4 else x.shape[1:] + (1,)
    return np.moveaxis(x, 0, -1).reshape(spatial + (x.shape[0],))


def check_export_target(folder: Path, splits: tuple[str, ...], overwrite: bool) -> None:
    """Refuse an export folder that cannot take `splits` (a file, under a file, not writable, or
    holding a finished export without `overwrite`), creating it: before any data is loaded."""
    table = folder / "labels.csv"
    existing = next(path for path in (folder, *folder.parents) if path.exists())
    files = [path for path in (existing, *(folder / split for split in splits)) if path.exists() and not path.is_dir()]
    if files:
        raise CritBenchError(f"--to {folder}: {files[0]} is a file, not a folder; export into a new or empty folder")
    if table.is_dir():
        raise CritBenchError(f"--to {folder}: {table} is a folder; export into a new or empty folder")
    if table.exists() and not overwrite:
        raise CritBenchError(f"{table} exists; export into an empty folder or pass --overwrite")
    with writing(folder, "export to a writable --to folder"):
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()


def export_nifti(dataset: BinaryDataset, splits: tuple[str, ...], folder: Path, overwrite: bool = False) -> Path:
    """Write `splits` of `dataset` under `folder` as `.nii.gz` files plus `labels.csv`; returns the CSV path.

    `labels.csv` is written last and atomically, so a folder without it holds no finished export
    (an overwrite removes the old one first): an interrupted or failed export never blocks a rerun."""
    check_export_target(folder, splits, overwrite)
    table = folder / "labels.csv"
    table.unlink(missing_ok=True)
    rows = [("path", "label", "split")]
    advice = "free space, or export to another --to folder"
    for split in splits:
        part = dataset.splits[split]
        (folder / split).mkdir(exist_ok=True)
        for index, (x, y) in enumerate(zip(part.x.numpy(), part.y.tolist())):
            name = f"{split}/{index:05d}.nii.gz"
            with writing(folder / name, advice):
                nibabel.save(nibabel.Nifti1Image(np.ascontiguousarray(to_nifti_array(x)), np.eye(4)), folder / name)
            rows.append((name, y, split))
    text = io.StringIO()
    csv.writer(text).writerows(rows)
    with writing(table, advice):
        write_text_atomic(table, text.getvalue())
    return table


def stand_in_nifti(folder: Path, size: int = 8, n: int = 12, seed: int = 0) -> StandIn:
    """`labels.csv` + random uint8 volumes (both labels in every split, positives darker), exported."""
    rng = np.random.default_rng(seed)
    splits = {}
    for split in SPLITS:
        labels = np.array([0, 1] * (n // 2), dtype=np.uint8)
        images = rng.integers(0, 255, (n, 1) + (size,) * 3, dtype=np.uint8)
        images[labels == 1] //= 2
        splits[split] = Split(torch.from_numpy(images), torch.from_numpy(labels))
    export_nifti(BinaryDataset("stand-in", 3, "1", "0", **splits), SPLITS, folder)
    return StandIn(data_dir=folder, size=size, params={"cache_dir": str(folder / "cache")})


@register_dataset(
    "nifti",
    dims=3,
    sizes=(28, 64),
    size_range=(8, 128),
    params=PARAMS,
    description="your NIfTI volumes: DIR/labels.csv with path,label[,split] (2D slices give a 2D dataset)",
    stand_in=stand_in_nifti,
    fingerprint=fingerprint_nifti,
    machine_params=("cache_dir", "csv"),
)
def load_nifti(request: LoadRequest) -> BinaryDataset:
    """Your NIfTI volumes or slices listed in `labels.csv` (`path,label[,split]`): `--param positive`
    against the other (or the `negative`) labels, preprocessed through the cache; a split the CSV
    lacks is held out from train per label with the run's seed, exact copies kept together."""
    params = request.params
    source = find_nifti_source(request)
    csv_path, table, labels, names, positive = source.csv_path, source.table, source.labels, source.names, source.positive
    preprocess = Preprocessor(request.size, params.get("normalize", "minmax"), parse_clip(params.get("clip")),
                              source.cache_dir)
    arrays = [preprocess(row["path"], row["md5"]) for row in table]
    reference = arrays[0].shape
    for row, array in zip(table, arrays):
        if array.shape != reference:
            first = table[0]["name"]
            raise CritBenchError(f"{csv_path}: {row['name']} preprocesses to (channels, *spatial) {array.shape} but {first} "
                                 f"to {reference}; all files must be 2D slices or all 3D volumes, with one channel count")
    images = torch.from_numpy(np.stack(arrays))
    y = (source.strata == names.index(positive)).to(torch.uint8)
    splits = {}
    for split in SPLITS:
        index = source.parts[split]
        positives = int(y[index].sum())
        if positives in (0, len(index)):
            kind = f"positives (label {positive})" if positives == 0 else f"negatives (labels other than {positive})"
            raise CritBenchError(f"{csv_path}: the {split} split has no {kind} among its {len(index)} "
                                 f"files; every split needs both classes: move some rows, or drop the split column")
        splits[split] = Split(images[index].contiguous(), y[index].contiguous())
    channels, dims = reference[0], len(reference) - 1
    return BinaryDataset(
        name="nifti",
        dims=dims,
        critical_class=positive,
        negative_class=source.negative_class,
        source_md5=source.md5,
        **input_scaling(dims, channels),
        notes={
            "source": str(csv_path),
            "labels": dict(sorted(Counter(labels).items())),
            "preprocessing": {"orientation": "closest canonical (RAS+)", "normalize": preprocess.normalize,
                              "clip": preprocess.clip, "resize": f"{request.size}^{dims}",
                              "quantization": "round(255 * value in [0, 1]) -> uint8",
                              "network_input": "[0, 1] (uint8 / 255)" if dims == 3 else "[-1, 1] ((uint8 / 255 - 0.5) / 0.5)"},
            "split_source": {split: f"held out from train (seed {request.seed})" if split in source.held_out else "csv"
                             for split in SPLITS},
            "held_out_files": source.held_out,
            "duplicates_within_split": source.duplicates,
            "cache_hits": preprocess.hits,
        },
        **splits,
    )

