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
from dataclasses import dataclass, field

from benchmarks.core.errors import CritBenchError

BATCH_SIZE = {2: 128, 3: 32}  # MedMNIST v2 recipe
MODEL = "resnet18"  # MedMNIST v2 recipe; a method preset may prescribe another (the ALM paper's ResNet10)
# Fields describing where and how fast a run executes, not what it computes: not in its identity.
MACHINE_FIELDS = ("device", "data_dir", "compile")
DEVICE_PATTERN = re.compile(r"auto|cpu|cuda(:\d+)?")
PRECISIONS = ("bf16-autocast", "fp32")


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
    augment: str | None = None  # None: the dataset's default
    params: dict = field(default_factory=dict)  # method hyperparameters (dataset keys are moved out by resolve)
    dataset_params: dict = field(default_factory=dict)
    device: str = "auto"
    data_dir: str | None = None
    compile: bool = False  # torch.compile the model (speed only; see benchmarks/SPEED.md)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def identity(self) -> dict:
        """The fields that determine the result (machine-specific fields removed)."""
        return {k: v for k, v in self.to_dict().items() if k not in MACHINE_FIELDS}


def default(name: str):
    """The default of RunConfig field `name` (what a command line shows and uses when not given)."""
    return RunConfig.__dataclass_fields__[name].default


def _flag(name: str) -> str:
    return f"--{name.replace('_', '-')}"


POSITIVE_FIELDS = ("epochs", "batch_size", "size", "imbalance", "max_train_samples")  # width: models3d.check_backbone
NON_NEGATIVE_FIELDS = ("patience",)


def check_values(config: RunConfig) -> None:
    """Raise CritBenchError naming the flag for a plain value out of range (numbers, device)."""
    for name in POSITIVE_FIELDS + NON_NEGATIVE_FIELDS:
        value = getattr(config, name)
        if value is None:
            continue
        positive = name in POSITIVE_FIELDS
        if not math.isfinite(value) or value < 0 or (positive and value == 0):
            raise CritBenchError(f"{_flag(name)} must be {'positive' if positive else '>= 0'}, got {value}")
    if config.precision not in (None, *PRECISIONS):
        raise CritBenchError(f"unknown precision {config.precision!r}; valid: {', '.join(PRECISIONS)}")
    if not DEVICE_PATTERN.fullmatch(config.device):
        raise CritBenchError(f"unknown --device {config.device!r}; valid: auto, cpu, cuda, cuda:N")


def rerun_command(config: RunConfig) -> str:
    """A `benchmarks.run` command line with the config's non-default run settings (and its method
    preset, which fixes its hyperparameters): how to rerun a record that does not carry its own."""
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
    if config.params.get("preset"):
        parts.append(f"--param preset={config.params['preset']}")
    parts += [f"--param {key}={value}" for key, value in sorted(config.dataset_params.items())]
    return " ".join(parts)
