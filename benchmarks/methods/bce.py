"""Loss-based methods with the MedMNIST v2 recipe: Adam, lr x0.1 at 50% and 75% of the epochs."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from benchmarks.losses import create_loss, list_losses
from benchmarks.errors import CritBenchError
from benchmarks.methods.base import Method, MethodParams, TrainContext, decay_epochs
from benchmarks.methods.registry import register_method


@dataclass(frozen=True)
class LossParams(MethodParams):
    base: str = "bce"

    def validate(self) -> None:
        super().validate()
        if self.base not in list_losses():
            raise CritBenchError(f"unknown base loss {self.base!r}; valid: {', '.join(list_losses())}")


@register_method
class LossMethod(Method):
    name = "bce"
    description = "binary cross-entropy, MedMNIST v2 recipe (Adam 1e-3, lr x0.1 at 50%/75%)"
    Params = LossParams

    def __init__(self, model: torch.nn.Module, params: LossParams, ctx: TrainContext):
        super().__init__(model, params, ctx)
        self.base_loss = create_loss(params.base)
        self.optimizer = torch.optim.Adam(model.parameters(), lr=params.lr, weight_decay=params.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.MultiStepLR(self.optimizer, decay_epochs(ctx.epochs), 0.1)

    def loss(self, logits, y, index):
        return self.base_loss(logits, y)

    def end_epoch(self, epoch, val_auc):
        self.scheduler.step()
