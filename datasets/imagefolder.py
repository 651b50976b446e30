"""2D images in class folders: `--dataset imagefolder --data-dir DIR`.

Layout `DIR/train/<class>/*.png|jpg|jpeg|tif|tiff`, optional `DIR/val/<class>/` and
`DIR/test/<class>/`. `--param positive=<class>` is the critical class; every other class is a
negative, or only those of `--param negative=a,b`. A missing val/ or test/ is held out from train,
class by class, with the run's seed (`val_fraction` 0.1, `test_fraction` 0.2: MedMNIST's
70/10/20), and the held-out files are recorded. Images are read with Pillow, converted to
grayscale or RGB (`--param channels=1|3`; default: RGB if any image is in color) and resized to
`--size` x `--size` (bilinear, aspect ratio not kept). 16-bit and float images are min-max scaled
per image to 8 bits. `read_image_folder` is also how CIFAR's image-folder copy is read.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch

from benchmarks.core.errors import CritBenchError
from datasets.base import (
    SPLITS,
    BinaryDataset,
    Split,
    binary_labels,
    holdout_fractions,
    seeded_generator,
    stratified_holdout,
)
from datasets.registry import LoadRequest, register_dataset

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff"}
HIGH_DEPTH_MODES = {"I", "F", "I;16", "I;16B", "I;16L", "I;16N"}
GRAY_MODES = {"1", "L", "LA", "La"} | HIGH_DEPTH_MODES
HOLDOUT_DEFAULTS = {"val": 0.1, "test": 0.2}
PARAMS = {
    "positive": "class folder name of the critical class (default 1)",
    "negative": "comma-separated negative classes (default: every other class)",
    "channels": "1 (grayscale) or 3 (RGB); default: 3 if any image is in color, else 1",
    "val_fraction": "share of each train class held out for validation when val/ is absent (default 0.1)",
    "test_fraction": "share of each train class held out for test when test/ is absent (default 0.2)",
}


def read_image(path: Path, channels: int | None, size: int | None) -> np.ndarray:
    """One image as uint8 `(H, W, C)`: C is `channels`, or 1 for grayscale and 3 for color files."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.load()
    except (OSError, SyntaxError, ValueError) as error:  # Pillow's errors for unreadable/truncated files
        raise CritBenchError(f"cannot read image {path} ({type(error).__name__}: {error}); fix or remove the file") from None
    if image.mode in HIGH_DEPTH_MODES:
        pixels = np.asarray(image, dtype=np.float64)
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
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))
    if not files:
        raise CritBenchError(f"{folder} holds no images; accepted: {', '.join(sorted(IMAGE_SUFFIXES))} "
                             f"(DICOM is not supported: convert to PNG/TIFF, or to NIfTI for --dataset nifti)")
    return files


def read_image_folder(root: Path, split: str, classes: tuple[str, ...], digest, size: int | None = None,
                      channels: int | None = 3):
    """Images of `root/split/<class>/` as uint8 `(N, C, H, W)`, per-image class index, and the
    files' paths relative to `root`, in class then file-name order.

    Each file's relative path and bytes go into `digest`, so the copy's checksum is recorded.
    `size` resizes to a square; without it all images must already share one size. With
    `channels=None`, grayscale folders give C=1 and any color image makes C=3."""
    images, labels, paths = [], [], []
    for index, cls in enumerate(classes):
        folder = root / split / cls
        if not folder.is_dir():
            raise CritBenchError(f"{folder} is missing: an image-folder copy needs {split}/<class>/ for {', '.join(classes)}")
        for path in image_files(folder):
            relative = f"{split}/{cls}/{path.name}"
            digest.update(relative.encode())
            digest.update(path.read_bytes())
            images.append(read_image(path, channels, size))
            paths.append(relative)
            labels.append(index)
    if channels is None and any(image.shape[2] == 3 for image in images):
        images = [np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image for image in images]
    shapes = sorted({image.shape[:2] for image in images})
    if len(shapes) > 1:
        raise CritBenchError(f"{root / split}: images have different sizes ({', '.join(f'{h}x{w}' for h, w in shapes[:4])}); "
                             f"pass --size to resize them")
    array = np.stack(images).transpose(0, 3, 1, 2)
    return torch.from_numpy(np.ascontiguousarray(array)), torch.tensor(labels), paths


def class_names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def load_imagefolder(request: LoadRequest) -> BinaryDataset:
    root = request.data_dir
    if root is None or not (root / "train").is_dir():
        problem = "no --data-dir given" if root is None else f"{root}/train is missing"
        raise CritBenchError(f"--dataset imagefolder needs --data-dir DIR with DIR/train/<class>/ image folders "
                             f"(optional DIR/val/, DIR/test/); {problem}")
    params = request.params
    channels = int(params["channels"]) if "channels" in params else None
    if channels not in (None, 1, 3):
        raise CritBenchError(f"--param channels={channels} is invalid; valid: 1 (grayscale) or 3 (RGB)")
    negatives = [name.strip() for name in params["negative"].split(",")] if params.get("negative") else None
    positive = str(params.get("positive", "1"))
    found = class_names(root / "train")
    keep, _, negative_class = binary_labels(found, positive, negatives, f"{root / 'train'} (class folders)")
    classes = tuple(name for name, kept in zip(found, keep.tolist()) if kept)
    digest, parts, files = hashlib.md5(), {}, {}
    present = [split for split in SPLITS if (root / split).is_dir()]
    for split in present:
        split_classes = classes if split == "train" else tuple(c for c in classes if (root / split / c).is_dir())
        if not split_classes:
            raise CritBenchError(f"{root / split} has none of the class folders {', '.join(classes)}")
        x, cls, files[split] = read_image_folder(root, split, split_classes, digest, request.size, channels)
        parts[split] = (x, torch.tensor([classes.index(split_classes[i]) for i in cls.tolist()]))
    in_channels = max(x.shape[1] for x, _ in parts.values())
    parts = {split: (x.expand(-1, in_channels, -1, -1).contiguous(), cls) for split, (x, cls) in parts.items()}
    missing = tuple(split for split in SPLITS if split not in present)
    held_out = {}
    if missing:
        fractions = holdout_fractions(params, missing, HOLDOUT_DEFAULTS)
        x, cls = parts["train"]
        index = stratified_holdout(cls, fractions, seeded_generator(request.seed), list(classes), f"{root / 'train'}")
        parts = {**parts, **{part: (x[i], cls[i]) for part, i in index.items()}}
        held_out = {part: [files["train"][i] for i in index[part].tolist()] for part in missing}
    critical = classes.index(positive)
    splits = {split: Split(x, (cls == critical).to(torch.uint8)) for split, (x, cls) in parts.items()}
    return BinaryDataset(
        name="imagefolder",
        dims=2,
        critical_class=positive,
        negative_class=negative_class,
        source_md5=digest.hexdigest(),
        mean=(0.5,) * in_channels,
        std=(0.5,) * in_channels,
        notes={
            "source": str(root),
            "classes": {"positive": positive, "negatives": [c for c in classes if c != positive]},
            "split_source": {split: "folder" if split in present else f"held out from train (seed {request.seed})"
                             for split in SPLITS},
            "held_out_files": held_out,
        },
        **splits,
    )


register_dataset(
    "imagefolder",
    dims=2,
    sizes=(28, 32, 64, 128, 224),
    size_range=(8, 512),
    params=PARAMS,
    description="your 2D images: DIR/train/<class>/*.png|jpg|tif (+ optional val/, test/), --param positive=<class>",
)(load_imagefolder)
