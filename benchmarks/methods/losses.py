"""Base losses: `@register_loss` on a `BaseLoss` subclass, `create_loss(name, counts, **hyperparameters)`.

A loss maps the model's batch outputs and the targets (float, shape `(B,)`, in {0, 1}) to a scalar.
Everything the methods need to know about a loss is declared with it, at registration: the model
head it needs (`head`, None: the plain linear single logit, outputs `(B,)`), whether it trains the
logit as the log-odds of the positive class (`probability`), and its hooks, `BaseLoss.score` (the
`(B,)` score the run ranks; LDAM: cos_1 of its two cosines) and `BaseLoss.set_epoch` (epoch-dependent
state; LDAM's deferred re-weighting), no-ops unless a loss overrides them. A loss takes the training
set's `ClassCounts` first and its hyperparameters as keyword arguments with their published
defaults; `loss_hyperparameters(name)` reads them off the signature, so the method layer exposes
them as `--param` without a second list.

Written here because no maintained PyTorch library ships these binary imbalance losses (the
standard focal loss is torchvision's). Each loss' docstring gives its paper and the reference
code's file.
"""
from __future__ import annotations

import inspect
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torchvision.ops import sigmoid_focal_loss

from benchmarks.core.errors import CritBenchError
from benchmarks.core.registry import Registry

WEIGHTINGS = ("ins", "isns", "ens")
ALM_BASELINES = "salusanga/alm-dnn configs/baseline/"  # the ALM paper's baseline grids, one JSON per value


@dataclass(frozen=True)
class ClassCounts:
    """What a weighted loss knows about the training set: its class sizes."""

    n_pos: int
    n_neg: int

    @property
    def sizes(self) -> tuple[int, int]:
        """(negatives, positives): the class sizes in label order."""
        return self.n_neg, self.n_pos


class BaseLoss:
    """A base loss: `loss(outputs, targets)` is the batch's scalar loss. Subclasses take the
    training set's `ClassCounts` first, then their hyperparameters with defaults, and are
    registered with `@register_loss`, which sets the class attributes below."""

    name = ""
    head: str | None = None  # the model head it needs (models3d.create_model); None: the linear single logit
    probability = False  # whether it scores sigmoid(logit) against the label, so the logit is a log-odds
    # The values of its hyperparameters an equal-budget search tries (the `--space` syntax of
    # benchmarks.sweep.tuning) and their source; its method adds the optimizer's (loss_methods.py).
    search_space: dict[str, list | str] = {}
    search_space_source = "no hyperparameter of its own"

    def __init__(self, counts: ClassCounts):
        """A loss without hyperparameters or class weights ignores `counts`."""

    def __call__(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def score(self, outputs: torch.Tensor) -> torch.Tensor:
        """The `(B,)` score the run ranks, from the outputs of the loss' head: the logit itself."""
        return outputs

    def set_epoch(self, epoch: int, epochs: int) -> None:
        """Epoch `epoch` (from 0) of the run's `epochs` comes next; for losses that change with it."""


LOSSES: Registry[type[BaseLoss]] = Registry("base loss")


def register_loss(name: str, head: str | None = None, probability: bool = False):
    """Class decorator registering a `BaseLoss` subclass under `name`, with the model `head` it
    needs (None: the linear single logit) and whether its logit is a `probability`'s log-odds."""
    def add(cls: type[BaseLoss]) -> type[BaseLoss]:
        cls.name, cls.head, cls.probability = name, head, probability
        return LOSSES.register(name)(cls)
    return add


def list_losses() -> list[str]:
    return LOSSES.names()


def get_loss(name: str, asked_by: str = "") -> type[BaseLoss]:
    """The loss class registered as `name`: the one check that a base loss exists. `asked_by` (a
    method name such as `alm+nope`) says in the error where the name came from."""
    if name not in LOSSES.names():
        where = f" in {asked_by}" if asked_by else ""
        raise CritBenchError(f"unknown base loss {name!r}{where}; valid: {', '.join(list_losses())}")
    return LOSSES.get(name)


def loss_hyperparameters(name: str) -> dict:
    """`{name: default}` of the hyperparameters of loss `name`, in signature order."""
    parameters = list(inspect.signature(get_loss(name)).parameters.values())[1:]
    return {p.name: p.default for p in parameters}


def loss_description(name: str) -> str:
    """The first line of loss `name`'s docstring."""
    return (get_loss(name).__doc__ or "").strip().splitlines()[0]


def create_loss(name: str, counts: ClassCounts | None = None, **hyperparameters) -> BaseLoss:
    """The loss `name` for a training set with `counts`, its hyperparameters overriding defaults."""
    unknown = set(hyperparameters) - set(loss_hyperparameters(name))
    if unknown:
        raise CritBenchError(f"loss {name!r} has no hyperparameter {', '.join(sorted(unknown))}; "
                             f"valid: {', '.join(loss_hyperparameters(name)) or 'none'}")
    return get_loss(name)(counts or ClassCounts(1, 1), **hyperparameters)


def class_weights(scheme: str, sizes: Sequence[int], beta: float = 0.99, normalize: bool = True) -> list[float]:
    """Per-class weights for the training samples per class `sizes`: `ins` 1/n, `isns` 1/sqrt(n), `ens`
    (1 - beta) / (1 - beta^n) (Cui et al. 2019, effective number), scaled to sum to the number of
    classes unless `normalize` is off (richardaecn/class-balanced-loss: `weights = weights /
    np.sum(weights) * num_classes`). Binary losses pass `ClassCounts.sizes` (negatives, positives)."""
    if scheme not in WEIGHTINGS:
        raise CritBenchError(f"unknown class weighting {scheme!r}; valid: {', '.join(WEIGHTINGS)}")
    if scheme == "ens" and not 0 <= beta < 1:
        raise CritBenchError(f"beta must be in [0, 1), got {beta}")
    if min(sizes) < 1:
        raise CritBenchError(f"class weights need every class in train; the training samples per class are {list(sizes)}")
    raw = {
        "ins": lambda n: 1.0 / n,
        "isns": lambda n: 1.0 / math.sqrt(n),
        "ens": lambda n: (1.0 - beta) / (1.0 - beta ** n),
    }[scheme]
    weights = [raw(n) for n in sizes]
    scale = len(sizes) / sum(weights) if normalize else 1.0
    return [scale * weight for weight in weights]


def drw_class_weights(sizes: Sequence[int]) -> list[float]:
    """Deferred re-weighting's class weights (Cao et al. 2019): the effective number at beta 0.9999,
    normalized to sum to the number of classes (kaidic/LDAM-DRW cifar_train.py: `betas = [0, 0.9999]`,
    `per_cls_weights = per_cls_weights / np.sum(per_cls_weights) * len(cls_num_list)`)."""
    return class_weights("ens", sizes, 0.9999)


def drw_is_on(epochs_done: int, drw_start: float, epochs: int) -> bool:
    """Whether DRW weighs the loss once `epochs_done` of `epochs` epochs are done: from `int(drw_start
    * epochs)` on (cifar_train.py `idx = epoch // 160` of 200 epochs, i.e. drw_start 0.8)."""
    return epochs_done >= int(drw_start * epochs)


def _per_class(y: torch.Tensor, negative: torch.Tensor | float, positive: torch.Tensor | float) -> torch.Tensor:
    return y * positive + (1 - y) * negative


def _check_nonnegative(**values) -> None:
    for key, value in values.items():
        if value < 0:
            raise CritBenchError(f"{key} must be >= 0, got {value}")


@register_loss("bce", probability=True)
class BCE(BaseLoss):
    """binary cross-entropy on the logit (the MedMNIST v2 objective)

    Mean over the batch of -y log s(x) - (1 - y) log(1 - s(x)), s the sigmoid.

    Args:
        counts: the training set's class sizes (unused).

    Reference:
        Yang et al., "MedMNIST v2", Scientific Data 2023; reference code MedMNIST/experiments,
        MedMNIST2D/train_and_eval_pytorch.py (`criterion = nn.BCEWithLogitsLoss()`).
    """

    def __call__(self, x, y):
        return F.binary_cross_entropy_with_logits(x, y)


@register_loss("s_fl", probability=True)
class SymmetricFocal(BaseLoss):
    """symmetric focal: -(1-s)^g log s on positives, -s^g log(1-s) on negatives (S-FL)

    Batch mean; s = sigmoid(x), with the exact log-sigmoid (the reference adds 1e-4 inside each log).

    Args:
        counts: the training set's class sizes (unused).
        gamma: focusing exponent g >= 0 of both classes (0: BCE).

    Reference:
        Sangalli et al., "Constrained Optimization to Train Neural Networks on Critical and
        Under-Represented Classes", NeurIPS 2021; reference code salusanga/alm-dnn,
        utils/custom_losses.py (`SymBCEFocalLoss`).
    """

    search_space = {"gamma": [0.5, 1.0, 2.0]}
    search_space_source = f"{ALM_BASELINES}baseline_s_FL_g05/_g1/_g2.json (the ALM paper's grid)"

    def __init__(self, counts: ClassCounts, gamma: float = 0.5):
        _check_nonnegative(gamma=gamma)
        self.gamma = gamma

    def __call__(self, x, y):
        pos = -torch.sigmoid(-x).pow(self.gamma) * F.logsigmoid(x)
        neg = -torch.sigmoid(x).pow(self.gamma) * F.logsigmoid(-x)
        return _per_class(y, neg, pos).mean()


@register_loss("a_fl", probability=True)
class AsymmetricFocal(BaseLoss):
    """asymmetric focal: -log s on positives, -s^g log(1-s) on negatives (A-FL)

    Batch mean; s = sigmoid(x). Only the negatives are down-weighted when easy.

    Args:
        counts: the training set's class sizes (unused).
        gamma: focusing exponent g >= 0 of the negatives.

    Reference:
        Sangalli et al., NeurIPS 2021; reference code salusanga/alm-dnn, utils/custom_losses.py
        (`AsymBCEFocalLoss`).
    """

    search_space = {"gamma": [0.5, 1.0, 2.0]}
    search_space_source = f"{ALM_BASELINES}baseline_a_FL_g05/_g1/_g2.json (the ALM paper's grid)"

    def __init__(self, counts: ClassCounts, gamma: float = 1.0):
        _check_nonnegative(gamma=gamma)
        self.gamma = gamma

    def __call__(self, x, y):
        neg = -torch.sigmoid(x).pow(self.gamma) * F.logsigmoid(-x)
        return _per_class(y, neg, -F.logsigmoid(x)).mean()


@register_loss("s_lm")
class SymmetricMargin(BaseLoss):
    """symmetric large margin: -log s(x-m) on positives, -log(1-s(x+m)) on negatives (S-LM)

    Batch mean; s = sigmoid. The logit is shifted by the margin, so it is not a log-odds.

    Args:
        counts: the training set's class sizes (unused).
        margin: m >= 0, the logit shift of both classes.

    Reference:
        Sangalli et al., NeurIPS 2021; reference code salusanga/alm-dnn, utils/custom_losses.py
        (`SymBCELargeMargin`).
    """

    search_space = {"margin": [0.5, 2.0, 4.0]}
    search_space_source = f"{ALM_BASELINES}baseline_s_LM_m05/_m2/_m4.json (the ALM paper's grid)"

    def __init__(self, counts: ClassCounts, margin: float = 0.5):
        _check_nonnegative(margin=margin)
        self.margin = margin

    def __call__(self, x, y):
        return _per_class(y, -F.logsigmoid(-(x + self.margin)), -F.logsigmoid(x - self.margin)).mean()


@register_loss("a_lm")
class AsymmetricMargin(BaseLoss):
    """asymmetric large margin: -log s(x-m) on positives, -log(1-s(x)) on negatives (A-LM)

    Batch mean; s = sigmoid. Only the positives' logit is shifted by the margin.

    Args:
        counts: the training set's class sizes (unused).
        margin: m >= 0, the positives' logit shift.

    Reference:
        Sangalli et al., NeurIPS 2021; reference code salusanga/alm-dnn, utils/custom_losses.py
        (`AsymBCELargeMargin`).
    """

    search_space = {"margin": [0.5, 2.0, 4.0]}
    search_space_source = f"{ALM_BASELINES}baseline_a_LM_m05/_m2/_m4.json (the ALM paper's grid)"

    def __init__(self, counts: ClassCounts, margin: float = 0.5):
        _check_nonnegative(margin=margin)
        self.margin = margin

    def __call__(self, x, y):
        return _per_class(y, -F.logsigmoid(-x), -F.logsigmoid(x - self.margin)).mean()


@register_loss("wbce", probability=True)
class WeightedBCE(BaseLoss):
    """weighted BCE, positive weight c * n_neg / n_pos (W-BCE)

    BCE with `pos_weight` c n_neg / n_pos (`F.binary_cross_entropy_with_logits`), batch mean.

    Args:
        counts: the training set's class sizes, which set the positives' weight.
        c: c > 0, the share of the inverse class ratio given to the positives.

    Reference:
        Sangalli et al., NeurIPS 2021; reference code salusanga/alm-dnn, utils/custom_losses.py
        (`WeightedBCE`, built with `c * ratio_pos_train`).
    """

    search_space = {"c": [0.333, 0.666, 1.0]}
    search_space_source = f"{ALM_BASELINES}baseline_WBCE_1_3/_2_3/_1.json (the ALM paper's grid: c 0.333, 0.666, 1)"

    def __init__(self, counts: ClassCounts, c: float = 1 / 3):
        if not c > 0:
            raise CritBenchError(f"c must be positive, got {c}")
        self.pos_weight = torch.tensor(c * counts.n_neg / max(counts.n_pos, 1))

    def __call__(self, x, y):
        return F.binary_cross_entropy_with_logits(x, y, pos_weight=self.pos_weight.to(x.device))


@register_loss("cb_bce", probability=True)
class ClassBalancedBCE(BaseLoss):
    """class-balanced BCE: per-class weights (ens/ins/isns), batch mean (CB-BCE)

    By default the weights sum to 2 (Cui et al.); `normalize=False` keeps them raw, as alm-dnn's
    `ClassBalancedBCE` does (the ALM presets set it).

    Args:
        counts: the training set's class sizes, which set the weights (`class_weights`).
        beta: 0 <= beta < 1, the effective-number parameter of `ens`.
        weighting: `ens` (1 - beta) / (1 - beta^n), `ins` 1/n or `isns` 1/sqrt(n).
        normalize: scale the two weights to sum to 2.

    Reference:
        Cui et al., "Class-Balanced Loss Based on Effective Number of Samples", CVPR 2019;
        reference code richardaecn/class-balanced-loss, src/cifar_main.py (the weights); as a
        baseline, salusanga/alm-dnn utils/custom_losses.py (`ClassBalancedBCE`).
    """

    search_space = {"beta": [0.99, 0.999, 0.9999]}
    search_space_source = f"{ALM_BASELINES}baseline_cb_BCE_99/_999/_9999.json (the ALM paper's grid)"

    def __init__(self, counts: ClassCounts, beta: float = 0.99, weighting: str = "ens", normalize: bool = True):
        self.negative, self.positive = class_weights(weighting, counts.sizes, beta, normalize)

    def __call__(self, x, y):
        return F.binary_cross_entropy_with_logits(x, y, weight=_per_class(y, self.negative, self.positive))


@register_loss("focal", probability=True)
class Focal(BaseLoss):
    """focal loss of Lin et al. (torchvision's sigmoid_focal_loss; alpha weights positives, -1 = off)

    -alpha_t (1 - p_t)^gamma log p_t, batch mean, p_t the sigmoid's probability of the true class.

    Args:
        counts: the training set's class sizes (unused).
        alpha: weight of the positives in [0, 1] (the negatives': 1 - alpha), or -1 for none.
        gamma: focusing exponent >= 0.

    Reference:
        Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017; reference code
        pytorch/vision, torchvision/ops/focal_loss.py (`sigmoid_focal_loss`, called here).
    """

    search_space = {"gamma": "0.0..3.0", "alpha": [0.25, 0.5, 0.75, -1.0]}
    search_space_source = ("no reference grid: torchvision's sigmoid_focal_loss documents its defaults only "
                           "(alpha 0.25, gamma 2); gamma from 0 (BCE) to 3, alpha 0.25, 0.5, 0.75 or -1 (off)")

    def __init__(self, counts: ClassCounts, alpha: float = 0.25, gamma: float = 2.0):
        _check_nonnegative(gamma=gamma)
        if not (alpha == -1 or 0 <= alpha <= 1):
            raise CritBenchError(f"alpha must be in [0, 1] or -1 (no weighting), got {alpha}")
        self.alpha, self.gamma = alpha, gamma

    def __call__(self, x, y):
        return sigmoid_focal_loss(x, y, alpha=self.alpha, gamma=self.gamma, reduction="mean")


def _class_means(per_sample: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean of `per_sample` over the batch negatives and over the positives (0 for an absent class)."""
    n_pos = y.sum()
    n_neg = len(y) - n_pos
    pos = (per_sample * y).sum() / n_pos.clamp(min=1)
    neg = (per_sample * (1 - y)).sum() / n_neg.clamp(min=1)
    return neg, pos


@register_loss("mfe", probability=True)
class MeanFalseError(BaseLoss):
    """mean false error FPE + FNE: class-wise means of (y - s)^2 (Wang et al. 2016)

    FPE and FNE are the means of (y - sigmoid(x))^2 over the batch negatives and positives (0 for
    a class the batch lacks).

    Args:
        counts: the training set's class sizes (unused).

    Reference:
        Wang et al., "Training Deep Neural Networks on Imbalanced Data Sets", IJCNN 2016 (no
        reference code released; written from the paper's definition).
    """

    def __call__(self, x, y):
        fpe, fne = _class_means((y - torch.sigmoid(x)).square(), y)
        return fpe + fne


@register_loss("msfe", probability=True)
class MeanSquaredFalseError(BaseLoss):
    """mean squared false error FPE^2 + FNE^2 (Wang et al. 2016)

    FPE and FNE as in `mfe`; squaring them favours the class with the larger error.

    Args:
        counts: the training set's class sizes (unused).

    Reference:
        Wang et al., "Training Deep Neural Networks on Imbalanced Data Sets", IJCNN 2016 (no
        reference code released; written from the paper's definition).
    """

    def __call__(self, x, y):
        fpe, fne = _class_means((y - torch.sigmoid(x)).square(), y)
        return fpe.square() + fne.square()


@register_loss("mbauc")
class MiniBatchAUC(BaseLoss):
    """mini-batch AUC surrogate: mean over pos/neg pairs of (1 - (s(f+) - s(f-)))^2 (MBAUC)

    Over the batch's (positive, negative) pairs; 0 for a batch without both classes. It sees only
    score differences, so the logit is not a log-odds.

    Args:
        counts: the training set's class sizes (unused).

    Reference:
        a baseline of Sangalli et al., NeurIPS 2021; reference code salusanga/alm-dnn,
        utils/custom_losses.py (`MiniBatchAUC`).
    """

    def __call__(self, x, y):
        s = torch.sigmoid(x)
        pairs = y.unsqueeze(1) * (1 - y).unsqueeze(0)  # [i, j]: i positive, j negative
        gap = (1 - (s.unsqueeze(1) - s.unsqueeze(0))).square()
        return (gap * pairs).sum() / pairs.sum().clamp(min=1)


@register_loss("ldam", head="cosine_pair")
class LDAM(BaseLoss):
    """LDAM on the 2 cosines of a normed head (margins C n^-1/4, max 0.5, s=30), optional deferred re-weighting

    As alm-dnn's `LDAMLoss`: `F.cross_entropy(self.s * output, target)` with `output` the two
    unscaled class cosines of a 2-class cosine head and the margin m_y = C n_y^(-1/4) (the larger
    one `max_margin`) subtracted from the true class'. Deferred re-weighting (DRW) switches on class
    weights (effective number, beta 0.9999) from epoch `drw_start * epochs` (`set_epoch`);
    cross_entropy's weighted mean divides by the weights' sum. It takes `(cosines (B, 2), targets
    (B,))`; the score the run ranks is cos_1 (`score`), as alm-dnn scores its LDAM runs.

    Args:
        counts: the training set's class sizes, which set the margins and the DRW weights.
        max_margin: the larger class' margin, > 0.
        scale: s > 0, the cosines' scale inside the cross-entropy.
        drw: switch on the deferred re-weighting.
        drw_start: share of the epochs in [0, 1] after which DRW is on.

    Reference:
        Cao et al., "Learning Imbalanced Datasets with Label-Distribution-Aware Margin Loss",
        NeurIPS 2019; reference code kaidic/LDAM-DRW, losses.py (`LDAMLoss`) and cifar_train.py
        (DRW's `per_cls_weights`); as a baseline, salusanga/alm-dnn utils/custom_losses.py.
    """

    search_space = {"max_margin": "0.1..1.0", "drw": [False, True]}
    search_space_source = ("no reference grid: kaidic/LDAM-DRW cifar_train.py fixes max_m=0.5 and compares "
                           "train_rule None and DRW; max_margin 0.1..1.0 around 0.5, DRW off or on")

    def __init__(self, counts: ClassCounts, max_margin: float = 0.5, scale: float = 30.0, drw: bool = False,
                 drw_start: float = 0.8):
        if not max_margin > 0 or not scale > 0 or not 0 <= drw_start <= 1:
            raise CritBenchError(f"LDAM needs max_margin > 0, scale > 0, 0 <= drw_start <= 1; got "
                                 f"{max_margin}, {scale}, {drw_start}")
        if min(counts.n_pos, counts.n_neg) < 1:
            raise CritBenchError(f"LDAM needs both classes in train, got {counts}")
        c = max_margin / min(counts.n_pos, counts.n_neg) ** -0.25
        self.margins = torch.tensor([c * counts.n_neg ** -0.25, c * counts.n_pos ** -0.25])
        self.scale = scale
        self.weights = torch.tensor(drw_class_weights(counts.sizes)) if drw else None
        self.drw_start = drw_start
        self.reweighting = False

    def score(self, cosines: torch.Tensor) -> torch.Tensor:
        """The class-1 cosine: what alm-dnn ranks (`train_out[:, 1]`, `val_out[1]`) and constrains."""
        return cosines[:, 1]

    def set_epoch(self, epoch: int, epochs: int) -> None:
        """Epoch `epoch` (from 0) of `epochs` comes next: DRW is on from `drw_start * epochs`."""
        self.reweighting = self.weights is not None and drw_is_on(epoch, self.drw_start, epochs)

    def __call__(self, cosines, y):
        target = y.long()
        true_class = F.one_hot(target, 2).to(cosines.dtype)
        shifted = cosines - true_class * self.margins.to(cosines.device)
        weight = self.weights.to(cosines) if self.reweighting else None
        return F.cross_entropy(self.scale * shifted, target, weight=weight)
