"""What a training method is: its hyperparameters, loss, optimizer, schedule and per-run state.

The training loop calls only the hooks below, so it never branches on the method's name.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from benchmarks.core.config import RunConfig
from benchmarks.core.errors import CritBenchError, UnknownParameter
from benchmarks.methods.losses import ClassCounts
from benchmarks.methods.sampling import Sampling


@dataclass(frozen=True)
class TrainContext:
    """What a method may know about the run when it is built (plain values and tensors)."""

    dims: int
    epochs: int
    device: torch.device
    n_train: int
    train_positive_rate: float
    batch_size: int

    @property
    def class_counts(self) -> ClassCounts:
        """Training-set class sizes, as weighted losses need them."""
        n_pos = round(self.n_train * self.train_positive_rate)
        return ClassCounts(n_pos=n_pos, n_neg=self.n_train - n_pos)


@dataclass(frozen=True)
class Stage:
    """One phase of a method's training. The trainer runs a method's stages one after another,
    each from the last weights of the one before; early-stopping patience counts within a stage."""

    name: str = "train"
    share: float = 1.0  # share of the run's epochs (the last stage takes the remainder)
    reset_head: bool = False  # re-initialize the classifier head when the stage starts
    selectable: bool = True  # whether the run's selected checkpoint may come from this stage


def adam(parameters, ctx: TrainContext, **options) -> torch.optim.Adam:
    """Adam, with the fused single-kernel step on CUDA (the foreach step elsewhere)."""
    return torch.optim.Adam(parameters, fused=ctx.device.type == "cuda", **options)


OPTIMIZERS = ("adam", "sgd")


@dataclass(frozen=True)
class OptimizerTerms:
    """The optimizer choice of methods that train with Adam or SGD (a mixin before the method's
    own params class, as `alm.ALMTerms`): `build_optimizer` builds it."""

    optimizer: str = "adam"
    momentum: float = 0.9  # SGD only

    def validate(self) -> None:
        super().validate()
        if self.optimizer not in OPTIMIZERS:
            raise CritBenchError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        if not 0 <= self.momentum < 1:
            raise CritBenchError(f"momentum must be in [0, 1), got {self.momentum}")


def build_optimizer(parameters, params, ctx: "TrainContext") -> torch.optim.Optimizer:
    """SGD (with `params.momentum`) or Adam (`adam`) on `parameters`, at `params.lr` and `params.weight_decay`."""
    if params.optimizer == "sgd":
        return torch.optim.SGD(parameters, lr=params.lr, momentum=params.momentum, weight_decay=params.weight_decay)
    return adam(parameters, ctx, lr=params.lr, weight_decay=params.weight_decay)


def decay_epochs(epochs: int) -> list[int]:
    """Epochs at whose end the MedMNIST v2 recipe divides the learning rate by 10 (50% and 75%)."""
    return sorted({max(1, int(epochs * 0.5)), max(1, int(epochs * 0.75))})


@dataclass(frozen=True)
class MethodParams:
    """Hyperparameters shared by every method; subclasses add their own fields."""

    lr: float = 1e-3
    weight_decay: float = 0.0
    head: str = "linear"  # classifier-head regularizers: L2-normalized (cosine) head ...
    head_scale: float = 30.0  # ... its logit scale
    max_norm: float = 0.0  # ... and MaxNorm: head weight rows renormed to <= max_norm after each step (0: off)

    def validate(self) -> None:
        """Raise CritBenchError for values outside the valid range."""
        if not self.lr > 0:
            raise CritBenchError(f"lr must be positive, got {self.lr}")
        if self.weight_decay < 0:
            raise CritBenchError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if self.head not in ("linear", "cosine"):
            raise CritBenchError(f"head must be linear or cosine (L2-normalized), got {self.head!r}")
        if not self.head_scale > 0 or self.max_norm < 0:
            raise CritBenchError(f"need head_scale > 0 and max_norm >= 0, got {self.head_scale}, {self.max_norm}")


def _cast(field: dataclasses.Field, value):
    """`value` (a command-line string or a TOML value) as the field's type; ValueError for a value
    that is not one: a non-finite float, a fractional int, a number for a name."""
    kind = type(field.default)
    if kind is bool:
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("1", "true", "yes", "on"):
            return True
        if str(value).lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError("expected true or false")
    if kind is str:
        if not isinstance(value, str):
            raise ValueError("expected a name")
        return value
    if isinstance(value, bool):
        raise ValueError("expected a number")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError("expected a finite number")
    if kind is int:
        if number != int(number) or (isinstance(value, str) and not value.strip().lstrip("+-").isdigit()):
            raise ValueError("expected an integer")
        return int(value) if isinstance(value, str) else int(number)
    return number


def parse_params(cls: type[MethodParams], values: dict) -> MethodParams:
    """Build `cls` from `{key: value}` (strings are converted to each field's type)."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    converted = {}
    for key, value in values.items():
        if key not in fields:
            raise UnknownParameter(f"unknown parameter {key!r}; valid: {', '.join(sorted(fields))}")
        try:
            converted[key] = _cast(fields[key], value)
        except (ValueError, OverflowError) as error:
            raise CritBenchError(f"parameter {key}={value!r} is not a valid {type(fields[key].default).__name__} "
                                 f"({error}); see python -m benchmarks.run --list") from None
    params = cls(**converted)
    params.validate()
    return params


def with_preset(values: dict, expand: Callable[[str], dict]) -> dict:
    """`values` over the values of the preset `values["preset"]` names (`expand(name)`, which refuses
    an unknown name), where one is named: explicit values win."""
    preset = str(values.get("preset", ""))
    return {**expand(preset), **values} if preset else values


def split_epochs(method: str, stages: tuple[Stage, ...], epochs: int) -> list[int]:
    """Epochs of each stage: `share` x epochs rounded down (at least 1), the last the rest;
    CritBenchError when `epochs` leaves a stage none."""
    counts = [max(1, math.floor(stage.share * epochs)) for stage in stages[:-1]]
    if epochs - sum(counts) < 1:
        raise CritBenchError(f"--method {method} trains in {len(stages)} stages "
                             f"({', '.join(s.name for s in stages)}): needs --epochs >= {sum(counts) + 1}, "
                             f"got {epochs}")
    return counts + [epochs - sum(counts)]


class Method:
    """Base class. Subclasses set `description` and `Params` (`@register_method` sets `name`) and
    build `self.optimizer`: in `__init__`, or per stage in `begin_stage`."""

    name = ""
    description = ""
    Params: type[MethodParams] = MethodParams
    needs_double_backward = False  # differentiates its loss twice: torch.compile cannot run it (`skip`)
    tasks: tuple[str, ...] = ("binary",)  # the --task framings it trains (`skip` refuses the others)
    # Whether `score` is a logit trained as the log-odds of the positive class (calibration is reported)
    score_is_probability_logit = False
    default_base: str | None = None  # the base loss it trains (benchmarks.methods.losses), if it has one
    presets: tuple[str, ...] = ()  # the named recipes its --param preset accepts (benchmarks/methods/presets.py)
    # The method that trains the same idea over every label: `--method NAME --task multiclass` runs it
    # (alm -> alm_ce), under its own name and run id (`benchmarks.engine.resolve`).
    multiclass_variant: str | None = None
    wraps_base = False  # whether it wraps any base loss: `NAME+BASE` names it over base loss BASE
    # What an equal-budget search varies (a suite's `tune = { mode = "equal" }`), in the `--space`
    # syntax of benchmarks.sweep.tuning: a list is a categorical grid, "[int:][log:]LOW..HIGH" a range;
    # and where those values come from (the reference's own grid, or why a modest range stands in).
    search_space: dict[str, list | str] = {}
    search_space_source = ""

    def __init__(self, model: torch.nn.Module, params: MethodParams, ctx: TrainContext):
        self.model, self.params, self.ctx = model, params, ctx

    @classmethod
    def skip(cls, config: RunConfig) -> str | None:
        """Why this method cannot run `config` (what is wrong and what to do), or None when it can;
        asked by `resolve_config` before any data is loaded, as benchopt asks its solvers."""
        if config.task not in cls.tasks:
            return (f"--method {cls.name} trains --task {' or '.join(cls.tasks)}, not --task {config.task}: use --task "
                    f"{cls.tasks[0]}, or choose one of the methods for --task {config.task}: "
                    f"{', '.join(methods_for_task(config.task))}")
        if config.compile and cls.needs_double_backward:
            return (f"--method {cls.name} differentiates its loss twice, which torch.compile does not support; "
                    f"drop --compile")
        try:
            split_epochs(cls.name, cls.stage_plan(cls.build_params(config.params)), config.epochs)
        except CritBenchError as error:
            return str(error)
        fixed, defaults = cls.fixed_head(config.params), MethodParams()
        ignored = [f"{key}={config.params[key]}" for key in ("head", "head_scale")
                   if config.params.get(key, getattr(defaults, key)) != getattr(defaults, key)]
        if fixed and ignored:
            return (f"--method {cls.name} trains its own head ({fixed}), which --param {' '.join(ignored)} would not "
                    f"change (only the run id); drop it")
        return None

    @classmethod
    def fixed_head(cls, params: dict) -> str | None:
        """The head this method always trains with the resolved `params` (its --param head and
        head_scale do not apply, so `skip` refuses them), or None when it trains the one they choose."""
        return None

    @classmethod
    def build_params(cls, values: dict) -> MethodParams:
        """Validated hyperparameters from `{key: value}` (subclasses may expand presets here)."""
        return parse_params(cls.Params, values)

    @classmethod
    def run_overrides(cls, params: dict) -> dict:
        """RunConfig fields (e.g. model, batch_size) a preset in the resolved hyperparameters
        prescribes; the run applies them where the user set no value of their own."""
        return {}

    @classmethod
    def model_options(cls, params: dict) -> dict:
        """Keyword arguments for `models3d.create_model` from the resolved hyperparameters."""
        return {"head": params.get("head", "linear"), "head_scale": params.get("head_scale", 30.0),
                "max_norm": params.get("max_norm", 0.0)}

    @classmethod
    def stage_plan(cls, params: MethodParams) -> tuple[Stage, ...]:
        """The training stages with hyperparameters `params`, in order; one stage spanning every
        epoch unless overridden. Known before the run is built, so `skip` checks --epochs."""
        return (Stage(),)

    def stages(self) -> tuple[Stage, ...]:
        """This run's training stages (`stage_plan` of its hyperparameters)."""
        return self.stage_plan(self.params)

    def stage_epochs(self) -> list[int]:
        """Epochs of each stage (`split_epochs`)."""
        return split_epochs(self.name, self.stages(), self.ctx.epochs)

    def begin_stage(self, stage: Stage, epochs: int) -> None:
        """Called by the trainer before the first epoch of each stage, which lasts `epochs`."""

    def sampling(self, requested: str) -> Sampling:
        """How to draw this epoch's batches, given the run's `--sampler` choice."""
        return Sampling(requested)

    def report(self, scores: dict) -> dict:
        """Extra record fields from `{split: (y_true, logits)}` of the selected checkpoint."""
        return {}

    def score(self, outputs: torch.Tensor) -> torch.Tensor:
        """The `(B,)` score that validation and test AUC rank, from the model's batch `outputs`
        (the single logit itself unless the head has more outputs)."""
        return outputs

    def loss(self, outputs: torch.Tensor, y: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """Scalar training loss of a batch of model `outputs` (`(B,)` for a single logit); `index`
        are the samples' positions in train."""
        raise NotImplementedError

    def after_step(self) -> None:
        """Called after each optimizer step (multiplier updates)."""

    def end_epoch(self, epoch: int, val_auc: float) -> None:
        """Called after each epoch's validation (learning-rate and penalty schedules); `epoch`
        counts from 0 within the current stage."""

    def state_summary(self) -> dict:
        """Plain floats, bools and strings describing the state the epoch trained with; the
        trainer adds them to the epoch's `history` entry (taken before `end_epoch`)."""
        return {}

    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def divergence_hint(self) -> str:
        """What to try when the training loss becomes NaN or infinite (the DivergedError's advice)."""
        return "try a lower --lr"

    def state_dict(self) -> dict:
        """Per-run state beyond the model's weights that belongs in a checkpoint."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore what `state_dict` returned."""


def methods_for_task(task: str) -> list[str]:
    """The registered methods (the subclasses `register_method` named; NAME+BASE aside) that train `task`."""
    found, todo = set(), [Method]
    while todo:
        cls = todo.pop()
        todo += cls.__subclasses__()
        if cls.name and "+" not in cls.name and task in cls.tasks:
            found.add(cls.name)
    return sorted(found)
