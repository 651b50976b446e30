"""The flat run configuration logged with every result: its fields and defaults (the one place
they are written; the command lines read them from here), the checks of its plain values, and
which fields make up a run's identity.

Torch-free: names that belong to a registry (dataset, method, model, sampler, augmentation) are
checked where the registry lives, when `benchmarks.engine.resolve` fills in the recipe defaults.
"""
from __future__ import annotations

import dataclasses
import math
import re
import shlex
from dataclasses import dataclass, field

from benchmarks.core.errors import CritBenchError

BATCH_SIZE = {2: 128, 3: 32}  # MedMNIST v2 recipe
MODEL = "resnet18"  # MedMNIST v2 recipe; a method preset may prescribe another (the ALM paper's ResNet10)
# Fields describing where and how fast a run executes, not what it computes: not in its identity.
MACHINE_FIELDS = ("device", "data_dir", "compile")
# Dataset parameters that say where files live on this machine, not what the data is (the data's
# checksum stands for its content): kept out of a run's identity like MACHINE_FIELDS.
MACHINE_PARAMS = ("cache_dir", "csv")  # = the union of the datasets' DatasetEntry.machine_params (a test checks it)
DEVICE_PATTERN = re.compile(r"auto|cpu|cuda(:\d+)?")
PRECISIONS = ("bf16-autocast", "fp32")
# The task framings (docs/datasets.md): the critical class against the rest, or a K-way head on
# every label with the critical class scored by its probability.
TASKS = ("binary", "multiclass")
# The validation AUC that selects a run's checkpoint and stops it early: the critical class's
# (CritBench's question), or with --task multiclass MedMNIST v2's mean one-vs-rest AUC over every
# label (MedMNIST/experiments train_and_eval_pytorch.py keeps the epoch of the best val AUC).
SELECTIONS = ("critical", "all_classes")


@dataclass(frozen=True)
class RunConfig:
    """Everything needed to rerun a training run. `None` means "the recipe's default"."""

    dataset: str
    method: str
    seed: int = 0
    epochs: int = 100
    batch_size: int | None = None
    size: int | None = None
    imbalance: float | None = None
    max_train_samples: int | None = None
    patience: int | None = None  # None: the dataset's protocol (MedMNIST v2: 0 = never stop; CIFAR: 30)
    model: str | None = None  # None: the method preset's, else MODEL
    stem: str = "medmnist"
    width: float = 1.0
    amp: bool = True  # bf16 autocast where the device has native bf16; False: fp32 everywhere
    precision: str | None = None  # resolved from amp and the device: "bf16-autocast" or "fp32"
    sampler: str = "none"
    task: str = "binary"  # TASKS; in a run's identity only when not binary, so binary run ids keep their value
    select_on: str = "critical"  # SELECTIONS; in a run's identity only when not critical, as task
    augment: str | None = None  # None: the dataset's default
    params: dict = field(default_factory=dict)  # method hyperparameters (dataset keys are moved out by resolve)
    dataset_params: dict = field(default_factory=dict)
    device: str = "auto"
    data_dir: str | None = None
    compile: bool = False  # torch.compile the model (speed only; see docs/speed.md)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def identity(self) -> dict:
        """The fields that determine the result (machine-specific fields and parameters removed)."""
        identity = {k: v for k, v in self.to_dict().items() if k not in MACHINE_FIELDS}
        for name in ("task", "select_on"):  # the framing and selection every run had before they existed
            if identity[name] == default(name):
                del identity[name]
        identity["dataset_params"] = {k: v for k, v in self.dataset_params.items() if k not in MACHINE_PARAMS}
        return identity


def default(name: str):
    """The default of RunConfig field `name` (what a command line shows and uses when not given)."""
    return RunConfig.__dataclass_fields__[name].default


def _flag(name: str) -> str:
    return f"--{name.replace('_', '-')}"


SEED_LIMIT = 2**32  # numpy's and CUDA's generators keep 32 bits: larger seeds would repeat smaller ones
# Each numeric field's type and bound: integers >= the bound, numbers (finite) > it. batch_size >= 2:
# BatchNorm cannot train on a batch of one. Width's upper range is models3d.check_backbone's;
# max_train_samples' bound is datasets.subsample's (two of each class), checked here before any data loads.
NUMBERS = {"seed": (int, 0), "epochs": (int, 1), "batch_size": (int, 2), "size": (int, 1), "imbalance": (float, 0),
           "max_train_samples": (int, 4), "patience": (int, 0), "width": (float, 0)}
TEXTS = ("dataset", "method", "model", "stem", "sampler", "task", "select_on", "augment", "device", "data_dir")
SWITCHES = ("amp", "compile")


def check_field(name: str, value, where: str | None = None) -> None:
    """Raise CritBenchError for a RunConfig field of the wrong type or out of range, naming `where`
    (default: the field's command-line flag; a suite passes its key)."""
    where = where or _flag(name)
    if value is None and RunConfig.__dataclass_fields__[name].default is None:
        return  # the recipe's default
    if name in NUMBERS:
        kind, bound = NUMBERS[name]
        if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else int):
            raise CritBenchError(f"{where} must be {'a number' if kind is float else 'an integer'}, got {value!r}")
        if kind is float and not (math.isfinite(value) and value > bound):
            raise CritBenchError(f"{where} must be a positive finite number, got {value}")
        if kind is int and value < bound:
            raise CritBenchError(f"{where} must be >= {bound}, got {value}")
        if name == "seed" and value >= SEED_LIMIT:
            raise CritBenchError(f"{where} must be below 2**32 = {SEED_LIMIT} (the random generators keep 32 bits), "
                                 f"got {value}")
    elif name in TEXTS and not isinstance(value, str):
        raise CritBenchError(f"{where} must be a string, got {value!r}")
    elif name in SWITCHES and not isinstance(value, bool):
        raise CritBenchError(f"{where} must be true or false, got {value!r}")
    elif name in ("params", "dataset_params") and not isinstance(value, dict):
        raise CritBenchError(f"{where} must be a table of key = value, got {value!r}")


def check_values(config: RunConfig) -> None:
    """Raise CritBenchError naming the flag for a plain value of the wrong type or out of range."""
    for name in RunConfig.__dataclass_fields__:
        check_field(name, getattr(config, name))
    if config.precision not in (None, *PRECISIONS):
        raise CritBenchError(f"unknown precision {config.precision!r}; valid: {', '.join(PRECISIONS)}")
    if config.task not in TASKS:
        raise CritBenchError(f"unknown --task {config.task!r}; valid: {', '.join(TASKS)}")
    if config.select_on not in SELECTIONS:
        raise CritBenchError(f"unknown --select-on {config.select_on!r}; valid: {', '.join(SELECTIONS)}")
    if config.select_on == "all_classes" and config.task != "multiclass":
        raise CritBenchError(f"--select-on all_classes selects on the AUC over every label, which only --task multiclass "
                             f"scores; use --task multiclass or --select-on critical")
    if not DEVICE_PATTERN.fullmatch(config.device):
        raise CritBenchError(f"unknown --device {config.device!r}; valid: auto, cpu, cuda, cuda:N")


def rerun_command(config: RunConfig) -> str:
    """A `benchmarks.run` command line that retrains this config with the same run id: its non-default
    run settings, its method preset, every other method parameter (a suite may set one its preset does
    not) and its dataset parameters, each quoted for the shell. How to rerun a record that does not
    carry its own command, or whose command is a leaderboard's that trains several runs."""
    parts = ["python -m benchmarks.run", f"--dataset {config.dataset}", f"--method {config.method}"]
    for name, spec in RunConfig.__dataclass_fields__.items():
        value = getattr(config, name)
        if name in ("dataset", "method", "params", "dataset_params", "precision", "data_dir", "compile") or value is None \
                or value == spec.default:
            continue
        if name == "amp":
            parts.append("--no-amp")
        else:
            parts.append(f"--{name.replace('_', '-')} {value:g}" if isinstance(value, float) else f"--{name.replace('_', '-')} {value}")
    params = sorted(((key, value) for key, value in config.params.items() if key != "preset" or value),
                    key=lambda item: (item[0] != "preset", item[0]))  # the preset first; "" is no preset
    parts += [f"--param {shlex.quote(f'{key}={value}')}" for key, value in [*params, *sorted(config.dataset_params.items())]]
    return " ".join(parts)
