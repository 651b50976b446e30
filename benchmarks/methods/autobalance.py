"""AutoBalance (Li et al., NeurIPS 2021, "AutoBalance: Optimized Loss Functions for Imbalanced Data";
code: ucr-optml/AutoBalance, `loss_search.py`, `retraining.py`, `core/trainer.py`, `core/utils.py`,
`configs/cifar10/dyly_no_init/1.yaml`), in both framings: `autobalance` (`--task binary`, one
logit) and `autobalance_ce` (`--task multiclass`, the paper's K-way form). One bilevel machinery
(`AutoBalance`) serves both; they differ only in their lower and upper losses.

Two stages, as the paper's search and retrain phases:

- `search`: the lower level trains the network, with SGD, on the training samples outside a
  held-out share (`holdout`, the reference's 80%-20% train-validation split of its training data,
  stratified by class) with the parametric cross-entropy. Multi-class (the reference's
  `loss_adjust_cross_entropy`): `F.cross_entropy(z * sigmoid(d) + l, y, weight=w)`, every class k's
  logit scaled by `Delta_k = sigmoid(d_k)` and shifted by `l_k`. Binary, for one logit x and y in
  {0, 1}, s = 2y - 1: `w_y softplus(-(Delta_y s x + l_y))`, averaged with weights w_y (as
  `F.cross_entropy(weight=...)`). From `up_start` of the stage on, every `iter_interval` steps the
  upper level takes an SGD step on (d, l[, log w]) along the implicit hypergradient of the balanced
  loss (class-weighted cross-entropy on the raw outputs, `get_val_w`'s weights) of the batch's
  held-out samples, its inverse Hessian approximated by the reference's Neumann series. Neither
  the reported validation split nor test is read.
- `retrain`: the network from its initial weights, on every training sample, with the searched
  loss parameters fixed (`retraining.py`). Only this stage supplies the selected checkpoint.

`autobalance_ce` scores a run as every multi-class method does, by the critical class's softmax
log-odds of the raw outputs: the reference evaluates its models on the raw logits too
(`eval_epoch`: `preds = logits.data.max(1)[1]`, test loss `cross_entropy` without dy, ly), the
adjusted logits living only in the training loss. So its calibration is that of the raw softmax,
which the learned offsets deliberately move away from the training prior.

Deviations from the reference (docs/methods.md, autobalance): `autobalance` has one logit (the
paper's softmax over classes becomes its binary form with per-class multipliers, offsets and
weights); the hypergradient uses the current batch's lower-level and held-out samples, from the
same forward pass (the reference averages 10 batches of each); the Neumann series stops before a
term that grows (where it diverges); weights can be learned, as log-weights (the reference's `wy` stays
fixed); the search and retraining share `--epochs` 60:40 and the reference's schedules are scaled
to each stage; retraining starts from the search's initial weights (the reference draws a new
network); the upper optimizer steps only at hypergradient updates (the reference also calls it
every iteration with no gradient of its loss); the upper weights are 1/n_k, proportional to
`get_val_w`'s (the weighted mean does not see their scale); no class groups (`group_size` 1, as
the CIFAR configs).
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from benchmarks.core.errors import CritBenchError
from benchmarks.methods.base import Method, MethodParams, Stage, TrainContext, parse_params
from benchmarks.methods.multiclass import MulticlassMethod
from benchmarks.methods.registry import register_method

NEGATIVE, POSITIVE = 0, 1


@dataclass(frozen=True)
class ReferenceSchedule:
    """A stage's lr factor in the reference's epochs: linear warm-up from `start`, then x0.1 at each
    milestone (`warm_up_with_multistep_lr_*` of loss_search.py), scaled to a stage of any length."""

    epochs: int
    warmup: int
    milestones: tuple[int, ...]

    def factor(self, epoch: int, stage_epochs: int, start: int = 0) -> float:
        scale = stage_epochs / self.epochs
        warmup = max(1, math.floor(self.warmup * scale))
        if epoch < start:
            return 0.0
        if epoch - start < warmup:
            return (epoch - start + 1) / warmup
        return 0.1 ** sum(math.floor(m * scale) <= epoch for m in self.milestones)


# configs/cifar10/dyly_no_init/1.yaml: epoch: 300, low_lr_warmup: 5, low_lr_schedule: [220, 260],
# up_lr_warmup: 10, up_lr_schedule: [220, 260]; retraining.py: args["epoch"]=200,
# args["low_lr_schedule"]=[160,180].
SEARCH_LOWER = ReferenceSchedule(300, 5, (220, 260))
SEARCH_UPPER = ReferenceSchedule(300, 10, (220, 260))
RETRAIN_LOWER = ReferenceSchedule(200, 5, (160, 180))


@dataclass(frozen=True)
class AutoBalanceParams(MethodParams):
    lr: float = 0.1  # low_lr: 0.1
    momentum: float = 0.9  # optim.SGD(params=model.parameters(), lr=args["low_lr"], momentum=0.9, weight_decay=1e-4)
    weight_decay: float = 1e-4
    up_lr: float = 0.01  # up_lr: 0.01
    up_momentum: float = 0.9  # optim.SGD(params=[{'params': dy}, {'params': ly}], lr=args["up_lr"], momentum=0.9, weight_decay=1e-4)
    up_weight_decay: float = 1e-4
    holdout: float = 0.2  # train_size: 4000, val_size: 1000 (of 5000 per class)
    search_fraction: float = 0.6  # 300 search epochs, then 200 retraining epochs
    up_start: float = 0.4  # up_configs: start_epoch: 120 (of epoch: 300)
    iter_interval: int = 20  # up_configs: iter_interval: 20
    neumann_terms: int = 5  # neumann_hyperstep_preconditioner(d_val_loss_d_theta, d_train_loss_d_w, 1.0, 5, model)
    neumann_lr: float = 1.0
    learn_multipliers: bool = True  # up_configs: dy: true (dy_init: Ones)
    learn_offsets: bool = True  # ly: true (ly_init: Zeros)
    learn_weights: bool = False  # wy: false (wy_init: Ones)

    def validate(self) -> None:
        super().validate()
        if not 0 < self.holdout <= 0.5:
            raise CritBenchError(f"holdout must be in (0, 0.5], got {self.holdout}")
        if not 0 < self.search_fraction < 1 or not 0 <= self.up_start < 1:
            raise CritBenchError(f"need 0 < search_fraction < 1 and 0 <= up_start < 1, "
                                 f"got {self.search_fraction}, {self.up_start}")
        if self.iter_interval < 1 or self.neumann_terms < 0 or not self.neumann_lr > 0 or not self.up_lr > 0:
            raise CritBenchError(f"need iter_interval >= 1, neumann_terms >= 0, neumann_lr > 0, up_lr > 0; got "
                                 f"{self.iter_interval}, {self.neumann_terms}, {self.neumann_lr}, {self.up_lr}")
        if not (0 <= self.momentum < 1 and 0 <= self.up_momentum < 1) or self.up_weight_decay < 0:
            raise CritBenchError(f"need momentum and up_momentum in [0, 1), up_weight_decay >= 0; got "
                                 f"{self.momentum}, {self.up_momentum}, {self.up_weight_decay}")
        if not (self.learn_multipliers or self.learn_offsets or self.learn_weights):
            raise CritBenchError("autobalance learns nothing: set learn_multipliers, learn_offsets or learn_weights true")


def weighted_mean(per_sample: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """`sum w_i l_i / sum w_i`, as `F.cross_entropy(weight=...)` averages (0 where no weight)."""
    return (weights * per_sample).sum() / weights.sum().clamp(min=torch.finfo(weights.dtype).tiny)


def parametric_bce(logits: torch.Tensor, y: torch.Tensor, dy: torch.Tensor, ly: torch.Tensor, log_w: torch.Tensor,
                   mask: torch.Tensor) -> torch.Tensor:
    """The parametric cross-entropy for one logit over the samples of `mask`: per sample
    `softplus(-(sigmoid(dy[y]) s x + ly[y]))`, s = 2y - 1, their mean weighted by `exp(log_w)[y]`."""
    c = y.long()
    signed = (2 * y - 1) * logits
    per_sample = F.softplus(-(torch.sigmoid(dy)[c] * signed + ly[c]))
    return weighted_mean(per_sample, torch.exp(log_w)[c] * mask)


def balanced_bce(logits: torch.Tensor, y: torch.Tensor, class_weights: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """BCE on the raw logit over the samples of `mask`, weighted by `class_weights[y]` (the
    reference's upper loss, `F.cross_entropy(logits, targets, weight=w_val)`)."""
    per_sample = F.binary_cross_entropy_with_logits(logits, y, reduction="none")
    return weighted_mean(per_sample, class_weights[y.long()] * mask)


def parametric_ce(outputs: torch.Tensor, targets: torch.Tensor, dy: torch.Tensor, ly: torch.Tensor,
                  log_w: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The K-way parametric cross-entropy over the samples of `mask` (core/utils.py
    `loss_adjust_cross_entropy`): the softmax cross-entropy of `outputs * sigmoid(dy) + ly` (class
    k's logit scaled by sigmoid(dy_k), shifted by ly_k), its mean weighted by `exp(log_w)[y]`."""
    per_sample = F.cross_entropy(outputs * torch.sigmoid(dy) + ly, targets, reduction="none")
    return weighted_mean(per_sample, torch.exp(log_w)[targets] * mask)


def balanced_ce(outputs: torch.Tensor, targets: torch.Tensor, class_weights: torch.Tensor,
                mask: torch.Tensor) -> torch.Tensor:
    """Softmax cross-entropy on the raw outputs over the samples of `mask`, weighted by
    `class_weights[y]` (the reference's upper loss, `F.cross_entropy(logits, targets, weight=w_val)`)."""
    return weighted_mean(F.cross_entropy(outputs, targets, reduction="none"), class_weights[targets] * mask)


def validation_weights(sizes: torch.Tensor) -> torch.Tensor:
    """The upper loss's class weights 1/n_k of the held-out samples per class: `get_val_w`'s
    `sum(n)/n / ||sum(n)/n||` up to a scale that the weighted mean divides out."""
    return 1 / sizes.float()


def neumann_inverse_hvp(vector: list[torch.Tensor], train_grad: list[torch.Tensor], weights: list[torch.Tensor],
                        terms: int, lr: float) -> list[torch.Tensor]:
    """`lr sum_{j=0..J} (I - lr H)^j vector` ~ H^-1 vector, H the Hessian of the loss whose gradient
    `train_grad` (with its graph) is (core/utils.py `neumann_hyperstep_preconditioner`). J is `terms`,
    or fewer: the sum stops before the first term larger in norm than the one before, where the
    series diverges (an eigenvalue of lr H outside (0, 2)); a convergent series is never cut."""
    preconditioner = counter = [v.detach() for v in vector]
    for _ in range(terms):
        hessian_term = torch.autograd.grad(train_grad, weights, grad_outputs=counter, retain_graph=True,
                                           materialize_grads=True)
        following = [c - lr * h for c, h in zip(counter, hessian_term)]
        if squared_norm(following) > squared_norm(counter):
            break
        counter = following
        preconditioner = [p + c for p, c in zip(preconditioner, counter)]
    return [lr * p for p in preconditioner]


def squared_norm(tensors: list[torch.Tensor]) -> float:
    return float(sum(t.pow(2).sum() for t in tensors))


def hypergradient(train_loss: torch.Tensor, val_loss: torch.Tensor, weights: list[torch.Tensor],
                  hyper: list[torch.Tensor], terms: int, lr: float) -> list[torch.Tensor]:
    """d val_loss(w*(hyper)) / d hyper by the implicit function theorem at w*, the weights that
    minimize `train_loss`: `-(d^2 train_loss / d hyper d w) H^-1 (d val_loss / d w)`, the inverse
    Hessian by `neumann_inverse_hvp`; `val_loss` must not depend on `hyper` directly (core/trainer.py:
    `hyper_grad=-indirect_grad`). Both losses' graphs are kept."""
    train_grad = torch.autograd.grad(train_loss, weights, create_graph=True, materialize_grads=True)
    val_grad = torch.autograd.grad(val_loss, weights, retain_graph=True, materialize_grads=True)
    coupled = [i for i, g in enumerate(train_grad) if g.requires_grad]  # the others have no Hessian
    train_grad = [train_grad[i] for i in coupled]
    weights, val_grad = [weights[i] for i in coupled], [val_grad[i] for i in coupled]
    preconditioner = neumann_inverse_hvp(val_grad, train_grad, weights, terms, lr)
    indirect = torch.autograd.grad(train_grad, hyper, grad_outputs=preconditioner, retain_graph=True,
                                   materialize_grads=True)
    return [-g for g in indirect]


def first_occurrences(index: torch.Tensor) -> torch.Tensor:
    """Mask of each value's first position in `index` (samplers with replacement repeat indices)."""
    order = torch.argsort(index, stable=True)
    ordered = index[order]
    first_in_order = torch.ones_like(ordered, dtype=torch.bool)
    first_in_order[1:] = ordered[1:] != ordered[:-1]
    first = torch.empty_like(first_in_order)
    first[order] = first_in_order
    return first


class HeldOutSplit:
    """A stratified share of the training samples, held apart from the lower level.

    Each class c holds out `sizes[c] = max(1, round(holdout n_c))` of its n_c samples: of its
    samples in the order the (seeded) batches first show them, rank k is held out when
    `(k + 1) sizes[c] // n_c > k sizes[c] // n_c`, spreading them evenly through the first epoch.
    A sample's membership is fixed when first seen, and only training positions exist here.
    Classes are the label indices 0..K-1 (binary: negatives, positives)."""

    def __init__(self, n_train: int, class_sizes: tuple[int, ...], holdout: float, device: torch.device):
        self.class_sizes = torch.tensor(class_sizes, device=device)
        self.sizes = torch.tensor([max(1, round(holdout * n)) for n in class_sizes], device=device)
        # uint8 flags, written by accumulation: no host sync, and repeated indices add nothing
        self.held = torch.zeros(n_train, dtype=torch.uint8, device=device)
        self.assigned = torch.zeros(n_train, dtype=torch.uint8, device=device)
        self.seen = torch.zeros(len(class_sizes), dtype=torch.long, device=device)

    def members(self, index: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Which of the batch's samples are held out (deciding for samples seen the first time)."""
        c = y.long()
        new = first_occurrences(index) & (self.assigned[index] == 0)
        one_hot = F.one_hot(c, len(self.seen)) * new.unsqueeze(1)
        rank = self.seen[c] + (one_hot.cumsum(0) - one_hot).gather(1, c.unsqueeze(1)).squeeze(1)
        size, n = self.sizes[c], self.class_sizes[c]
        held = (rank + 1) * size // n > rank * size // n
        self.held.index_put_((index,), (held & new).to(torch.uint8), accumulate=True)
        self.assigned.index_put_((index,), new.to(torch.uint8), accumulate=True)
        self.seen += one_hot.sum(0)
        return self.held[index].bool()


class AutoBalance(Method):
    """The bilevel search and the retraining, shared by both framings. A subclass gives the training
    samples per class (`class_sizes`), their names in the record (`class_keys`), the lower loss
    `parametric(outputs, y, dy, ly, log_w, mask)` and the upper `balanced(outputs, y, weights, mask)`."""

    Params = AutoBalanceParams
    search_space = {"lr": "log:1e-2..1e-1", "weight_decay": [1e-5, 1e-4, 1e-3], "up_lr": "log:1e-3..1e-1"}
    search_space_source = ("no reference grid: ucr-optml/AutoBalance's configs fix low_lr 0.1, up_lr 0.01 and "
                           "weight decay 1e-4; lr one decade up to 0.1, up_lr and weight decay one decade either side")
    needs_double_backward = True  # Hessian-vector products: `Method.skip` refuses --compile
    parametric = staticmethod(parametric_bce)
    balanced = staticmethod(balanced_bce)

    def __init__(self, model: torch.nn.Module, params: AutoBalanceParams, ctx: TrainContext):
        # Method's, not super()'s: autobalance_ce builds its SGD per stage, not MulticlassMethod's optimizer
        Method.__init__(self, model, params, ctx)
        sizes = self.class_sizes()
        if min(sizes) < 2:
            raise CritBenchError(f"{self.name} holds out {params.holdout:g} of each class of train for its upper level "
                                 f"and needs >= 2 samples of each class; train has {self.described(sizes)}: use more "
                                 f"training data")
        self.split = HeldOutSplit(ctx.n_train, sizes, params.holdout, ctx.device)
        self.upper_weights = validation_weights(self.split.sizes)
        # per class: d (Delta = sigmoid(d)), l, log w (dy_init Ones, ly_init Zeros, wy_init Ones)
        self.dy = torch.ones(len(sizes), device=ctx.device, requires_grad=params.learn_multipliers)
        self.ly = torch.zeros(len(sizes), device=ctx.device, requires_grad=params.learn_offsets)
        self.log_w = torch.zeros(len(sizes), device=ctx.device, requires_grad=params.learn_weights)
        self.hyper = [p for p in (self.dy, self.ly, self.log_w) if p.requires_grad]
        self.upper = torch.optim.SGD(self.hyper, lr=params.up_lr, momentum=params.up_momentum,
                                     weight_decay=params.up_weight_decay)
        self.initial_weights = copy.deepcopy(model.state_dict())  # retraining starts from the same initialization
        self.stage, self.stage_length, self.epoch, self.step = "search", 1, 0, 0
        self.upper_due, self.upper_steps = False, 0

    def class_sizes(self) -> tuple[int, ...]:
        """The training samples of each class, by label index."""
        raise NotImplementedError

    def class_keys(self) -> tuple[str, ...]:
        """Each class's suffix in the loss parameters' names."""
        raise NotImplementedError

    def described(self, sizes: tuple[int, ...]) -> str:
        """The training samples per class, in words."""
        raise NotImplementedError

    def held_out(self) -> dict:
        """The held-out split's size, for the record."""
        raise NotImplementedError

    @classmethod
    def build_params(cls, values: dict) -> AutoBalanceParams:
        """The reference's own recipe: no multi-class preset (`MulticlassMethod.build_params`) applies."""
        return parse_params(cls.Params, values)

    @classmethod
    def stage_plan(cls, params):
        share = params.search_fraction
        return Stage("search", share, selectable=False), Stage("retrain", 1 - share)

    def begin_stage(self, stage, epochs):
        self.stage, self.stage_length, self.epoch, self.step = stage.name, epochs, 0, 0
        if stage.name == "retrain":
            self.model.load_state_dict(self.initial_weights)
        schedule = SEARCH_LOWER if stage.name == "search" else RETRAIN_LOWER
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=self.params.lr, momentum=self.params.momentum,
                                         weight_decay=self.params.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda e: schedule.factor(e, epochs))
        self.set_upper_lr()

    def upper_start(self) -> int:
        return math.floor(self.params.up_start * self.stage_length)

    def upper_active(self) -> bool:
        return self.stage == "search" and self.epoch >= self.upper_start()

    def set_upper_lr(self) -> None:
        factor = SEARCH_UPPER.factor(self.epoch, self.stage_length, self.upper_start()) if self.upper_active() else 0.0
        for group in self.upper.param_groups:
            group["lr"] = self.params.up_lr * factor

    def lower_loss(self, outputs, y, mask, detached: bool) -> torch.Tensor:
        dy, ly, log_w = (p.detach() if detached else p for p in (self.dy, self.ly, self.log_w))
        return self.parametric(outputs, y, dy, ly, log_w, mask)

    def loss(self, outputs, y, index):
        if self.stage == "retrain":
            return self.lower_loss(outputs, y, torch.ones_like(y, dtype=outputs.dtype), detached=True)
        held = self.split.members(index, y)
        lower, upper = (~held).float(), held.float()
        if self.upper_active():
            self.upper_due |= self.step % self.params.iter_interval == 0
            if self.upper_due and bool(held.any() & (~held).any()):
                self.upper_step(outputs, y, lower, upper)
        self.step += 1
        return self.lower_loss(outputs, y, lower, detached=True)

    def upper_step(self, outputs, y, lower, upper) -> None:
        """One SGD step of the loss parameters along the hypergradient of this batch's held-out
        balanced loss (core/trainer.py: `assign_hyper_gradient(up_params,hyper_grad,num_classes)`;
        `up_optimizer.step()`)."""
        weights = [p for p in self.model.parameters() if p.requires_grad]
        grads = hypergradient(self.lower_loss(outputs, y, lower, detached=False),
                              self.balanced(outputs, y, self.upper_weights, upper),
                              weights, self.hyper, self.params.neumann_terms, self.params.neumann_lr)
        for parameter, grad in zip(self.hyper, grads):
            parameter.grad = grad
        self.upper.step()
        self.upper.zero_grad(set_to_none=True)
        self.upper_due, self.upper_steps = False, self.upper_steps + 1

    def end_epoch(self, epoch, val_auc):
        self.scheduler.step()
        self.epoch, self.step = epoch + 1, 0
        self.set_upper_lr()

    def loss_parameters(self) -> dict:
        """The loss parameters as the lower level uses them: multipliers sigmoid(d), offsets l, weights w."""
        values = torch.stack([torch.sigmoid(self.dy), self.ly, torch.exp(self.log_w)]).detach().cpu().tolist()
        return {f"{kind}_{key}": values[row][column]
                for row, kind in enumerate(("multiplier", "offset", "weight"))
                for column, key in enumerate(self.class_keys())}

    def state_summary(self):
        """The loss parameters at the epoch's end, the upper steps so far and the epoch's upper lr."""
        return {**self.loss_parameters(), "upper_steps": self.upper_steps,
                "upper_lr": float(self.upper.param_groups[0]["lr"])}

    def report(self, scores):
        """The held-out split's size and the searched loss parameters the selected model trained with."""
        return {"autobalance": {"held_out": self.held_out(), "loss_parameters": self.loss_parameters()}}

    def state_dict(self):
        return {"dy": self.dy.detach().clone(), "ly": self.ly.detach().clone(), "log_w": self.log_w.detach().clone()}

    def load_state_dict(self, state):
        with torch.no_grad():
            for name in ("dy", "ly", "log_w"):
                getattr(self, name).copy_(state[name])


@register_method("autobalance")
class AutoBalanceMethod(AutoBalance):
    multiclass_variant = "autobalance_ce"
    """AutoBalance on one logit: per-class multipliers, offsets and weights of `parametric_bce`."""

    description = ("AutoBalance (Li et al., NeurIPS 2021; ucr-optml/AutoBalance): bilevel search of per-class "
                   "logit multipliers/offsets on a held-out 20% of train, then retraining with them")

    def class_sizes(self):
        counts = self.ctx.class_counts
        return counts.n_neg, counts.n_pos

    def class_keys(self):
        return "neg", "pos"

    def described(self, sizes):
        return f"{sizes[POSITIVE]} positives and {sizes[NEGATIVE]} negatives"

    def held_out(self):
        sizes = self.split.sizes.tolist()
        return {"n": sum(sizes), "positives": sizes[POSITIVE]}


@register_method("autobalance_ce")
class AutoBalanceCE(AutoBalance, MulticlassMethod):
    """AutoBalance over every label, as the paper: per-class multipliers and offsets of the K-way
    cross-entropy (`parametric_ce`), the upper level on the class-weighted cross-entropy of the raw
    outputs (`balanced_ce`); scored as every multi-class method (`MulticlassMethod.score`)."""

    description = ("AutoBalance (Li et al., NeurIPS 2021; ucr-optml/AutoBalance) over every label: bilevel search of "
                   "per-class logit multipliers/offsets of the K-way cross-entropy on a held-out 20% of train, "
                   "then retraining with them")
    multilabel_support = False
    presets = ()  # the reference's own SGD recipe, not the multi-class presets
    parametric = staticmethod(parametric_ce)
    balanced = staticmethod(balanced_ce)

    def class_sizes(self):
        return self.ctx.class_sizes

    def class_keys(self):
        return tuple(str(k) for k in range(len(self.ctx.class_sizes)))

    def described(self, sizes):
        return f"{list(sizes)} samples per class"

    def held_out(self):
        sizes = self.split.sizes.tolist()
        return {"n": sum(sizes), "per_class": sizes}
