"""AUC maximization: libauc's AUCMLoss on sigmoid scores, optimized by libauc's PESG.

`aucm` trains from scratch; `aucm_ce` trains in two stages, BCE pre-training and then AUCM + PESG,
as LibAUC's own MedMNIST recipes do (recipes.md); the trainer runs the stages.
Batches hold a fixed share of positives (LibAUC's DualSampler, `sampling_rate`, default 0.2).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from libauc.losses import AUCMLoss
from libauc.optimizers import PESG

from benchmarks.core.errors import CritBenchError
from benchmarks.methods.base import Method, MethodParams, Stage, TrainContext, adam, decay_epochs, parse_params, with_preset
from benchmarks.methods.registry import register_method
from benchmarks.methods.presets import AUCM_PRESETS, aucm_preset
from benchmarks.methods.sampling import Sampling, dual_sampler_refusal

# Batches without a positive are expected at 1:100 imbalance; libauc warns on every one of them.
warnings.filterwarnings("ignore", message="Input data has no positive sample", module="libauc")


# `aucm`'s defaults: LibAUC's from-scratch AUCM recipe, examples/02_Optimizing_AUROC_with_ResNet20_
# on_Imbalanced_CIFAR10.ipynb (v1.2+ API; "HyperParameters" and "Creating models & AUC Optimizer"
# cells): BATCH_SIZE = 128, total_epochs = 100, decay_epochs = [50, 75] (the run's batch size and
# decay_epochs() of base.py), and the values below. AUCMLoss() there keeps its defaults.
@dataclass(frozen=True)
class AUCMParams(MethodParams):
    lr: float = 0.1  # lr = 0.1
    weight_decay: float = 1e-4  # weight_decay = 0.0001
    margin: float = 1.0  # margin = 1.0
    epoch_decay: float = 3e-3  # epoch_decay = 0.003 # refers gamma in the paper
    momentum: float = 0.9  # PESG(..., momentum=0.9, ...)
    version: str = "v1"  # AUCMLoss() default (libauc 2.0.1 losses/auc.py: version='v1')
    sampling_rate: float = 0.2  # sampling_rate = 0.2 (DualSampler); 0 = the run's --sampler
    preset: str = ""  # DAM-on-MedMNIST PESG settings per dataset (benchmarks/methods/presets.py)

    def validate(self) -> None:
        super().validate()
        if self.version not in ("v1", "v2"):
            raise CritBenchError(f"version must be v1 or v2, got {self.version!r}")
        if not 0 < self.momentum <= 1:
            raise CritBenchError(f"momentum must be in (0, 1], got {self.momentum}")
        if not 0 <= self.sampling_rate < 1:
            raise CritBenchError(f"sampling_rate must be in [0, 1) (0: use --sampler), got {self.sampling_rate}")


@register_method("aucm")
class AUCMMethod(Method):
    """AUCM + PESG from scratch with LibAUC's CIFAR-10 example recipe (`AUCMParams`). The class prior p of the v1 loss is the
    positive rate of the batches the loss sees: n_pos / batch of the DualSampler (the sampling
    rate as realized), or the run's sampler's expected rate (fixed: a per-batch estimate is noisy
    at 1:100)."""

    description = "AUC maximization: libauc AUCMLoss (margin 1) + PESG (lr 0.1, decays at 50%/75%), 20% positives per batch"
    Params = AUCMParams
    presets = tuple(AUCM_PRESETS)
    multiclass_variant = "maucm"
    # LibAUC's own search space of AUCM + PESG (libauc 2.0.1 trainer/config/spaces.py, AUCMLossSpace):
    # "lr": (0.0001, 0.1) log, "epoch_decay": (0.0, 0.01), "weight_decay": (0.0, 0.0002),
    # "momentum": (0.8, 0.99), "margin": [0.6, 0.8, 1.0].
    search_space = {"lr": "log:1e-4..1e-1", "epoch_decay": "0.0..0.01", "weight_decay": "0.0..2e-4",
                    "momentum": "0.8..0.99", "margin": [0.6, 0.8, 1.0]}
    search_space_source = "Optimization-AI/LibAUC libauc/trainer/config/spaces.py AUCMLossSpace (LibAUC's own)"

    @classmethod
    def build_params(cls, values: dict) -> AUCMParams:
        return parse_params(cls.Params, with_preset(values, aucm_preset))

    def __init__(self, model: torch.nn.Module, params: AUCMParams, ctx: TrainContext):
        super().__init__(model, params, ctx)
        self.aucm = AUCMLoss(margin=params.margin, version=params.version, device=ctx.device)
        self.regularizer_reset = False
        self.start_aucm(ctx.epochs)

    def start_aucm(self, epochs: int) -> None:
        """Build PESG for `epochs` epochs; its lr decays at 50% and 75% of them."""
        params = self.params
        self.optimizer = PESG(
            self.model.parameters(), loss_fn=self.aucm, lr=params.lr, margin=params.margin,
            epoch_decay=params.epoch_decay, weight_decay=params.weight_decay,
            momentum=params.momentum, verbose=False, device=self.ctx.device,
        )
        self.decays = decay_epochs(epochs)

    def sampling(self, requested: str) -> Sampling:
        """The epoch's batches; the loss' prior p becomes their positive rate."""
        sampling = self.dual_sampling(requested, self.params.sampling_rate)
        self.aucm.p = sampling.batch_positive_rate(self.ctx.train_positive_rate, self.ctx.batch_size)
        return sampling

    @classmethod
    def skip(cls, config):
        """Also refuses a --sampler that a stage drawing DualSampler batches would not apply."""
        return super().skip(config) or dual_sampler_refusal(cls.name, cls.build_params(config.params), config.sampler,
                                                            zero_allowed=True)

    def dual_sampling(self, requested: str, rate: float) -> Sampling:
        """DualSampler batches with `rate` positives, or the run's --sampler when `rate` is 0."""
        refusal = dual_sampler_refusal(self.name, self.params, requested, zero_allowed=True)
        if refusal:  # `skip` refuses it before training; this guards a Trainer built on an unresolved config
            raise CritBenchError(refusal)
        return Sampling("dual", rate) if rate else Sampling(requested)

    def loss(self, logits, y, index):
        return self.aucm(torch.sigmoid(logits), y, auto=False).reshape(())

    def end_epoch(self, epoch, val_auc):
        # libauc decays lr and resets the epoch-level regularizer only when the caller asks.
        self.regularizer_reset = epoch + 1 in self.decays
        if self.regularizer_reset:
            self.optimizer.update_regularizer(decay_factor=10)

    def state_summary(self):
        """The prior the loss used and whether the epoch began from a reset reference point
        (`update_regularizer`, with the lr decay; the epoch's lr is in every history entry)."""
        return {"imratio": float(self.aucm.p), "regularizer_reset": self.regularizer_reset}

    def state_dict(self):
        return {name: value.detach().clone() for name, value in self.aucm.state_dict().items()}

    def load_state_dict(self, state):
        self.aucm.load_state_dict(state)


# `aucm_ce`'s defaults: LibAUC's MedMNIST two-stage recipe, examples/trainer_recipes/image_trainer/
# config_ce_PneumoniaMNIST.yaml (stage 1, 60 epochs) then config_auc_PneumoniaMNIST.yaml (stage 2,
# 60 epochs from `pretrained_path: .../epoch_60.pt`, the last stage-1 weights; the image trainer
# re-initializes the head: `head.reset_parameters()`). Both stages: `decay_epochs: [0.5, 0.75]`.
@dataclass(frozen=True)
class AUCMCEParams(AUCMParams):
    # Stage 2, AUCM + PESG (config_auc_PneumoniaMNIST.yaml; lr, margin, momentum, sampling_rate as aucm's).
    weight_decay: float = 1e-5  # weight_decay: 1.0e-5
    epoch_decay: float = 3e-3  # epoch_decay: 3.0e-3
    # Stage 1, BCE on the sigmoid (config_ce_PneumoniaMNIST.yaml).
    pretrain_fraction: float = 0.5  # share of --epochs spent pre-training (the recipe: 60 of 120)
    pretrain_lr: float = 1e-3  # optimizer: Adam, lr: 1.0e-3
    pretrain_weight_decay: float = 1e-4  # weight_decay: 1.0e-4
    pretrain_sampling_rate: float = 0.5  # sampling_rate: 0.5

    def validate(self) -> None:
        super().validate()
        if not 0 < self.pretrain_fraction < 1 or not self.pretrain_lr > 0 or self.pretrain_weight_decay < 0:
            raise CritBenchError("aucm_ce needs 0 < pretrain_fraction < 1, pretrain_lr > 0, pretrain_weight_decay >= 0")
        if not 0 <= self.pretrain_sampling_rate < 1:
            raise CritBenchError(f"pretrain_sampling_rate must be in [0, 1), got {self.pretrain_sampling_rate}")


@register_method("aucm_ce")
class AUCMCEMethod(AUCMMethod):
    """Two stages: BCE pre-training (`bce`, Adam, lr / 10 at 50% and 75% of the stage), then AUCM +
    PESG (`aucm`, lr / 10 and regularizer reset at 50% and 75% of the stage) from its last weights
    with a re-initialized head. Only `aucm` epochs may supply the selected checkpoint."""

    description = "LibAUC's MedMNIST recipe: BCE pre-training (Adam), then AUCM + PESG fine-tuning"
    Params = AUCMCEParams
    multiclass_variant = None  # maucm trains from scratch, without the CE stage

    def __init__(self, model: torch.nn.Module, params: AUCMCEParams, ctx: TrainContext):
        Method.__init__(self, model, params, ctx)
        self.aucm = AUCMLoss(margin=params.margin, version=params.version, device=ctx.device)
        self.stage = self.stages()[0].name
        self.regularizer_reset = False
        self.decays = []

    @classmethod
    def stage_plan(cls, params):
        share = params.pretrain_fraction
        return (Stage("bce", share, selectable=False), Stage("aucm", 1 - share, reset_head=True))

    def begin_stage(self, stage, epochs):
        self.stage = stage.name
        if stage.name == "aucm":
            return self.start_aucm(epochs)
        self.optimizer = adam(self.model.parameters(), self.ctx, lr=self.params.pretrain_lr,
                              weight_decay=self.params.pretrain_weight_decay)
        self.decays = decay_epochs(epochs)

    def sampling(self, requested: str) -> Sampling:
        if self.stage == "bce":
            return self.dual_sampling(requested, self.params.pretrain_sampling_rate)
        return super().sampling(requested)

    def loss(self, logits, y, index):
        if self.stage == "bce":
            return F.binary_cross_entropy_with_logits(logits, y)
        return super().loss(logits, y, index)

    def end_epoch(self, epoch, val_auc):
        if self.stage == "aucm":
            return super().end_epoch(epoch, val_auc)
        if epoch + 1 in self.decays:  # libauc's Adam.update_lr(decay_factor=10)
            for group in self.optimizer.param_groups:
                group["lr"] /= 10

    def state_summary(self):
        return super().state_summary() if self.stage == "aucm" else {}
