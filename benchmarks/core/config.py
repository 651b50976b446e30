"""The flat run configuration, logged with every result, and its resolution to full defaults."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from benchmarks.core.errors import CritBenchError
from benchmarks.methods import resolve_params
from datasets import get_dataset_entry
from benchmarks.engine.augment import create_augmentation
from benchmarks.methods.sampling import SAMPLERS
from models3d import STEMS, list_models

BATCH_SIZE = {2: 128, 3: 32}  # MedMNIST v2 recipe
# Fields describing where and how fast a run executes, not what it computes: not in its identity.
MACHINE_FIELDS = ("device", "data_dir", "compile")


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
    patience: int = 30
    model: str = "resnet18"
    stem: str = "medmnist"
    width: float = 1.0
    amp: bool = True
    sampler: str = "none"
    augment: str | None = None  # None: the dataset's default
    params: dict = field(default_factory=dict)
    dataset_params: dict = field(default_factory=dict)
    device: str = "auto"
    data_dir: str | None = None
    compile: bool = False  # torch.compile the model (speed only; see benchmarks/SPEED.md)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def identity(self) -> dict:
        """The fields that determine the result (machine-specific fields removed)."""
        return {k: v for k, v in self.to_dict().items() if k not in MACHINE_FIELDS}


def _check_positive(name: str, value, allow_zero: bool = False) -> None:
    if value is not None and (value < 0 or (value == 0 and not allow_zero)):
        raise CritBenchError(f"--{name.replace('_', '-')} must be {'>= 0' if allow_zero else 'positive'}, got {value}")


def resolve_config(config: RunConfig) -> RunConfig:
    """Fill every default (batch size, size, hyperparameters) and validate, so the record is complete.

    `params` may mix dataset and method keys (one `--param` flag); they are split here."""
    entry = get_dataset_entry(config.dataset)
    for name in ("epochs", "batch_size", "size", "imbalance", "max_train_samples", "width"):
        _check_positive(name, getattr(config, name))
    _check_positive("patience", config.patience, allow_zero=True)
    if config.model not in list_models():
        raise CritBenchError(f"unknown --model {config.model!r}; valid: {', '.join(list_models())}")
    if config.sampler not in SAMPLERS:
        raise CritBenchError(f"unknown --sampler {config.sampler!r}; valid: {', '.join(SAMPLERS)}")
    create_augmentation(config.augment, entry.dims)  # validates the name
    if config.stem not in STEMS:
        raise CritBenchError(f"unknown --stem {config.stem!r}; valid: {', '.join(STEMS)}")
    if config.device not in ("auto", "cpu", "cuda") and not config.device.startswith("cuda:"):
        raise CritBenchError(f"unknown --device {config.device!r}; valid: auto, cpu, cuda, cuda:N")
    dataset_params = {**config.dataset_params, **{k: v for k, v in config.params.items() if k in entry.params}}
    method_params = {k: v for k, v in config.params.items() if k not in entry.params}
    return dataclasses.replace(
        config,
        batch_size=config.batch_size or BATCH_SIZE[entry.dims],
        size=config.size or entry.sizes[0],
        params=resolve_params(config.method, method_params),
        dataset_params=dataset_params,
    )
