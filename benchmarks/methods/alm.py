"""Augmented-Lagrangian constrained training (Sangalli et al., NeurIPS 2021; recipes.md).

For each positive i of a batch, q_i = sum over the batch negatives j of max(0, delta - (f_i - f_j))
on the score the run ranks (`Method.score`): the raw logit, or over LDAM the unscaled class-1
cosine, as alm-dnn (`buffer_batch_pos[:, :, 1]` of its normed head's output). The base loss gets (lambda_i q_i + mu/2 q_i^2) / (|P| |N|); each training positive
keeps its multiplier lambda_i across epochs, updated lambda_i += mu q_i after every step. mu follows
the reference's schedule (`MuSchedule`). Written here because no maintained library implements
this constraint.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from benchmarks.core.errors import CritBenchError
from benchmarks.methods.loss_methods import LossMethod, LossParams
from benchmarks.methods.registry import register_method

AUC_DROP = 0.05


@dataclass(frozen=True)
class ALMTerms:
    """The constraint's hyperparameters, shared by every method that adds the ALM term (a mixin
    before the method's own params class: its fields come last, its `validate` runs first)."""

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


@dataclass(frozen=True)
class ALMParams(ALMTerms, LossParams):
    """ALM over a base loss: the base loss' params and the constraint's."""


class MuSchedule:
    """The penalty weight mu of alm-dnn's `utils/train_test_CIFAR.py` with ALM from the start
    (0-based epochs e): after e = 0 nothing; after e = 1 only remember the val AUC; after e = 2
    mu <- rho mu; after every e >= 3 mu <- rho mu only if val AUC dropped by more than 0.05 from
    the previous epoch. Updates stop for good once val AUC reaches 1.0, or when rho mu would pass
    the cap (mu is then set to the cap, whatever the AUC did, as in the reference)."""

    def __init__(self, mu0: float, rho: float, cap: float):
        self.mu, self.rho, self.cap = mu0, rho, cap
        self.previous_auc, self.frozen = None, False

    def end_epoch(self, epoch: int, val_auc: float) -> None:
        if self.frozen or epoch == 0:
            return
        if epoch == 1:
            self.previous_auc = val_auc
        elif val_auc == 1.0:
            self.frozen = True
        elif self.mu * self.rho > self.cap:
            self.mu, self.frozen = self.cap, True
        else:
            if epoch == 2 or val_auc < self.previous_auc - AUC_DROP:
                self.mu *= self.rho
            self.previous_auc = val_auc

    def state_dict(self) -> dict:
        return {"mu": self.mu, "previous_auc": self.previous_auc, "frozen": self.frozen}

    def load_state_dict(self, state: dict) -> None:
        self.mu, self.previous_auc, self.frozen = state["mu"], state["previous_auc"], state["frozen"]


def ranking_violations(logits: torch.Tensor, y: torch.Tensor, delta: float) -> torch.Tensor:
    """q_i per sample (zero for negatives): hinge violations of positive i against batch negatives.

    Masks instead of boolean indexing, so no host sync on CUDA."""
    positive = y
    negative = 1 - y
    hinge = torch.relu(delta - (logits.unsqueeze(1) - logits.unsqueeze(0)))
    return (hinge * negative.unsqueeze(0)).sum(1) * positive


def violated_pairs(logits: torch.Tensor, y: torch.Tensor, delta: float) -> torch.Tensor:
    """How many (positive, negative) pairs of the batch violate the margin (f_i - f_j < delta)."""
    violated = (logits.unsqueeze(1) - logits.unsqueeze(0)) < delta
    return (violated * y.unsqueeze(1) * (1 - y).unsqueeze(0)).sum()


def alm_penalty(q: torch.Tensor, lam: torch.Tensor, mu: float, y: torch.Tensor) -> torch.Tensor:
    pairs = y.sum() * (1 - y).sum()
    return (lam * q + 0.5 * mu * q * q).sum() / pairs.clamp(min=1)


class ALMConstraint:
    """The ALM constraint's state and bookkeeping, for every method that adds the ALM term (a mixin
    before the method's class): the multipliers, the mu schedule, the step's pending violations and
    the epoch's activity. The method's `loss` computes the violations and calls `constrained`."""

    def __init__(self, model, params: ALMTerms, ctx):
        super().__init__(model, params, ctx)
        self.multipliers = torch.zeros(ctx.n_train, device=ctx.device)
        self.schedule = MuSchedule(params.mu0, params.rho, params.cap())
        self._pending = None
        self._activity = torch.zeros(6, device=ctx.device)  # this epoch's sums, see `activity`

    @property
    def mu(self) -> float:
        return self.schedule.mu

    def constrained(self, base, score, q, y, index):
        """`base` plus the ALM term of the violations `q` of `score` by the batch `index` (`y` 1 for
        the constrained samples); the step's violations wait for `after_step`, the epoch's activity is summed."""
        self._pending = (index, q.detach())
        penalty = alm_penalty(q, self.multipliers[index], self.mu, y)
        with torch.no_grad():  # summed on the device: no host sync per step
            pairs = y.sum() * (1 - y).sum()
            self._activity += torch.stack([q.sum(), y.sum(), violated_pairs(score.detach(), y, self.params.delta),
                                           pairs, penalty.detach(), base.detach()]).float()
        return base + penalty

    def activity(self) -> dict:
        """Whether the constraint acts, over this epoch's training steps: the mean violation q_i per
        positive, the share of (positive, negative) batch pairs within the margin, and the ALM term
        over the base loss (both summed over the steps)."""
        q_sum, positives, violated, pairs, penalty, base = self._activity.tolist()
        return {"violation_mean": q_sum / max(positives, 1.0),
                "violated_pair_share": violated / max(pairs, 1.0),
                "term_to_loss": penalty / base if base else 0.0}

    def after_step(self):
        index, q = self._pending
        self.multipliers.index_add_(0, index, self.mu * q)

    def end_epoch(self, epoch, val_auc):
        super().end_epoch(epoch, val_auc)
        self.schedule.end_epoch(epoch, val_auc)
        self._activity.zero_()

    def divergence_hint(self):
        """ALM's penalty, not the step size, is what usually diverges (CIFAR-10 1:100 at mu0 = 1e-2:
        the term was ~9,500x the loss the epoch before NaN, results/alm_dose)."""
        return (f"the ALM term grows with mu (now {self.mu:g}) and the multipliers: try a smaller --param mu0 (this run: "
                f"{self.params.mu0:g}; the history's term_to_loss shows how much the term weighed), or a lower --lr")

    def state_summary(self):
        """mu this epoch, whether its updates have stopped, and the multipliers of the training positives."""
        positives = max(1, self.ctx.class_counts.n_pos)
        return {**super().state_summary(), "mu": self.mu, "mu_frozen": self.schedule.frozen,
                "multiplier_mean": float(self.multipliers.sum()) / positives,
                "multiplier_max": float(self.multipliers.max()), **self.activity()}

    def state_dict(self):
        return {**super().state_dict(), "multipliers": self.multipliers.clone(), "schedule": self.schedule.state_dict()}

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.multipliers.copy_(state["multipliers"])
        self.schedule.load_state_dict(state["schedule"])


@register_method("alm")
class ALMMethod(ALMConstraint, LossMethod):
    description = ("augmented-Lagrangian ranking constraint (Sangalli et al. 2021) on any base loss: "
                   "alm+<base> or --param base=<base> (default bce)")
    Params = ALMParams
    uses_alm = True
    wraps_base = True
    multiclass_variant = "alm_ce"
    search_space = {**LossMethod.search_space, "mu0": [1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9],
                    "delta": [0.0, 0.1, 0.25, 0.5, 1.0]}
    search_space_source = ("the ALM paper's grid, 8 mu0 x 5 delta: salusanga/alm-dnn configs/ALM/ALM_12_beg.json "
                           "to ALM_19_beg.json (mu 1e-2 to 1e-9, rho 2) and the deltas of its readme.md tables "
                           f"(0, 0.1, 0.25, 0.5, 1.0); {LossMethod.search_space_source}")

    def loss(self, outputs, y, index):
        score = self.score(outputs)
        q = ranking_violations(score, y, self.params.delta)
        return self.constrained(self.base_loss(outputs, y), score, q, y, index)
