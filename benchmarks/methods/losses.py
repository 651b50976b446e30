"""Base losses on a single logit: `@register_loss`, `create_loss(name, counts, **hyperparameters)`.

A loss maps `(logits, targets)` (both float, shape `(B,)`, targets in {0, 1}) to a scalar; a loss
registered with a `head` takes that head's outputs instead and has `score(outputs)`, the `(B,)`
score the run ranks (LDAM: two cosines, scored by cos_1). A loss
factory takes the training set's `ClassCounts` first and its hyperparameters as keyword arguments
with their published defaults; `loss_hyperparameters(name)` reads them off the signature, so the
method layer exposes them as `--param` without a second list. A loss whose behaviour changes with
the epoch (LDAM's deferred re-weighting) has a `set_epoch(epoch, epochs)` method: the epoch reached
and the run's epoch budget.

Written here because no maintained PyTorch library ships these binary imbalance losses (the
standard focal loss is torchvision's). Sources: Sangalli et al., NeurIPS 2021 (S-/A-FL, S-/A-LM,
W-BCE, CB-BCE, LDAM, MBAUC as their baselines); Cui et al., CVPR 2019 (effective number); Cao et
al., NeurIPS 2019 (LDAM, DRW); Wang et al., IJCNN 2016 (MFE, MSFE); Lin et al., ICCV 2017 (focal).
"""
from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torchvision.ops import sigmoid_focal_loss

from benchmarks.core.errors import CritBenchError
from benchmarks.core.registry import Registry

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
LOSSES: Registry[Callable[..., LossFn]] = Registry("base loss")
# Model head a loss needs when it is not the plain linear single logit (see models3d.create_model).
LOSS_HEADS: dict[str, str] = {}
WEIGHTINGS = ("ins", "isns", "ens")


@dataclass(frozen=True)
class ClassCounts:
    """What a weighted loss knows about the training set: its class sizes."""

    n_pos: int
    n_neg: int


def register_loss(name: str, head: str | None = None):
    """Decorator registering a loss factory `factory(counts, **hyperparameters) -> LossFn`."""
    def add(factory):
        if head:
            LOSS_HEADS[name] = head
        return LOSSES.register(name)(factory)
    return add


def list_losses() -> list[str]:
    return LOSSES.names()


def loss_hyperparameters(name: str) -> dict:
    """`{name: default}` of the hyperparameters of loss `name`, in signature order."""
    parameters = list(inspect.signature(LOSSES.get(name)).parameters.values())[1:]
    return {p.name: p.default for p in parameters}


def loss_description(name: str) -> str:
    return (LOSSES.get(name).__doc__ or "").strip().splitlines()[0]


def create_loss(name: str, counts: ClassCounts | None = None, **hyperparameters) -> LossFn:
    """The loss `name` for a training set with `counts`, its hyperparameters overriding defaults."""
    unknown = set(hyperparameters) - set(loss_hyperparameters(name))
    if unknown:
        raise CritBenchError(f"loss {name!r} has no hyperparameter {', '.join(sorted(unknown))}; "
                             f"valid: {', '.join(loss_hyperparameters(name)) or 'none'}")
    return LOSSES.get(name)(counts or ClassCounts(1, 1), **hyperparameters)


def class_weights(scheme: str, counts: ClassCounts, beta: float = 0.99, normalize: bool = True) -> tuple[float, float]:
    """(negative, positive) class weights `ins` 1/n, `isns` 1/sqrt(n), `ens` (1 - beta) / (1 - beta^n),
    normalized to sum to the number of classes (2) as in Cui et al. 2019 unless `normalize` is off."""
    if scheme not in WEIGHTINGS:
        raise CritBenchError(f"unknown class weighting {scheme!r}; valid: {', '.join(WEIGHTINGS)}")
    if min(counts.n_pos, counts.n_neg) < 1:
        raise CritBenchError(f"class weights need both classes in train, got {counts}")
    if scheme == "ens" and not 0 <= beta < 1:
        raise CritBenchError(f"beta must be in [0, 1), got {beta}")
    raw = {
        "ins": lambda n: 1.0 / n,
        "isns": lambda n: 1.0 / math.sqrt(n),
        "ens": lambda n: (1.0 - beta) / (1.0 - beta ** n),
    }[scheme]
    neg, pos = raw(counts.n_neg), raw(counts.n_pos)
    scale = 2 / (neg + pos) if normalize else 1.0
    return scale * neg, scale * pos


def _per_class(y: torch.Tensor, negative: torch.Tensor | float, positive: torch.Tensor | float) -> torch.Tensor:
    return y * positive + (1 - y) * negative


def _check_nonnegative(**values) -> None:
    for key, value in values.items():
        if value < 0:
            raise CritBenchError(f"{key} must be >= 0, got {value}")


@register_loss("bce")
def bce(counts: ClassCounts) -> LossFn:
    """binary cross-entropy on the logit (the MedMNIST v2 objective)"""
    return F.binary_cross_entropy_with_logits


@register_loss("s_fl")
def symmetric_focal(counts: ClassCounts, gamma: float = 0.5) -> LossFn:
    """symmetric focal: -(1-s)^g log s on positives, -s^g log(1-s) on negatives (S-FL)"""
    _check_nonnegative(gamma=gamma)

    def loss(x, y):
        pos = -torch.sigmoid(-x).pow(gamma) * F.logsigmoid(x)
        neg = -torch.sigmoid(x).pow(gamma) * F.logsigmoid(-x)
        return _per_class(y, neg, pos).mean()
    return loss


@register_loss("a_fl")
def asymmetric_focal(counts: ClassCounts, gamma: float = 1.0) -> LossFn:
    """asymmetric focal: -log s on positives, -s^g log(1-s) on negatives (A-FL)"""
    _check_nonnegative(gamma=gamma)

    def loss(x, y):
        neg = -torch.sigmoid(x).pow(gamma) * F.logsigmoid(-x)
        return _per_class(y, neg, -F.logsigmoid(x)).mean()
    return loss


@register_loss("s_lm")
def symmetric_margin(counts: ClassCounts, margin: float = 0.5) -> LossFn:
    """symmetric large margin: -log s(x-m) on positives, -log(1-s(x+m)) on negatives (S-LM)"""
    _check_nonnegative(margin=margin)

    def loss(x, y):
        return _per_class(y, -F.logsigmoid(-(x + margin)), -F.logsigmoid(x - margin)).mean()
    return loss


@register_loss("a_lm")
def asymmetric_margin(counts: ClassCounts, margin: float = 0.5) -> LossFn:
    """asymmetric large margin: -log s(x-m) on positives, -log(1-s(x)) on negatives (A-LM)"""
    _check_nonnegative(margin=margin)

    def loss(x, y):
        return _per_class(y, -F.logsigmoid(-x), -F.logsigmoid(x - margin)).mean()
    return loss


@register_loss("wbce")
def weighted_bce(counts: ClassCounts, c: float = 1 / 3) -> LossFn:
    """weighted BCE, positive weight c * n_neg / n_pos (W-BCE)"""
    if not c > 0:
        raise CritBenchError(f"c must be positive, got {c}")
    pos_weight = torch.tensor(c * counts.n_neg / max(counts.n_pos, 1))

    def loss(x, y):
        return F.binary_cross_entropy_with_logits(x, y, pos_weight=pos_weight.to(x.device))
    return loss


@register_loss("cb_bce")
def class_balanced_bce(counts: ClassCounts, beta: float = 0.99, weighting: str = "ens", normalize: bool = True) -> LossFn:
    """class-balanced BCE: per-class weights (ens/ins/isns), batch mean (CB-BCE)

    By default the weights sum to 2 (Cui et al.); `normalize=False` keeps them raw, as alm-dnn's
    `ClassBalancedBCE` does (the ALM presets set it)."""
    negative, positive = class_weights(weighting, counts, beta, normalize)

    def loss(x, y):
        return F.binary_cross_entropy_with_logits(x, y, weight=_per_class(y, negative, positive))
    return loss


@register_loss("focal")
def focal(counts: ClassCounts, alpha: float = 0.25, gamma: float = 2.0) -> LossFn:
    """focal loss of Lin et al. (torchvision's sigmoid_focal_loss; alpha weights positives, -1 = off)"""
    _check_nonnegative(gamma=gamma)
    if not (alpha == -1 or 0 <= alpha <= 1):
        raise CritBenchError(f"alpha must be in [0, 1] or -1 (no weighting), got {alpha}")

    def loss(x, y):
        return sigmoid_focal_loss(x, y, alpha=alpha, gamma=gamma, reduction="mean")
    return loss


def _class_means(per_sample: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean of `per_sample` over the batch negatives and over the positives (0 for an absent class)."""
    n_pos = y.sum()
    n_neg = len(y) - n_pos
    pos = (per_sample * y).sum() / n_pos.clamp(min=1)
    neg = (per_sample * (1 - y)).sum() / n_neg.clamp(min=1)
    return neg, pos


@register_loss("mfe")
def mean_false_error(counts: ClassCounts) -> LossFn:
    """mean false error FPE + FNE: class-wise means of (y - s)^2 (Wang et al. 2016)"""
    def loss(x, y):
        fpe, fne = _class_means((y - torch.sigmoid(x)).square(), y)
        return fpe + fne
    return loss


@register_loss("msfe")
def mean_squared_false_error(counts: ClassCounts) -> LossFn:
    """mean squared false error FPE^2 + FNE^2 (Wang et al. 2016)"""
    def loss(x, y):
        fpe, fne = _class_means((y - torch.sigmoid(x)).square(), y)
        return fpe.square() + fne.square()
    return loss


@register_loss("mbauc")
def minibatch_auc(counts: ClassCounts) -> LossFn:
    """mini-batch AUC surrogate: mean over pos/neg pairs of (1 - (s(f+) - s(f-)))^2 (MBAUC)"""
    def loss(x, y):
        s = torch.sigmoid(x)
        pairs = y.unsqueeze(1) * (1 - y).unsqueeze(0)  # [i, j]: i positive, j negative
        gap = (1 - (s.unsqueeze(1) - s.unsqueeze(0))).square()
        return (gap * pairs).sum() / pairs.sum().clamp(min=1)
    return loss


class LDAMLoss:
    """LDAM (Cao et al. 2019) on the two unscaled class cosines of a 2-class cosine head, as
    alm-dnn's `LDAMLoss`: `F.cross_entropy(self.s * output, target)` with `output` the cosines and
    the margin m_y = C n_y^(-1/4) (the larger one `max_margin`) subtracted from the true class'.
    Deferred re-weighting (DRW) switches on class weights (effective number, beta 0.9999) from
    epoch `drw_start * epochs` (see `set_epoch`); cross_entropy's weighted mean divides by the
    weights' sum.

    Unlike the other losses it takes `(cosines (B, 2), targets (B,))`; the score the run ranks is
    cos_1 (`score`), as alm-dnn scores its LDAM runs."""

    def __init__(self, counts: ClassCounts, max_margin: float, scale: float, drw: bool, drw_start: float):
        c = max_margin / min(counts.n_pos, counts.n_neg) ** -0.25
        self.margins = torch.tensor([c * counts.n_neg ** -0.25, c * counts.n_pos ** -0.25])
        self.scale = scale
        self.weights = torch.tensor(class_weights("ens", counts, 0.9999)) if drw else None
        self.drw_start = drw_start
        self.reweighting = False

    @staticmethod
    def score(cosines: torch.Tensor) -> torch.Tensor:
        """The class-1 cosine: what alm-dnn ranks (`train_out[:, 1]`, `val_out[1]`) and constrains."""
        return cosines[:, 1]

    def set_epoch(self, epoch: int, epochs: int) -> None:
        """Epoch `epoch` (from 0) of `epochs` comes next: DRW is on from `drw_start * epochs`."""
        self.reweighting = self.weights is not None and epoch >= int(self.drw_start * epochs)

    def __call__(self, cosines, y):
        target = y.long()
        true_class = F.one_hot(target, 2).to(cosines.dtype)
        shifted = cosines - true_class * self.margins.to(cosines.device)
        weight = self.weights.to(cosines) if self.reweighting else None
        return F.cross_entropy(self.scale * shifted, target, weight=weight)


@register_loss("ldam", head="cosine_pair")
def ldam(counts: ClassCounts, max_margin: float = 0.5, scale: float = 30.0, drw: bool = False,
         drw_start: float = 0.8) -> LossFn:
    """LDAM on the 2 cosines of a normed head (margins C n^-1/4, max 0.5, s=30), optional deferred re-weighting"""
    if not max_margin > 0 or not scale > 0 or not 0 <= drw_start <= 1:
        raise CritBenchError(f"LDAM needs max_margin > 0, scale > 0, 0 <= drw_start <= 1; got "
                             f"{max_margin}, {scale}, {drw_start}")
    if min(counts.n_pos, counts.n_neg) < 1:
        raise CritBenchError(f"LDAM needs both classes in train, got {counts}")
    return LDAMLoss(counts, max_margin, scale, drw, drw_start)
