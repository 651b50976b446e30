"""2D images in class folders: `--dataset imagefolder --data-dir DIR`.

Layout `DIR/train/<class>/*.png|jpg|jpeg|tif|tiff`, optional `DIR/val/<class>/` and
`DIR/test/<class>/`. `--param positive=<class>` is the critical class; every other class is a
negative, or only those of `--param negative=a,b`. A missing val/ or test/ is held out from train,
class by class, with the run's seed (`val_fraction` 0.1, `test_fraction` 0.2: MedMNIST's
70/10/20), and the held-out files are recorded; a split folder named otherwise (`valid/`, `Test/`)
and class folders that differ only in case (`Pneumonia/`, `pneumonia/`) are refused. Images are
read with Pillow, converted to grayscale or RGB (`--param channels=1|3`; default: RGB if any image
is in color) and resized to `--size` x `--size` (bilinear, aspect ratio not kept). 16-bit and
float images are min-max scaled per image to 8 bits. CIFAR's image-folder copy is listed,
checksummed and read by the same `list_image_folder`, `listing_md5` and `read_image_folder`.
"""
from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from benchmarks.core.errors import CritBenchError
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
)
from datasets.registry import LoadRequest, register_dataset
from datasets.stand_in import StandIn

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff"}
HIGH_DEPTH_MODES = {"I", "F", "I;16", "I;16B", "I;16L", "I;16N"}
GRAY_MODES = {"1", "L", "LA", "La"} | HIGH_DEPTH_MODES
HOLDOUT_DEFAULTS = {"val": 0.1, "test": 0.2}
SPLIT_ALIASES = {"val": ("val", "valid", "validation"), "test": ("test", "testing")}
PARAMS = {
    "positive": "class folder name of the critical class (default 1)",
    "negative": "comma-separated negative classes (default: every other class)",
    "channels": "1 (grayscale) or 3 (RGB); default: 3 if any image is in color, else 1",
    "val_fraction": "share of each train class held out for validation when val/ is absent (default 0.1)",
    "test_fraction": "share of each train class held out for test when test/ is absent (default 0.2)",
}


def read_image(path: Path, channels: int | None, size: int | None) -> np.ndarray:
    """One image as uint8 `(H, W, C)`: C is `channels`, or 1 for grayscale and 3 for color files."""
    with reading(path, "image", "fix, convert or remove the file"), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # Pillow's notes on files that still decode (corrupt EXIF)
        with Image.open(path) as image:
            image.load()
        if image.mode in HIGH_DEPTH_MODES:
            pixels = np.asarray(image, dtype=np.float64)
            if not np.isfinite(pixels).all():
                raise CritBenchError(f"image {path} has NaN or infinite pixels, which have no gray level; "
                                     f"replace them (e.g. with the image's minimum) or remove the file")
            low, high = pixels.min(), pixels.max()
            scaled = (pixels - low) / (high - low) if high > low else np.zeros_like(pixels)
            image = Image.fromarray(np.round(scaled * 255).astype(np.uint8))
        channels = channels or (1 if image.mode in GRAY_MODES else 3)
        image = image.convert("L" if channels == 1 else "RGB")
        if size is not None and image.size != (size, size):
            image = image.resize((size, size), Image.Resampling.BILINEAR)
    pixels = np.asarray(image, dtype=np.uint8)
    return pixels[..., None] if pixels.ndim == 2 else pixels


def image_files(folder: Path) -> list[Path]:
    """The image files of one class folder, sorted; CritBenchError when it holds none."""
    with reading(folder, "folder"):
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))
    if not files:
        raise CritBenchError(f"{folder} holds no images; accepted: {', '.join(sorted(IMAGE_SUFFIXES))} "
                             f"(DICOM is not supported: convert to PNG/TIFF, or to NIfTI for --dataset nifti)")
    return files


@dataclass(frozen=True)
class FolderListing:
    """The image files of `root/split/<class>/` in class then file-name order: paths relative to
    `root` and each file's class index into `classes`."""

    root: Path
    split: str
    classes: tuple[str, ...]
    paths: tuple[str, ...]
    labels: tuple[int, ...]


def list_image_folder(root: Path, split: str, classes: tuple[str, ...]) -> FolderListing:
    """The files of `root/split/<class>/` for each of `classes`, with their class indices."""
    paths, labels = [], []
    for index, cls in enumerate(classes):
        folder = root / split / cls
        if not folder.is_dir():
            raise CritBenchError(f"{folder} is missing: an image-folder copy needs {split}/<class>/ for {', '.join(classes)}")
        for path in image_files(folder):
            paths.append(f"{split}/{cls}/{path.name}")
            labels.append(index)
    return FolderListing(root, split, classes, tuple(paths), tuple(labels))


def listing_digest(listings) -> tuple[str, list[str]]:
    """The recorded checksum of image-folder copies (md5 over each file's relative path and bytes,
    in listing order) and each file's own md5 (exact copies share it). Reads bytes only: decoding
    is what is slow."""
    digest, md5s = hashlib.md5(), []
    for listing in listings:
        for relative in listing.paths:
            with reading(listing.root / relative, "image", "fix or remove the file"):
                data = (listing.root / relative).read_bytes()
            digest.update(os.fsencode(relative))  # the name's own bytes, valid UTF-8 or not
            digest.update(data)
            md5s.append(hashlib.md5(data).hexdigest())
    return digest.hexdigest(), md5s


def listing_md5(listings) -> str:
    """The recorded checksum of image-folder listings (each file's relative path and bytes)."""
    return listing_digest(listings)[0]


def read_image_folder(listing: FolderListing, size: int | None = None, channels: int | None = 3):
    """The listed images as uint8 `(N, C, H, W)` and their class indices.

    `size` resizes to a square; without it all images must already share one size. With
    `channels=None`, grayscale folders give C=1 and any color image makes C=3."""
    images = [read_image(listing.root / relative, channels, size) for relative in listing.paths]
    if channels is None and any(image.shape[2] == 3 for image in images):
        images = [np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image for image in images]
    shapes = sorted({image.shape[:2] for image in images})
    if len(shapes) > 1:
        raise CritBenchError(f"{listing.root / listing.split}: images have different sizes "
                             f"({', '.join(f'{h}x{w}' for h, w in shapes[:4])}); pass --size to resize them")
    array = np.stack(images).transpose(0, 3, 1, 2)
    return torch.from_numpy(np.ascontiguousarray(array)), torch.tensor(listing.labels)


def write_image_folder(folder: Path, classes: tuple[str, ...], per_split: dict[str, int], seed: int = 0) -> Path:
    """`per_split[split]` random 32x32 RGB PNGs per class under `folder/split/<class>/` (odd classes
    darker, so the task is learnable): the stand-in of image-folder adapters."""
    rng = np.random.default_rng(seed)
    for split, count in per_split.items():
        for index, cls in enumerate(classes):
            target = folder / split / cls
            target.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                pixels = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8) // (1 + index % 2)
                Image.fromarray(pixels).save(target / f"{i:04d}.png")
    return folder


def class_names(folder: Path) -> list[str]:
    """The class folders in `folder`, sorted (hidden ones left out)."""
    with reading(folder, "folder"):
        return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def check_split_names(root: Path) -> None:
    """Refuse a folder of `root` that names val or test otherwise (`valid/`, `Test/`) while the
    split's own folder is absent: it would be ignored, and that split held out of train instead."""
    for name in class_names(root):
        for split, aliases in SPLIT_ALIASES.items():
            if name != split and name.casefold().strip() in aliases and not (root / split).is_dir():
                raise CritBenchError(f"{root} holds {name}/, which --dataset imagefolder does not read: its splits are "
                                     f"train/, val/ and test/ exactly (a missing one is held out of train); rename "
                                     f"{name}/ to {split}/ to use it as the {split} split, or move it out of {root}")


def check_class_case(folder: Path, classes: list[str]) -> None:
    """Refuse class folders whose names are equal after casefold().strip() (`Pneumonia`, `pneumonia`)."""
    seen = {}
    for name in classes:
        other = seen.setdefault(name.casefold().strip(), name)
        if other != name:
            raise CritBenchError(f"{folder} has class folders {other!r} and {name!r}, which differ only in case or "
                                 f"spaces but would be two classes; merge them into one folder")


@dataclass(frozen=True)
class FolderSource:
    """What `load_imagefolder` reads: the kept classes, the listing of every present split (train
    first), the recorded checksum and each listed file's md5, in listing order."""

    root: Path
    classes: tuple[str, ...]
    positive: str
    negative_class: str
    channels: int | None
    listings: dict[str, FolderListing]
    md5: str
    file_md5s: list[str]

    @property
    def files(self) -> list[str]:
        return [path for listing in self.listings.values() for path in listing.paths]

    @property
    def split_of(self) -> list[str]:
        return [split for split, listing in self.listings.items() for _ in listing.paths]


def find_folder_source(request: LoadRequest) -> FolderSource:
    """Check the layout and the class params, and list the files of every present split."""
    root = request.data_dir
    if root is None or not (root / "train").is_dir():
        problem = "no --data-dir given" if root is None else f"{root}/train is missing"
        raise CritBenchError(f"--dataset imagefolder needs --data-dir DIR with DIR/train/<class>/ image folders "
                             f"(optional DIR/val/, DIR/test/); {problem}")
    check_split_names(root)
    params = request.params
    channels = request.number("channels", None, int)
    if channels not in (None, 1, 3):
        raise CritBenchError(f"--param channels={channels} is invalid; valid: 1 (grayscale) or 3 (RGB)")
    negatives = [name.strip() for name in params["negative"].split(",")] if params.get("negative") else None
    positive = str(params.get("positive", "1"))
    found = class_names(root / "train")
    check_class_case(root / "train", found)
    keep, _, negative_class = binary_labels(found, positive, negatives, f"{root / 'train'} (class folders)")
    classes = tuple(name for name, kept in zip(found, keep.tolist()) if kept)
    listings = {}
    for split in SPLITS:
        if not (root / split).is_dir():
            continue
        present = class_names(root / split)
        check_class_case(root / split, present)
        unknown = sorted(set(present) - set(found))
        if unknown:
            raise CritBenchError(f"{root / split} has class folders that {root / 'train'} lacks ({', '.join(unknown)}); "
                                 f"a class must have training images: add {root / 'train'}/<class>/ or remove them")
        split_classes = classes if split == "train" else tuple(c for c in classes if (root / split / c).is_dir())
        if not split_classes:
            raise CritBenchError(f"{root / split} has none of the class folders {', '.join(classes)}")
        listings[split] = list_image_folder(root, split, split_classes)
    source = FolderSource(root, classes, positive, negative_class, channels, listings, *listing_digest(listings.values()))
    duplicates_within_split(content_groups(source.file_md5s), source.split_of, source.files, str(root))  # refuses leaks
    return source


def fingerprint_imagefolder(request: LoadRequest) -> str:
    """The `source_md5` `load_imagefolder` would record, without decoding an image."""
    return find_folder_source(request).md5


def stand_in_imagefolder(folder: Path) -> StandIn:
    """A tiny two-class image folder (`neg`, `pos`) with train, val and test, for tests."""
    write_image_folder(folder, ("neg", "pos"), {"train": 12, "val": 4, "test": 4})
    return StandIn(data_dir=folder, size=16, params={"positive": "pos"})


@register_dataset(
    "imagefolder",
    dims=2,
    sizes=(28, 32, 64, 128, 224),
    size_range=(8, 512),
    params=PARAMS,
    description="your 2D images: DIR/train/<class>/*.png|jpg|tif (+ optional val/, test/), --param positive=<class>",
    stand_in=stand_in_imagefolder,
    fingerprint=fingerprint_imagefolder,
)
def load_imagefolder(request: LoadRequest) -> BinaryDataset:
    """Your 2D images `DIR/train/<class>/` (optional `val/`, `test/`): `--param positive` against the
    other (or the `negative`) classes, resized to `--size`; a missing split is held out from train
    per class with the run's seed, exact copies kept together."""
    source = find_folder_source(request)
    root, classes, positive, params = source.root, source.classes, source.positive, request.params
    parts = {}
    for split, listing in source.listings.items():
        x, cls = read_image_folder(listing, request.size, source.channels)
        parts[split] = (x, torch.tensor([classes.index(listing.classes[i]) for i in cls.tolist()]))
    in_channels = max(x.shape[1] for x, _ in parts.values())
    parts = {split: (x.expand(-1, in_channels, -1, -1).contiguous(), cls) for split, (x, cls) in parts.items()}
    files, split_of = source.files, source.split_of  # train's files come first
    missing = tuple(split for split in SPLITS if split not in source.listings)
    held_out = {}
    if missing:
        fractions = holdout_fractions(params, missing, HOLDOUT_DEFAULTS)
        x, cls = parts["train"]
        groups = content_groups(source.file_md5s[:len(cls)])
        index = stratified_holdout(cls, groups, fractions, seeded_generator(request.seed), list(classes), f"{root / 'train'}")
        parts = {**parts, **{part: (x[i], cls[i]) for part, i in index.items()}}
        for part in missing:
            chosen = index[part].tolist()
            held_out[part] = [files[i] for i in chosen]
            for i in chosen:
                split_of[i] = part
    duplicates = duplicates_within_split(content_groups(source.file_md5s), split_of, files, str(root))
    critical = classes.index(positive)
    splits = {split: Split(x, (cls == critical).to(torch.uint8)) for split, (x, cls) in parts.items()}
    return BinaryDataset(
        name="imagefolder",
        dims=2,
        critical_class=positive,
        negative_class=source.negative_class,
        source_md5=source.md5,
        mean=(0.5,) * in_channels,
        std=(0.5,) * in_channels,
        notes={
            "source": str(root),
            "classes": {"positive": positive, "negatives": [c for c in classes if c != positive]},
            "split_source": {split: "folder" if split in source.listings else f"held out from train (seed {request.seed})"
                             for split in SPLITS},
            "held_out_files": held_out,
            "duplicates_within_split": duplicates,
        },
        **splits,
    )
