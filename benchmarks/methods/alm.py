"""Augmented-Lagrangian constrained training (Sangalli et al., NeurIPS 2021; recipes.md).

For each positive i of a batch, q_i = sum over the batch negatives j of max(0, delta - (f_i - f_j))
on raw logits. The base loss gets (lambda_i q_i + mu/2 q_i^2) / (|P| |N|); each training positive
keeps its multiplier lambda_i across epochs, updated lambda_i += mu q_i after every step. mu starts
at mu0, is multiplied by rho after the first epoch, afterwards only when val AUC drops by more than
0.05, and is capped at mu0 rho^5 (mu0 < 1e-3) or mu0 rho^3. Written here because no maintained
library implements this constraint.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from benchmarks.core.errors import CritBenchError
from benchmarks.methods.loss_methods import LossMethod, LossParams
from benchmarks.methods.registry import register_method

AUC_DROP = 0.05


@dataclass(frozen=True)
class ALMParams(LossParams):
    delta: float = 0.25
    mu0: float = 1e-4
    rho: float = 2.0
    mu_max: float = 0.0  # 0 = the paper's cap

    def validate(self) -> None:
        super().validate()
        if self.delta < 0 or not self.mu0 > 0 or not self.rho >= 1 or self.mu_max < 0:
            raise CritBenchError(
                f"ALM needs delta >= 0, mu0 > 0, rho >= 1, mu_max >= 0; got delta={self.delta}, "
                f"mu0={self.mu0}, rho={self.rho}, mu_max={self.mu_max}"
            )

    def cap(self) -> float:
        if self.mu_max:
            return self.mu_max
        return self.mu0 * self.rho ** (5 if self.mu0 < 1e-3 else 3)


def ranking_violations(logits: torch.Tensor, y: torch.Tensor, delta: float) -> torch.Tensor:
    """q_i per sample (zero for negatives): hinge violations of positive i against batch negatives.

    Masks instead of boolean indexing, so no host sync on CUDA."""
    positive = y
    negative = 1 - y
    hinge = torch.relu(delta - (logits.unsqueeze(1) - logits.unsqueeze(0)))
    return (hinge * negative.unsqueeze(0)).sum(1) * positive


def alm_penalty(q: torch.Tensor, lam: torch.Tensor, mu: float, y: torch.Tensor) -> torch.Tensor:
    pairs = y.sum() * (1 - y).sum()
    return (lam * q + 0.5 * mu * q * q).sum() / pairs.clamp(min=1)


@register_method("alm")
class ALMMethod(LossMethod):
    description = ("augmented-Lagrangian ranking constraint (Sangalli et al. 2021) on any base loss: "
                   "alm+<base> or --param base=<base> (default bce)")
    Params = ALMParams
    uses_alm = True
    wraps_base = True

    def __init__(self, model, params: ALMParams, ctx):
        super().__init__(model, params, ctx)
        self.multipliers = torch.zeros(ctx.n_train, device=ctx.device)
        self.mu = params.mu0
        self.previous_auc = None
        self._pending = None

    def loss(self, logits, y, index):
        q = ranking_violations(logits, y, self.params.delta)
        self._pending = (index, q.detach())
        return self.base_loss(logits, y) + alm_penalty(q, self.multipliers[index], self.mu, y)

    def after_step(self):
        index, q = self._pending
        self.multipliers.index_add_(0, index, self.mu * q)

    def end_epoch(self, epoch, val_auc):
        super().end_epoch(epoch, val_auc)
        dropped = self.previous_auc is not None and val_auc < self.previous_auc - AUC_DROP
        if epoch == 0 or dropped:
            self.mu = min(self.mu * self.params.rho, self.params.cap())
        self.previous_auc = val_auc

    def state_dict(self):
        return {"multipliers": self.multipliers.clone(), "mu": self.mu, "previous_auc": self.previous_auc}

    def load_state_dict(self, state):
        self.multipliers.copy_(state["multipliers"])
        self.mu, self.previous_auc = state["mu"], state["previous_auc"]
