"""Every base loss against a value worked out by hand on one tiny batch.

Batch: logits x = (1.0, -0.5, 0.5), targets y = (1, 0, 0). With s = sigmoid:
s(1) = 0.731059, s(-0.5) = 0.377541, s(0.5) = 0.622459, so -log s(1) = 0.313262,
-log(1 - s(-0.5)) = 0.474077, -log(1 - s(0.5)) = 0.974077. Each expected value below is the
formula of the loss written out on these numbers (computed with a calculator, not the code).
"""
from __future__ import annotations

import itertools
import math

import pytest
import torch

from benchmarks.core.errors import CritBenchError
from benchmarks.methods import resolve_params
from benchmarks.methods.losses import (ClassCounts, _per_class, class_weights, create_loss, get_loss, list_losses,
                                       loss_hyperparameters)

X = torch.tensor([1.0, -0.5, 0.5])
Y = torch.tensor([1.0, 0.0, 0.0])
COUNTS = ClassCounts(n_pos=10, n_neg=90)


def loss_input(name: str, x: torch.Tensor) -> torch.Tensor:
    """What loss `name` takes for logits `x`: LDAM's two cosines, with 30 (cos_1 - cos_0) = x."""
    if get_loss(name).head == "cosine_pair":
        return torch.stack([torch.zeros_like(x), x / 30], 1)
    return x

HAND = {
    # (0.313262 + 0.474077 + 0.974077) / 3
    ("bce", ()): 0.587139,
    # (0.268941^0.5 * 0.313262 + 0.377541^0.5 * 0.474077 + 0.622459^0.5 * 0.974077) / 3
    ("s_fl", ()): 0.407419,
    # (0.268941^2 * 0.313262 + 0.377541^2 * 0.474077 + 0.622459^2 * 0.974077) / 3
    ("s_fl", (("gamma", 2.0),)): 0.155881,
    # (0.313262 + 0.377541 * 0.474077 + 0.622459 * 0.974077) / 3
    ("a_fl", ()): 0.366189,
    # (-log s(0.5) - log(1 - s(0)) - log(1 - s(1))) / 3 = (0.474077 + 0.693147 + 1.313262) / 3
    ("s_lm", ()): 0.826829,
    # (-log s(-1) + 0.474077 + 0.974077) / 3 = (1.313262 + 0.474077 + 0.974077) / 3
    ("a_lm", (("margin", 2.0),)): 0.920472,
    # positive weight c n_neg / n_pos = 1/3 * 90 / 10 = 3: (3 * 0.313262 + 0.474077 + 0.974077) / 3
    ("wbce", ()): 0.795980,
    # ENS weights, beta 0.99: (1 - b) / (1 - b^n) = 0.010679 (n=90), 0.104811 (n=10); scaled to sum
    # to 2: 0.184 / 1.723... exactly 0.276798 and 1.723202: (1.723202 * 0.313262 + 0.276798 *
    # (0.474077 + 0.974077)) / 3
    ("cb_bce", ()): 0.313553,
    # alpha 0.25, gamma 2: (0.25 * 0.268941^2 * 0.313262 + 0.75 * (0.377541^2 * 0.474077 +
    # 0.622459^2 * 0.974077)) / 3
    ("focal", ()): 0.113134,
    # FNE = (1 - 0.731059)^2 = 0.072329; FPE = (0.377541^2 + 0.622459^2) / 2 = 0.264996
    ("mfe", ()): 0.337326,
    ("msfe", ()): 0.075455,  # 0.264996^2 + 0.072329^2
    # pairs (1, -0.5) and (1, 0.5): ((1 - 0.353518)^2 + (1 - 0.108600)^2) / 2
    ("mbauc", ()): 0.606267,
}


@pytest.mark.parametrize("name, hyper", list(HAND))
def test_loss_matches_hand_value(name, hyper):
    loss = create_loss(name, COUNTS, **dict(hyper))(X, Y)
    assert loss.ndim == 0
    assert float(loss) == pytest.approx(HAND[(name, hyper)], abs=2e-6)


def test_every_loss_has_a_hand_value():
    assert {name for name, _ in HAND} | {"ldam"} == set(list_losses())


def test_ldam_margins_and_drw():
    # n_pos 16, n_neg 81: n^(-1/4) = 1/2 and 1/3; C makes the larger margin 0.5, so m = 0.5, 1/3.
    # A 2-class cross-entropy on s (cos - m [true class]) with d = s (cos_1 - cos_0), s = 30:
    # softplus(-(d - 15)) for the positive, softplus(d + 10) for negatives:
    # (softplus(14) + softplus(9.5) + softplus(10.5)) / 3.
    counts = ClassCounts(n_pos=16, n_neg=81)
    cosines = loss_input("ldam", X)
    plain = (14 + math.log1p(math.exp(-14)) + 9.5 + math.log1p(math.exp(-9.5))
             + 10.5 + math.log1p(math.exp(-10.5))) / 3
    assert float(create_loss("ldam", counts)(cosines, Y)) == pytest.approx(plain, abs=1e-5)
    drw = create_loss("ldam", counts, drw=True, drw_start=0.5)
    assert float(drw(cosines, Y)) == pytest.approx(plain, abs=1e-5)  # before epoch 5: unweighted
    drw.set_epoch(4, 10)
    assert float(drw(cosines, Y)) == pytest.approx(plain, abs=1e-5)
    drw.set_epoch(5, 10)  # drw_start 0.5 of a 10-epoch budget
    # ENS weights, beta 0.9999: 1e-4 / (1 - 0.9999^16) = 6.2530e-3, 1e-4 / (1 - 0.9999^81) =
    # 1.2392e-3; scaled to sum to 2: w_pos = 1.669207, w_neg = 0.330793
    w_pos, w_neg = class_weights("ens", counts.sizes, 0.9999)[::-1]
    assert (w_pos, w_neg) == pytest.approx((1.669207, 0.330793), abs=1e-5)
    terms = [14 + math.log1p(math.exp(-14)), 9.5 + math.log1p(math.exp(-9.5)), 10.5 + math.log1p(math.exp(-10.5))]
    weighted = (w_pos * terms[0] + w_neg * (terms[1] + terms[2])) / (w_pos + 2 * w_neg)
    assert float(drw(cosines, Y)) == pytest.approx(weighted, abs=1e-5)
    assert float(drw(cosines, Y)) == pytest.approx(12.864633, abs=1e-4)


def test_class_weight_schemes():
    # INS: 1/90 and 1/10 scaled to sum 2 -> 0.2 and 1.8; ISNS: 1/sqrt(90), 1/sqrt(10) -> 0.5, 1.5
    assert class_weights("ins", COUNTS.sizes) == pytest.approx([0.2, 1.8])
    assert class_weights("isns", COUNTS.sizes) == pytest.approx([0.5, 1.5])
    assert class_weights("ens", COUNTS.sizes, 0.99) == pytest.approx([0.276798, 1.723202], abs=1e-6)
    expected = (0.2 * (0.474077 + 0.974077) + 1.8 * 0.313262) / 3
    assert float(create_loss("cb_bce", COUNTS, weighting="ins")(X, Y)) == pytest.approx(expected, abs=2e-6)


def test_pairwise_and_classwise_losses_match_plain_loops():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(17, generator=gen)
    y = (torch.rand(17, generator=gen) < 0.3).float()
    s = [1 / (1 + math.exp(-v)) for v in x.tolist()]
    pos = [i for i in range(17) if y[i] == 1]
    neg = [i for i in range(17) if y[i] == 0]
    pairs = [(1 - (s[i] - s[j])) ** 2 for i, j in itertools.product(pos, neg)]
    assert float(create_loss("mbauc")(x, y)) == pytest.approx(sum(pairs) / len(pairs), abs=1e-6)
    fne = sum((1 - s[i]) ** 2 for i in pos) / len(pos)
    fpe = sum(s[j] ** 2 for j in neg) / len(neg)
    assert float(create_loss("mfe")(x, y)) == pytest.approx(fpe + fne, abs=1e-6)
    assert float(create_loss("msfe")(x, y)) == pytest.approx(fpe ** 2 + fne ** 2, abs=1e-6)


def test_single_class_batches_are_finite_and_zero_for_pairwise():
    x, negatives = torch.tensor([0.3, -1.2]), torch.zeros(2)
    assert float(create_loss("mbauc")(x, negatives)) == 0.0
    for name in list_losses():
        counts = ClassCounts(n_pos=5, n_neg=50)
        assert math.isfinite(float(create_loss(name, counts)(loss_input(name, x), negatives)))


def test_losses_are_differentiable_and_large_logits_stay_finite():
    x = torch.tensor([80.0, -80.0, 30.0, -30.0], requires_grad=True)
    y = torch.tensor([0.0, 1.0, 1.0, 0.0])
    for name in list_losses():
        loss = create_loss(name, ClassCounts(n_pos=5, n_neg=50))(loss_input(name, x), y)
        (grad,) = torch.autograd.grad(loss, x)
        assert math.isfinite(float(loss.detach())) and torch.isfinite(grad).all(), name


def test_hyperparameters_come_from_the_signature_and_are_checked():
    assert loss_hyperparameters("s_fl") == {"gamma": 0.5}
    assert loss_hyperparameters("wbce") == {"c": pytest.approx(1 / 3)}
    with pytest.raises(CritBenchError, match="no hyperparameter"):
        create_loss("bce", COUNTS, gamma=1.0)
    with pytest.raises(CritBenchError, match="gamma"):
        create_loss("s_fl", COUNTS, gamma=-1.0)
    with pytest.raises(CritBenchError, match="weighting"):
        create_loss("cb_bce", COUNTS, weighting="nope")


def test_cb_bce_under_the_alm_presets_keeps_the_reference_raw_weights():
    """alm-dnn utils/custom_losses.py, ClassBalancedBCE:
        weight_tensor[(t).nonzero()] = (1 - self.beta) / (1 - self.beta**self.n_1)
        cb_BCE = torch.mean(weight_tensor * BCE(x, t))
    -- no normalization of the weights to sum 2."""
    params = resolve_params("cb_bce", {"preset": "c10_1to100"})
    loss = create_loss("cb_bce", COUNTS, beta=params["beta"], weighting=params["weighting"], normalize=params["normalize"])
    raw = _per_class(Y, 0.01 / (1 - 0.99 ** 90), 0.01 / (1 - 0.99 ** 10))
    reference = (raw * torch.nn.functional.binary_cross_entropy_with_logits(X, Y, reduction="none")).mean()
    assert float(loss(X, Y)) == pytest.approx(float(reference), rel=1e-6)
    assert resolve_params("cb_bce", {})["normalize"] is True  # the default stays Cui et al.'s scale

