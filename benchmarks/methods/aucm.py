"""AUC maximization: libauc's AUCMLoss on sigmoid scores, optimized by libauc's PESG."""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from libauc.losses import AUCMLoss
from libauc.optimizers import PESG

from benchmarks.errors import CritBenchError
from benchmarks.methods.base import Method, MethodParams, TrainContext, decay_epochs
from benchmarks.methods.registry import register_method



@dataclass(frozen=True)
class AUCMParams(MethodParams):
    lr: float = 0.1
    weight_decay: float = 1e-4
    margin: float = 1.0
    epoch_decay: float = 2e-3
    momentum: float = 0.9
    version: str = "v1"

    def validate(self) -> None:
        super().validate()
        if self.version not in ("v1", "v2"):
            raise CritBenchError(f"version must be v1 or v2, got {self.version!r}")
        if not 0 < self.momentum <= 1:
            raise CritBenchError(f"momentum must be in (0, 1], got {self.momentum}")


@register_method
class AUCMMethod(Method):
    """AUCM + PESG with LibAUC's defaults (recipes.md). The class prior p of the v1 loss is the
    training set's positive rate, fixed (libauc's per-batch estimate is noisy at 1:100)."""

    name = "aucm"
    description = "AUC maximization: libauc AUCMLoss (margin 1) + PESG (lr 0.1, decays at 50%/75%)"
    Params = AUCMParams

    def __init__(self, model: torch.nn.Module, params: AUCMParams, ctx: TrainContext):
        super().__init__(model, params, ctx)
        self.aucm = AUCMLoss(margin=params.margin, imratio=ctx.train_positive_rate,
                             version=params.version, device=ctx.device)
        self.optimizer = PESG(
            model.parameters(), loss_fn=self.aucm, lr=params.lr, margin=params.margin,
            epoch_decay=params.epoch_decay, weight_decay=params.weight_decay,
            momentum=params.momentum, verbose=False, device=ctx.device,
        )
        self.decays = decay_epochs(ctx.epochs)

    def loss(self, logits, y, index):
        with warnings.catch_warnings():
            # Batches without a positive are expected at 1:100 imbalance; libauc warns on each one.
            warnings.filterwarnings("ignore", message="Input data has no positive sample")
            return self.aucm(torch.sigmoid(logits), y, auto=False).reshape(())

    def end_epoch(self, epoch, val_auc):
        # libauc decays lr and resets the epoch-level regularizer only when the caller asks.
        if epoch + 1 in self.decays:
            self.optimizer.update_regularizer(decay_factor=10)

    def state_dict(self):
        return {name: value.detach().clone() for name, value in self.aucm.state_dict().items()}

    def load_state_dict(self, state):
        self.aucm.load_state_dict(state)
