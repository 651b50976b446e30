"""Reported metrics, from scikit-learn on CPU numpy arrays.

Operating points (recipes.md, "Metric conventions"): `tpr_at_fpr` f is the best TPR among the
real thresholds whose FPR <= f, and `fpr_at_tpr` t the lowest FPR among the real thresholds whose
TPR >= t, both read from `roc_curve(..., drop_intermediate=False)` (every achievable point, ties
included). Both pick the threshold on the scored split itself: the best case at that operating point.

Deployable operating points (`operating_points`) choose the threshold on validation only and read
test at it: for a target TPR t, the largest threshold whose validation TPR >= t; for an FPR bound f,
the smallest threshold whose validation FPR <= f. A sample is predicted positive iff its score >=
the threshold (scikit-learn's `roc_curve` rule). The candidate thresholds are the distinct validation
scores, and just above the highest (`np.nextafter`) for "nothing positive", which `roc_curve` writes
as infinity.

Calibration (`calibration`): the Brier score and the expected calibration error over `ECE_BINS`
equal-width bins of sigmoid(score), for methods whose score is a probability logit
(`Method.score_is_probability_logit`).

Multi-class runs (`--task multiclass`) add, on every label, what MedMNIST v2 reports (`class_metrics`:
ACC and AUC as `medmnist.evaluator` computes them), the balanced accuracy and each class's recall,
and the test confusion matrix (`confusion`).

Two-way partial AUC (`pauc_two_way`, the region SOTA-s optimizes): with ROC(f) the TPR at FPR f,
the curve `roc_curve` draws (straight segments between its points, diagonal across ties, as
`roc_auc_score` integrates it),

    pauc_two_way = 1 / ((1 - alpha) beta) * integral over f in [0, beta] of max(ROC(f) - alpha, 0) df,

the area of the ROC region with FPR in [0, beta] and TPR in [alpha, 1], over that region's area:
1 for a perfect ranking, 0 when TPR never reaches alpha at FPR <= beta. alpha = `TWO_WAY_MIN_TPR`,
beta = `TWO_WAY_MAX_FPR`. Without ties it equals LibAUC's `pauc_roc_score(max_fpr=beta,
min_tpr=alpha)` (the AUC of the lowest-scored (1 - alpha) n_pos positives against the highest-scored
beta n_neg negatives) when those counts are whole. Average precision (`ap`) is scikit-learn's.

`fpr_at_tpr_alm_paper` is a different estimator, the one of Sangalli et al.'s released code, kept
only to compare with that paper's tables (see `alm_paper_fpr_at_tpr`); it is never a leaderboard
column.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import expit
from sklearn.metrics import (accuracy_score, average_precision_score, balanced_accuracy_score, brier_score_loss,
                             confusion_matrix, recall_score, roc_auc_score, roc_curve)

FPR_LEVELS = (0.01, 0.05, 0.1)
TPR_LEVELS = (0.9, 0.95, 0.98)
PARTIAL_FPR = 0.1
# The two-way pAUC's region: LibAUC's SOTA-s recipe evaluates it at these levels
# (examples/trainer_recipes/image_trainer/config_tpauc_Cifar10.yaml: `max_fpr: 0.3`, `min_tpr: 0.7`).
TWO_WAY_MIN_TPR, TWO_WAY_MAX_FPR = 0.7, 0.3
ECE_BINS = 15


def _key(level: float) -> str:
    return f"{level:g}"


def tpr_at_fpr(fpr: np.ndarray, tpr: np.ndarray, level: float) -> float:
    return float(tpr[fpr <= level + 1e-12].max())


def fpr_at_tpr(fpr: np.ndarray, tpr: np.ndarray, level: float) -> float:
    return float(fpr[tpr >= level - 1e-12].min())


def two_way_partial_auc(fpr: np.ndarray, tpr: np.ndarray, min_tpr: float, max_fpr: float) -> float:
    """The normalized ROC area with FPR in [0, `max_fpr`] and TPR in [`min_tpr`, 1] (module
    docstring), from `roc_curve`'s points. Written here because scikit-learn has no two-way pAUC
    (LibAUC's estimator selects samples instead of integrating the curve; see the module docstring).
    Each segment is cut at FPR = `max_fpr`; the integral of the positive part of a linear function
    over width w from y0 to y1 is w (y0 + y1) / 2 when both are >= 0, w max(y0, y1)^2 / (2 |y1 - y0|)
    when the segment crosses 0, and 0 otherwise."""
    start, stop = fpr[:-1], np.minimum(fpr[1:], max_fpr)
    kept = stop > start  # vertical segments and those beyond max_fpr have no width
    x0, x1, width = start[kept], fpr[1:][kept], (stop - start)[kept]
    y0 = tpr[:-1][kept] - min_tpr
    y1 = y0 + (tpr[1:][kept] - min_tpr - y0) * width / (x1 - x0)
    crossing = (y0 < 0) != (y1 < 0)
    rise = np.where(crossing, np.abs(y1 - y0), 1.0)  # > 0 wherever it divides
    area = np.where(crossing, width * np.maximum(y0, y1) ** 2 / (2 * rise), width * np.maximum(y0 + y1, 0) / 2)
    return float(area.sum() / ((1 - min_tpr) * max_fpr))


def alm_paper_fpr_at_tpr(y_true, y_score, level: float) -> float:
    """FPR at TPR `level` as alm-dnn's `utils/final_ensembling_results.py` computes it, step by step:

        fpr, tpr, _ = roc_curve(gt_labels, ave_logits, pos_label=1)   # drop_intermediate=True
        if fpr[tpr == tpr_int].size != 0: ... (fpr[tpr == tpr_int])[0]
        elif fpr[np.where(np.around(tpr, decimals=2) == tpr_int)].size != 0: ...[0]
        elif <both tpr_int - 0.01 and tpr_int + 0.01 found after rounding>: the mean of those two FPRs
        else: avg_interesting_fpr = 0

    The float comparisons are the reference's own (`0.95 - 0.01` is 0.9399999999999999, which a
    rounded TPR never equals), and the last fallback reports 0: a flattering artefact, reproduced
    for comparison with the paper and not used anywhere else. Written here because the estimator
    exists only in that script."""
    fpr, tpr, _ = roc_curve(np.asarray(y_true), np.asarray(y_score), pos_label=1)
    rounded = np.around(tpr, decimals=2)
    if fpr[tpr == level].size:
        return float(fpr[tpr == level][0])
    if fpr[rounded == level].size:
        return float(fpr[rounded == level][0])
    below, above = fpr[rounded == level - 0.01], fpr[rounded == level + 0.01]
    if below.size and above.size:
        return float((below[0] + above[0]) / 2)
    return 0.0


def binary_metrics(y_true, y_score, threshold: float = 0.0) -> dict:
    """AUC, TPR at fixed FPR, FPR at fixed TPR, standardized pAUC (FPR <= 0.1), two-way pAUC,
    average precision and accuracy.

    `y_score` are logits (so `threshold=0` is probability 0.5). Non-finite scores give NaN metrics
    rather than an exception, so a diverged model is never mistaken for a good one."""
    y_true = np.asarray(y_true, dtype=np.int64)
    y_score = np.asarray(y_score, dtype=np.float64)
    if not np.isfinite(y_score).all():
        nan = math.nan
        return {
            "auc": nan,
            "tpr_at_fpr": {_key(f): nan for f in FPR_LEVELS},
            "fpr_at_tpr": {_key(t): nan for t in TPR_LEVELS},
            "fpr_at_tpr_alm_paper": {_key(t): nan for t in TPR_LEVELS},
            f"spauc_{_key(PARTIAL_FPR)}": nan,
            "pauc_two_way": nan,
            "ap": nan,
            "acc": nan,
        }
    fpr, tpr, _ = roc_curve(y_true, y_score, drop_intermediate=False)
    return {
        "auc": float(roc_auc_score(y_true, y_score)),
        "tpr_at_fpr": {_key(f): tpr_at_fpr(fpr, tpr, f) for f in FPR_LEVELS},
        "fpr_at_tpr": {_key(t): fpr_at_tpr(fpr, tpr, t) for t in TPR_LEVELS},
        "fpr_at_tpr_alm_paper": {_key(t): alm_paper_fpr_at_tpr(y_true, y_score, t) for t in TPR_LEVELS},
        f"spauc_{_key(PARTIAL_FPR)}": float(roc_auc_score(y_true, y_score, max_fpr=PARTIAL_FPR)),
        "pauc_two_way": two_way_partial_auc(fpr, tpr, TWO_WAY_MIN_TPR, TWO_WAY_MAX_FPR),
        "ap": float(average_precision_score(y_true, y_score)),
        "acc": float(((y_score >= threshold) == y_true).mean()),
    }


def _rates(y_true: np.ndarray, y_score: np.ndarray, threshold: float) -> dict:
    """TPR and FPR when score >= `threshold` predicts positive (NaN for a NaN threshold or score)."""
    if not (math.isfinite(threshold) and np.isfinite(y_score).all()):
        return {"tpr": math.nan, "fpr": math.nan}
    positive = y_score >= threshold
    return {"tpr": float(positive[y_true == 1].mean()), "fpr": float(positive[y_true == 0].mean())}


def validation_thresholds(val_y, val_scores) -> dict:
    """`{"min_tpr": {"0.9": threshold, ...}, "max_fpr": {"0.01": threshold, ...}}` from validation
    alone (module docstring); NaN thresholds for non-finite scores."""
    val_y, val_scores = np.asarray(val_y, dtype=np.int64), np.asarray(val_scores, dtype=np.float64)
    if not np.isfinite(val_scores).all():
        return {"min_tpr": {_key(t): math.nan for t in TPR_LEVELS}, "max_fpr": {_key(f): math.nan for f in FPR_LEVELS}}
    fpr, tpr, thresholds = roc_curve(val_y, val_scores, drop_intermediate=False)  # thresholds descending
    thresholds[0] = np.nextafter(val_scores.max(), np.inf)  # roc_curve's "nothing positive" is +inf
    return {"min_tpr": {_key(t): float(thresholds[np.argmax(tpr >= t - 1e-12)]) for t in TPR_LEVELS},
            "max_fpr": {_key(f): float(thresholds[np.flatnonzero(fpr <= f + 1e-12)[-1]]) for f in FPR_LEVELS}}


def operating_points(val_y, val_scores, test_y, test_scores) -> dict:
    """For each validation target (TPR >= 0.9/0.95/0.98, FPR <= 0.01/0.05/0.1), the threshold chosen
    on validation and the TPR and FPR it gives on validation and on test:
    `{"min_tpr": {"0.95": {"threshold", "val": {"tpr", "fpr"}, "test": {"tpr", "fpr"}}, ...}, "max_fpr": ...}`."""
    splits = {"val": (np.asarray(val_y, dtype=np.int64), np.asarray(val_scores, dtype=np.float64)),
              "test": (np.asarray(test_y, dtype=np.int64), np.asarray(test_scores, dtype=np.float64))}
    return {kind: {level: {"threshold": threshold, **{name: _rates(y, s, threshold) for name, (y, s) in splits.items()}}
                   for level, threshold in levels.items()}
            for kind, levels in validation_thresholds(val_y, val_scores).items()}


def expected_calibration_error(y_true: np.ndarray, probability: np.ndarray, bins: int = ECE_BINS) -> float:
    """sum over `bins` equal-width bins of probability ([0, 1/bins), ..., [1 - 1/bins, 1]) of
    |mean label - mean probability| weighted by the bin's share of samples (Guo et al. 2017, binary).
    Written here because scikit-learn has no ECE (`calibration_curve` drops the bin sizes)."""
    index = np.minimum((probability * bins).astype(np.int64), bins - 1)
    counts = np.bincount(index, minlength=bins)
    gaps = np.abs(np.bincount(index, y_true, bins) - np.bincount(index, probability, bins))
    return float(gaps.sum() / counts.sum())


def calibration(y_true, y_score, bins: int = ECE_BINS) -> dict:
    """Brier score and `ece_<bins>` of sigmoid(`y_score`), for scores that are probability logits;
    NaN for non-finite scores."""
    y_true, y_score = np.asarray(y_true, dtype=np.int64), np.asarray(y_score, dtype=np.float64)
    if not np.isfinite(y_score).all():
        return {"brier": math.nan, f"ece_{bins}": math.nan}
    probability = expit(y_score)
    return {"brier": float(brier_score_loss(y_true, probability)),
            f"ece_{bins}": expected_calibration_error(y_true, probability, bins)}


def medmnist_task(num_classes: int, multilabel: bool) -> str:
    """The `task` of medmnist's INFO that its evaluator branches on."""
    return "multi-label, binary-class" if multilabel else "binary-class" if num_classes == 2 else "multi-class"


def medmnist_auc(classes: np.ndarray, probabilities: np.ndarray, multilabel: bool) -> float:
    """MedMNIST v2's AUC, as `medmnist.evaluator.getAUC` computes it (tests compare the two; medmnist
    itself imports torch, which this module may not): two classes, the AUC of the last column;
    otherwise the unweighted mean over the classes (findings) of the one-vs-rest AUC. NaN where a
    class (finding) has no positive or no negative in the split, which getAUC cannot score."""
    num_classes = probabilities.shape[1]
    if medmnist_task(num_classes, multilabel) == "binary-class":
        columns = [(classes == 1, probabilities[:, -1])]
    else:
        columns = [(classes[:, k] if multilabel else classes == k, probabilities[:, k]) for k in range(num_classes)]
    if any(len(np.unique(truth)) < 2 for truth, _ in columns):
        return math.nan
    return float(np.mean([roc_auc_score(truth, score) for truth, score in columns]))


def medmnist_acc(classes: np.ndarray, probabilities: np.ndarray, multilabel: bool) -> float:
    """MedMNIST v2's ACC, as `medmnist.evaluator.getACC`: the argmax's accuracy; two classes, the last
    column's probability > 0.5; multi-label, the mean over the findings of the accuracy of p > 0.5."""
    task = medmnist_task(probabilities.shape[1], multilabel)
    if task == "multi-label, binary-class":
        return float(np.mean([accuracy_score(classes[:, k], probabilities[:, k] > 0.5) for k in range(classes.shape[1])]))
    if task == "binary-class":
        return float(accuracy_score(classes, probabilities[:, -1] > 0.5))
    return float(accuracy_score(classes, probabilities.argmax(1)))


def class_metrics(classes, probabilities, multilabel: bool) -> dict:
    """On a split's class labels (label indices `(N,)`, or multi-label findings `(N, K)`) and each
    class's probability `(N, K)`: MedMNIST v2's `acc` and `auc` (`medmnist_acc`, `medmnist_auc`), the
    `balanced_accuracy` and each class's `recall` of the predicted class (argmax; multi-label: each
    finding's p > 0.5, its balanced accuracy averaged over the findings), NaN for a class without
    samples. NaN everywhere for non-finite probabilities."""
    classes, probabilities = np.asarray(classes, dtype=np.int64), np.asarray(probabilities, dtype=np.float64)
    num_classes = probabilities.shape[1]
    if not np.isfinite(probabilities).all():
        return {"acc": math.nan, "auc": math.nan, "balanced_accuracy": math.nan, "recall": [math.nan] * num_classes}
    if multilabel:
        predicted = probabilities > 0.5
        recall = [float(recall_score(classes[:, k], predicted[:, k], zero_division=np.nan)) for k in range(num_classes)]
        balanced = float(np.mean([balanced_accuracy_score(classes[:, k], predicted[:, k]) for k in range(num_classes)]))
    else:
        predicted = probabilities.argmax(1)
        recall = recall_score(classes, predicted, labels=list(range(num_classes)), average=None, zero_division=np.nan)
        recall = [float(value) for value in recall]
        balanced = float(balanced_accuracy_score(classes, predicted))  # the mean recall of the classes present
    return {"acc": medmnist_acc(classes, probabilities, multilabel), "auc": medmnist_auc(classes, probabilities, multilabel),
            "balanced_accuracy": balanced, "recall": recall}


SHOT_GROUPS = ("many", "medium", "few")


def shot_groups(train_counts: list[int], thresholds: tuple[int, int]) -> dict[str, list[int]]:
    """The class indices of each long-tail group by training images per class: `many` above
    thresholds[0], `few` below thresholds[1], `medium` between (Liu et al. 2019's grouping)."""
    many_above, few_below = thresholds
    groups = {name: [] for name in SHOT_GROUPS}
    for index, count in enumerate(train_counts):
        groups["many" if count > many_above else "few" if count < few_below else "medium"].append(index)
    return groups


def group_accuracies(recall: list[float], groups: dict[str, list[int]]) -> dict[str, dict]:
    """Each group's classes and its accuracy: the mean of its classes' recall (on a balanced split,
    the accuracy on its samples); None for an empty group."""
    return {name: {"classes": members, "acc": float(np.mean([recall[i] for i in members])) if members else None}
            for name, members in groups.items()}


def confusion(classes, probabilities) -> list[list[int]] | None:
    """The confusion matrix of the argmax class (rows: true label, columns: predicted), scikit-learn's;
    None for non-finite probabilities."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if not np.isfinite(probabilities).all():
        return None
    labels = list(range(probabilities.shape[1]))
    return confusion_matrix(np.asarray(classes, dtype=np.int64), probabilities.argmax(1), labels=labels).tolist()


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    path: tuple[str, ...]
    higher_is_better: bool = True

    def value(self, metrics: dict) -> float:
        for part in self.path:
            metrics = (metrics or {}).get(part)
        return math.nan if metrics is None else float(metrics)


# The leaderboard's columns: (key, label, path into a metrics dict, direction).
METRICS = (
    Metric("auc", "AUC", ("auc",)),
    Metric("tpr_at_fpr_0.1", "TPR@FPR=0.1", ("tpr_at_fpr", "0.1")),
    Metric("fpr_at_tpr_0.95", "FPR@TPR=0.95", ("fpr_at_tpr", "0.95"), higher_is_better=False),
)

# Labels of every key of `binary_metrics` (`tpr_at_fpr.0.1` -> "TPR@FPR=0.1"), for per-run tables.
METRIC_LABELS = {"auc": "AUC", "tpr_at_fpr": "TPR@FPR={}", "fpr_at_tpr": "FPR@TPR={}",
                 "fpr_at_tpr_alm_paper": "FPR@TPR={} (ALM paper's estimator, for comparison only)",
                 "spauc_0.1": "standardized pAUC (FPR≤0.1)",
                 "pauc_two_way": f"two-way pAUC (TPR≥{TWO_WAY_MIN_TPR:g}, FPR≤{TWO_WAY_MAX_FPR:g})",
                 "ap": "average precision", "acc": "accuracy (logit ≥ 0)"}


def metric_label(key: str) -> str:
    """`tpr_at_fpr.0.1` -> `TPR@FPR=0.1`; unknown keys unchanged."""
    if key in METRIC_LABELS:
        return METRIC_LABELS[key]
    head, _, level = key.partition(".")
    label = METRIC_LABELS.get(head, key)
    return label.format(level) if "{}" in label else label
