"""Rate-constrained training (the TFCO idea in PyTorch, with cooper-optim's Lagrangian machinery).

minimize an objective (BCE, or a smooth FPR surrogate: mean sigmoid(f) over the negatives)
subject to TPR >= min_tpr at the decision threshold f = 0, on the training batches. Proxy
constraints: the differentiable violation min_tpr - mean sigmoid(f) over the batch positives
drives the model, the true violation min_tpr - mean 1[f > 0] drives the multiplier (projected
gradient ascent, cooper's `strict_violation`). Batches without a positive contribute nothing.
"""
from __future__ import annotations

from dataclasses import dataclass

import cooper
import numpy as np
import torch
import torch.nn.functional as F

from benchmarks.core.errors import CritBenchError
from benchmarks.methods.base import Method, MethodParams, TrainContext, adam, decay_epochs
from benchmarks.methods.registry import register_method

THRESHOLD = 0.0  # the logit threshold the constraint is stated at
OBJECTIVES = ("bce", "fpr")


@dataclass(frozen=True)
class RateParams(MethodParams):
    min_tpr: float = 0.95
    objective: str = "bce"
    dual_lr: float = 0.05

    def validate(self) -> None:
        super().validate()
        if not 0 < self.min_tpr <= 1:
            raise CritBenchError(f"min_tpr must be in (0, 1], got {self.min_tpr}")
        if self.objective not in OBJECTIVES:
            raise CritBenchError(f"objective must be one of {', '.join(OBJECTIVES)}, got {self.objective!r}")
        if not self.dual_lr > 0:
            raise CritBenchError(f"dual_lr must be positive, got {self.dual_lr}")


class MinTPR(cooper.ConstrainedMinimizationProblem):
    """min objective(f) s.t. min_tpr - TPR(f) <= 0, with a sigmoid proxy for the TPR."""

    def __init__(self, min_tpr: float, objective: str, device: torch.device):
        super().__init__()
        self.min_tpr, self.objective = min_tpr, objective
        multiplier = cooper.multipliers.DenseMultiplier(num_constraints=1, device=device)
        self.tpr = cooper.Constraint(constraint_type=cooper.ConstraintType.INEQUALITY,
                                     formulation_type=cooper.formulations.Lagrangian, multiplier=multiplier)

    def compute_cmp_state(self, logits: torch.Tensor, y: torch.Tensor) -> cooper.CMPState:
        n_pos = y.sum()
        has_pos = (n_pos > 0).float()
        if self.objective == "bce":
            loss = F.binary_cross_entropy_with_logits(logits, y)
        else:
            loss = (torch.sigmoid(logits) * (1 - y)).sum() / (len(y) - n_pos).clamp(min=1)
        proxy_tpr = (torch.sigmoid(logits) * y).sum() / n_pos.clamp(min=1)
        true_tpr = ((logits > THRESHOLD).float() * y).sum() / n_pos.clamp(min=1)
        state = cooper.ConstraintState(violation=((self.min_tpr - proxy_tpr) * has_pos).reshape(1),
                                       strict_violation=((self.min_tpr - true_tpr) * has_pos).reshape(1))
        return cooper.CMPState(loss=loss, observed_constraints={self.tpr: state})


@register_method("rate_constrained")
class RateConstrainedMethod(Method):
    description = "minimize BCE (or a smooth FPR) s.t. TPR >= min_tpr (0.95) with proxy constraints (cooper-optim)"
    Params = RateParams
    search_space = {"lr": "log:1e-4..1e-2", "weight_decay": [0.0, 1e-5, 1e-4], "dual_lr": "log:5e-3..5e-1"}
    search_space_source = ("no reference grid (cooper-optim's examples set the dual step per problem): lr and "
                           "weight decay as the loss methods', dual_lr one decade either side of 0.05; min_tpr "
                           "is the task's target, not tuned")

    @property
    def score_is_probability_logit(self) -> bool:
        """With the BCE objective the logit is a probability's (the constraint moves it); not with the FPR surrogate."""
        return self.params.objective == "bce"

    def __init__(self, model: torch.nn.Module, params: RateParams, ctx: TrainContext):
        super().__init__(model, params, ctx)
        self.cmp = MinTPR(params.min_tpr, params.objective, ctx.device)
        self.optimizer = adam(model.parameters(), ctx, lr=params.lr, weight_decay=params.weight_decay)
        dual = torch.optim.SGD(self.cmp.dual_parameters(), lr=params.dual_lr, maximize=True)
        # The trainer steps the primal optimizer; cooper's dual step runs in after_step.
        self.cooper = cooper.optim.SimultaneousOptimizer(self.cmp, primal_optimizers=self.optimizer,
                                                         dual_optimizers=dual)
        self.dual = dual
        self.scheduler = torch.optim.lr_scheduler.MultiStepLR(self.optimizer, decay_epochs(ctx.epochs), 0.1)
        self._activity = torch.zeros(5, device=ctx.device)  # this epoch's sums, see `activity`

    def loss(self, logits, y, index):
        state = self.cmp.compute_cmp_state(logits, y)
        primal = state.compute_primal_lagrangian().lagrangian
        dual = state.compute_dual_lagrangian().lagrangian  # gradient w.r.t. the multiplier: the true violation
        with torch.no_grad():  # summed on the device: no host sync per step
            observed = state.observed_constraints[self.cmp.tpr]
            has_pos = (y.sum() > 0).float()
            self._activity += torch.stack([observed.strict_violation.sum(), observed.violation.sum(), has_pos,
                                           (primal - state.loss).detach(), state.loss.detach()]).float()
        return primal + dual

    def activity(self) -> dict:
        """Whether the constraint acts, over this epoch's batches with a positive: the mean true
        violation min_tpr - TPR at the threshold, its sigmoid proxy, and the Lagrangian term
        (multiplier x proxy violation) over the objective (both summed over the steps)."""
        strict, proxy, batches, term, objective = self._activity.tolist()
        return {"violation_mean": strict / max(batches, 1.0), "proxy_violation_mean": proxy / max(batches, 1.0),
                "term_to_loss": term / objective if objective else 0.0}

    def state_summary(self):
        """The multiplier at the epoch's end and the epoch's `activity`."""
        return {"multiplier": self.multiplier(), **self.activity()}

    def after_step(self):
        self.cooper.dual_step()
        self.dual.zero_grad(set_to_none=True)

    def end_epoch(self, epoch, val_auc):
        self.scheduler.step()
        self._activity.zero_()

    def multiplier(self) -> float:
        return float(self.cmp.tpr.multiplier.weight.detach()[0])

    def state_dict(self):
        return {"cmp": self.cmp.state_dict()}

    def load_state_dict(self, state):
        self.cmp.load_state_dict(state["cmp"])

    def report(self, scores):
        """Whether TPR >= min_tpr holds at the threshold, on validation (and test, for reference)."""
        out = {"min_tpr": self.params.min_tpr, "threshold": THRESHOLD, "multiplier": self.multiplier()}
        for split, (y_true, logits) in scores.items():
            y_true, predicted = np.asarray(y_true), np.asarray(logits) > THRESHOLD
            tpr = float(predicted[y_true == 1].mean()) if (y_true == 1).any() else float("nan")
            fpr = float(predicted[y_true == 0].mean()) if (y_true == 0).any() else float("nan")
            out[split] = {"tpr": tpr, "fpr": fpr, "satisfied": bool(tpr >= self.params.min_tpr)}
        return {"constraint": out}
