"""The in-memory binary dataset every adapter produces, and the helpers adapters share (the error
boundary of file reads, checksums, exact duplicates, seeds, binary labels, held-out splits)."""
from __future__ import annotations

import dataclasses
import hashlib
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

from benchmarks.core.errors import CritBenchError

SPLITS = ("train", "val", "test")


@dataclass
class Split:
    """Images as uint8 `(N, C, *spatial)` and labels as uint8 `(N,)`, 1 = the critical class.

    `classes`, where the data has labels beyond the binary task (`--task multiclass`), are every
    sample's label index, uint8 `(N,)`, or for multi-label data its findings, uint8 0/1 `(N, K)`."""

    x: torch.Tensor
    y: torch.Tensor
    classes: torch.Tensor | None = None

    def __post_init__(self):
        if self.x.dtype != torch.uint8 or self.y.dtype != torch.uint8:
            raise TypeError("Split tensors must be uint8")
        if self.x.shape[0] != self.y.shape[0] or self.y.ndim != 1:
            raise ValueError(f"images {tuple(self.x.shape)} and labels {tuple(self.y.shape)} disagree")
        if self.classes is not None and (self.classes.dtype != torch.uint8 or self.classes.shape[0] != self.y.shape[0]):
            raise ValueError(f"class labels {tuple(self.classes.shape)} ({self.classes.dtype}) do not fit labels "
                             f"{tuple(self.y.shape)}: they must be uint8, one row per sample")

    def __len__(self) -> int:
        return self.y.shape[0]

    @property
    def positives(self) -> int:
        return int(self.y.sum())

    def take(self, index: torch.Tensor) -> "Split":
        return Split(self.x[index], self.y[index], None if self.classes is None else self.classes[index])

    def md5(self) -> str:
        """md5 of the split's image and binary label bytes: which samples, in which order (the same in
        both task framings, so a report compares them on one test set)."""
        digest = hashlib.md5(self.x.contiguous().numpy().tobytes())
        digest.update(self.y.contiguous().numpy().tobytes())
        return digest.hexdigest()

    def sample_md5s(self) -> list[bytes]:
        """Each sample's image md5 (exact copies share it)."""
        return [hashlib.md5(sample.tobytes()).digest() for sample in self.x.contiguous().numpy()]

    def class_counts(self) -> list[int]:
        """Samples per class (multi-label: per finding)."""
        if self.classes.ndim == 2:
            return self.classes.sum(0, dtype=torch.int64).tolist()
        return torch.bincount(self.classes.long(), minlength=0).tolist()

    def summary(self, num_classes: int | None = None) -> dict:
        """n and positives; with `num_classes`, the samples per class too."""
        if num_classes is None:
            return {"n": len(self), "positives": self.positives}
        counts = self.class_counts()
        return {"n": len(self), "positives": self.positives, "class_counts": counts + [0] * (num_classes - len(counts))}


def copies_across_splits(splits: dict[str, Split]) -> dict[str, int]:
    """Per pair of splits ("train/val"), the samples of the second whose image is an exact copy of
    one in the first: a leak an official split can have (PneumoniaMNIST: 8 of its 524 val images
    repeat train images). Adapters of the user's own files refuse such copies before training."""
    md5s = {name: split.sample_md5s() for name, split in splits.items()}
    seen = {name: set(values) for name, values in md5s.items()}
    names = list(splits)
    return {f"{first}/{second}": sum(md5 in seen[first] for md5 in md5s[second])
            for i, first in enumerate(names) for second in names[i + 1:]}


@dataclass
class BinaryDataset:
    """Train/val/test splits of a binary task plus what a run record needs to know about them."""

    name: str
    dims: int
    critical_class: str
    negative_class: str
    train: Split
    val: Split
    test: Split
    source_md5: str | None = None
    mean: tuple[float, ...] = (0.5,)
    std: tuple[float, ...] = (0.5,)
    augment: str | None = None
    notes: dict = field(default_factory=dict)
    # Where the splits carry `classes` (`--task multiclass`): the label names in index order, and
    # whether a sample may have several (multi-label, ChestMNIST), and the critical class's indices.
    class_names: list[str] | None = None
    multilabel: bool = False
    critical_labels: tuple[int, ...] = ()
    # Long-tailed data: the many-/medium-/few-shot groups' bounds on training images per class,
    # (many above, few below), reported as group accuracies (None: no groups).
    shot_thresholds: tuple[int, int] | None = None

    @property
    def num_classes(self) -> int | None:
        return None if self.class_names is None else len(self.class_names)

    @property
    def in_channels(self) -> int:
        return self.train.x.shape[1]

    @property
    def splits(self) -> dict[str, Split]:
        return {"train": self.train, "val": self.val, "test": self.test}

    def tensor_md5(self) -> str:
        """md5 of every split's image and label bytes: identifies the exact tensors trained on."""
        digest = hashlib.md5()
        for split in self.splits.values():
            digest.update(split.x.contiguous().numpy().tobytes())
            digest.update(split.y.contiguous().numpy().tobytes())
            if split.classes is not None:
                digest.update(split.classes.contiguous().numpy().tobytes())
        return digest.hexdigest()

    def framed(self, task: str) -> "BinaryDataset":
        """The dataset a `task` run trains on: `binary` drops the class labels (the binary task's
        tensors, record and checksums are those of every run before --task); `multiclass` keeps
        them and refuses a dataset without any."""
        if task == "binary":
            return dataclasses.replace(self, class_names=None, multilabel=False, critical_labels=(), shot_thresholds=None,
                                       **{name: Split(split.x, split.y) for name, split in self.splits.items()})
        if self.class_names is None or any(split.classes is None for split in self.splits.values()):
            raise CritBenchError(f"{self.name} has no class labels beyond its binary task, which --task multiclass "
                                 f"trains; run it with --task binary")
        return self

    def record(self) -> dict:
        classes = {} if self.class_names is None else {
            "class_names": list(self.class_names), "multilabel": self.multilabel,
            "critical_labels": list(self.critical_labels)}
        if self.shot_thresholds is not None:
            classes["shot_thresholds"] = {"many_above": self.shot_thresholds[0], "few_below": self.shot_thresholds[1]}
        return {
            "name": self.name,
            "dims": self.dims,
            "critical_class": self.critical_class,
            "negative_class": self.negative_class,
            "source_md5": self.source_md5,
            "tensor_md5": self.tensor_md5(),
            "augment": self.augment or "none",  # the training augmentation unless the config's `augment` names another
            "shape": list(self.train.x.shape[1:]),
            "splits": {name: split.summary(self.num_classes) for name, split in self.splits.items()},
            # which samples each split holds: a report pools seeds only over identical test sets
            "split_md5": {name: split.md5() for name, split in self.splits.items()},
            "copies_across_splits": copies_across_splits(self.splits),
            **self.notes,
            **classes,
        }


def describe(error: BaseException) -> str:
    """An exception as one line: its type and message (an OSError's reason without the path)."""
    text = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
    return f"{type(error).__name__}: {' '.join(text.split())}" if text else type(error).__name__


@contextmanager
def reading(path, what: str = "file", advice: str = "check that it is complete and readable, or remove it"):
    """The one error boundary around every read of a user's file or folder: whatever the reading
    library raises (OSError, a codec or parse error, Pillow's decompression-bomb guard, nibabel's
    header errors...) becomes one CritBenchError naming the file, the reason and what to do.
    Keep the block to the read itself, so a bug elsewhere is not blamed on the file."""
    try:
        yield
    except CritBenchError:
        raise
    except Exception as error:  # libraries raise many unrelated types for bad files
        raise CritBenchError(f"cannot read {what} {path} ({describe(error)}); {advice}") from None


@contextmanager
def writing(path, advice: str):
    """The boundary of a write: an OSError (full disk, read-only folder) becomes one line naming the file."""
    try:
        yield
    except OSError as error:
        raise CritBenchError(f"cannot write {path} ({describe(error)}); {advice}") from None


def file_md5(path, chunk: int = 1 << 20) -> str:
    """The md5 of a file's bytes, read in chunks; a read error names the file."""
    digest = hashlib.md5()
    with reading(path), open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def content_groups(md5s: list[str]) -> list[int]:
    """Each file's content group: the index of the first file with the same md5 (its own index
    when it has no earlier exact copy)."""
    first: dict[str, int] = {}
    return [first.setdefault(md5, index) for index, md5 in enumerate(md5s)]


def duplicates_within_split(groups: list[int], split_of: list[str], names: list[str], source: str) -> dict[str, int]:
    """Refuse an exact copy of a file in another split (it would leak that file into the other
    split), naming both files; return per split the number of files that repeat an earlier file
    of the same split (kept, and recorded in the dataset record)."""
    counts = dict.fromkeys(SPLITS, 0)
    for index, first in enumerate(groups):
        if first == index:
            continue
        if split_of[first] != split_of[index]:
            raise CritBenchError(f"{source}: {names[index]} ({split_of[index]}) is an exact copy of {names[first]} "
                                 f"({split_of[first]}); the same image in two splits leaks it between them: remove "
                                 f"one copy or put both in one split")
        counts[split_of[index]] += 1
    return counts


def seeded_generator(seed: int) -> torch.Generator:
    """A CPU torch generator seeded with `seed` (the adapters' seeded draws)."""
    return torch.Generator().manual_seed(seed)


def check_splits(dataset: BinaryDataset) -> BinaryDataset:
    """Refuse splits that cannot be trained or scored (a split without both classes)."""
    for name, split in dataset.splits.items():
        if split.positives == 0 or split.positives == len(split):
            raise CritBenchError(
                f"{dataset.name}: the {name} split has {split.positives} positives out of "
                f"{len(split)}; every split needs both classes to train and compute AUC"
            )
    return dataset


def binary_labels(labels: list[str], positive: str, negatives: list[str] | None, source: str):
    """Map class labels to the binary task: `positive` -> 1, `negatives` (default: every other
    label) -> 0, other labels dropped. Returns (bool mask of kept rows, uint8 labels of the kept
    rows, the negative class name). `source` names the file or folder in error messages."""
    found = sorted(set(labels))
    if len(found) == 1:
        raise CritBenchError(f"{source}: every sample has label {found[0]!r}; a binary task needs the critical class "
                             f"and at least one other label")
    if positive not in found:
        raise CritBenchError(f"{source}: the critical class {positive!r} (--param positive) is not among the labels found "
                             f"({', '.join(found)}); pass --param positive=<one of them>")
    negatives = list(negatives) if negatives else [label for label in found if label != positive]
    unknown = [label for label in negatives if label not in found or label == positive]
    if unknown:
        raise CritBenchError(f"{source}: --param negative names {', '.join(map(repr, unknown))}, which is the critical class "
                             f"or not among the labels found ({', '.join(found)})")
    wanted = set(negatives) | {positive}
    keep = torch.tensor([label in wanted for label in labels])
    y = torch.tensor([label == positive for label in labels if label in wanted], dtype=torch.uint8)
    return keep, y, "/".join(negatives)


def holdout_fractions(params: dict, parts: tuple[str, ...], defaults: dict) -> dict[str, float]:
    """The `<part>_fraction` params (e.g. val_fraction=0.1) of the parts to hold out, validated."""
    fractions = {}
    for part in parts:
        try:
            fractions[part] = float(params.get(f"{part}_fraction", defaults[part]))
        except (TypeError, ValueError):
            raise CritBenchError(f"--param {part}_fraction={params[f'{part}_fraction']} is invalid; "
                                 f"valid: a number in (0, 1)") from None
    if any(not 0 < f < 1 for f in fractions.values()) or sum(fractions.values()) >= 1:  # NaN fails too
        shown = ", ".join(f"{part}_fraction={f:g}" for part, f in fractions.items())
        raise CritBenchError(f"invalid {shown}: each must be in (0, 1) and together below 1")
    return fractions


def stratified_holdout(strata: torch.Tensor, groups: list[int], fractions: dict[str, float], gen: torch.Generator,
                       names: list[str], source: str) -> dict[str, torch.Tensor]:
    """Split sample indices into "train" and the held-out parts of `fractions`, class by class.

    Exact copies (samples with the same `content_groups` entry, indices into these samples) go
    with their first copy, so a held-out split never leaks. Each stratum (class index into
    `names`) of distinct samples gives round(n * fraction), at least 1, of them to every held-out
    part, in a `gen`-seeded random order, and keeps at least 1 for train. Returns sorted indices
    per part."""
    groups = torch.tensor(groups, dtype=torch.long)
    firsts = (groups == torch.arange(len(groups))).nonzero().flatten()
    index = distinct_holdout(strata[firsts], fractions, gen, names, source)
    return {part: torch.isin(groups, firsts[chosen]).nonzero().flatten() for part, chosen in index.items()}


def distinct_holdout(strata: torch.Tensor, fractions: dict[str, float], gen: torch.Generator,
                     names: list[str], source: str) -> dict[str, torch.Tensor]:
    """`stratified_holdout` of samples without exact copies."""
    parts = {"train": [], **{part: [] for part in fractions}}
    for value in strata.unique().tolist():
        members = (strata == value).nonzero().flatten()
        members = members[torch.randperm(len(members), generator=gen)]
        start = 0
        for part, fraction in fractions.items():
            take = max(1, round(len(members) * fraction))
            parts[part].append(members[start:start + take])
            start += take
        if start >= len(members):
            raise CritBenchError(f"{source}: class {names[value]!r} has only {len(members)} samples, too few to hold out "
                                 f"{' and '.join(fractions)} and keep some for train; add samples or give the split explicitly")
        parts["train"].append(members[start:])
    return {part: torch.cat(chunks).sort().values for part, chunks in parts.items()}
