"""Loss-based methods: one registered method per base loss of `benchmarks.methods.losses`, all with the
MedMNIST v2 recipe (Adam lr 1e-3, lr x0.1 at 50% and 75% of the epochs) unless a preset or
`--param optimizer=sgd` says otherwise. The base loss' own hyperparameters become `--param`s."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import lru_cache

import torch

from benchmarks.methods.losses import create_loss, get_loss, list_losses, loss_description, loss_hyperparameters
from benchmarks.methods.base import (Method, MethodParams, OptimizerTerms, TrainContext, build_optimizer, decay_epochs,
                                     parse_params, with_preset)
from benchmarks.methods.registry import register_method
from benchmarks.methods.presets import ALM_RUN, ALM_SETTINGS, loss_preset

# The optimizer's share of every loss method's search space (its base loss adds its own).
OPTIMIZER_SPACE = {"lr": "log:1e-4..1e-2", "weight_decay": [0.0, 1e-5, 1e-4]}
OPTIMIZER_SOURCE = ("lr and weight_decay: no reference grid; lr one decade either side of the MedMNIST v2 "
                    "recipe's Adam 1e-3 (MedMNIST/experiments train_and_eval_pytorch.py), weight decay off "
                    "(the recipe) or small")


@dataclass(frozen=True)
class LossParams(OptimizerTerms, MethodParams):
    base: str = "bce"
    lr_decay: bool = True  # lr x0.1 at 50% and 75% of the epochs (off: constant, as the ALM paper)
    preset: str = ""  # a named published configuration (benchmarks/methods/presets.py); explicit values win

    def loss_hyperparameters(self) -> dict:
        return {key: getattr(self, key) for key in loss_hyperparameters(self.base)}


@lru_cache(maxsize=None)
def _with_loss_fields(params_cls: type[LossParams], base: str) -> type[LossParams]:
    """`params_cls` plus the hyperparameters of base loss `base` as fields with its defaults."""
    fields = [(key, type(default), dataclasses.field(default=default))
              for key, default in loss_hyperparameters(base).items()]
    return dataclasses.make_dataclass(f"{params_cls.__name__}_{base}", fields, bases=(params_cls,), frozen=True)


class LossMethod(Method):
    """A base loss trained with Adam (or SGD) and the MedMNIST v2 step schedule."""

    Params = LossParams
    default_base = "bce"
    uses_alm = False  # whether presets carry ALM's mu0 and delta
    presets = ALM_SETTINGS
    search_space = OPTIMIZER_SPACE
    search_space_source = OPTIMIZER_SOURCE

    @classmethod
    def build_params(cls, values: dict) -> LossParams:
        base = get_loss(str(values.get("base", cls.default_base))).name
        values = with_preset(values, lambda name: loss_preset(name, base, cls.uses_alm))
        return parse_params(_with_loss_fields(cls.Params, base), {**values, "base": base})

    @classmethod
    def fixed_head(cls, params: dict) -> str | None:
        """The head of a base loss that needs its own (LDAM: cosine_pair), else None."""
        return get_loss(params.get("base", cls.default_base)).head

    @classmethod
    def run_overrides(cls, params: dict) -> dict:
        return dict(ALM_RUN) if params.get("preset") in ALM_SETTINGS else {}

    @classmethod
    def model_options(cls, params: dict) -> dict:
        options = super().model_options(params)
        head = cls.fixed_head(params)
        return {**options, "head": head} if head else options

    def __init__(self, model: torch.nn.Module, params: LossParams, ctx: TrainContext):
        super().__init__(model, params, ctx)
        self.base_loss = create_loss(params.base, ctx.class_counts, **params.loss_hyperparameters())
        self.optimizer = build_optimizer(model.parameters(), params, ctx)
        milestones = decay_epochs(ctx.epochs) if params.lr_decay else []
        self.scheduler = torch.optim.lr_scheduler.MultiStepLR(self.optimizer, milestones, 0.1)

    @property
    def score_is_probability_logit(self) -> bool:
        """Whether the base loss trains the logit as a probability (any head: a cosine head bounds it)."""
        return self.base_loss.probability

    def score(self, outputs):
        """The base loss' score where its head has several outputs (LDAM: cos_1), else the logit."""
        return self.base_loss.score(outputs)

    def loss(self, outputs, y, index):
        return self.base_loss(outputs, y)

    def end_epoch(self, epoch, val_auc):
        self.scheduler.step()
        self.base_loss.set_epoch(epoch + 1, self.ctx.epochs)  # epoch-dependent losses (LDAM's DRW)


# The multi-class methods (benchmarks/methods/multiclass.py) that train these base losses over every label.
MULTICLASS_VARIANTS = {"bce": "ce", "focal": "focal_ce", "cb_bce": "cb_ce", "ldam": "ldam_ce"}

for _base in list_losses():
    register_method(_base)(type(f"LossMethod_{_base}", (LossMethod,), {
        "default_base": _base,
        "multiclass_variant": MULTICLASS_VARIANTS.get(_base),
        "search_space": {**OPTIMIZER_SPACE, **get_loss(_base).search_space},
        "search_space_source": f"{get_loss(_base).search_space_source}; {OPTIMIZER_SOURCE}",
        "description": loss_description(_base) + ("; MedMNIST v2 recipe (Adam 1e-3, lr x0.1 at 50%/75%)"
                                                 if _base == "bce" else ""),
    }))
