"""Run records: their types and the one check of a complete record.

Records are JSON objects, read back as dicts by readers old and new, and open: a dataset's record
and a method's report add keys of their own. So their types are TypedDicts, and `record_problem`
walks them: a new field is declared once, in its type, and checked by its key path from then on.
Keys marked `NotRequired` are checked when present (records of older versions lack them);
`Since(version)` makes one required from that record version on. Torch-free, so that the report and
the suite planner read records without importing torch.
"""
from __future__ import annotations

import json
import traceback
import types
from dataclasses import dataclass
from functools import cache
from typing import Literal, Union, get_args, get_origin

from typing_extensions import Annotated, NoExtraItems, NotRequired, TypedDict, get_type_hints, is_typeddict

from benchmarks.core.config import RunConfig
from benchmarks.core.errors import DivergedError
from benchmarks.core.machine import base_environment, utc_now

RECORD_VERSION = 2  # version 2 made the test split's md5 and the finish time required
RECORD_MARKERS = {"record_version", "run_id", "status"}  # a JSON object with none of them is some other file


@dataclass(frozen=True)
class Since:
    """On a NotRequired key: required from record version `version` on, checked when present before."""

    version: int


class SplitCount(TypedDict):
    n: int
    positives: int
    class_counts: NotRequired[list[int]]  # samples per class (--task multiclass)


class Splits(TypedDict):
    train: SplitCount
    val: SplitCount
    test: SplitCount


class SplitMd5(TypedDict):
    test: str  # the fingerprint of the test set that the report pools runs by


class HeldOutFiles(TypedDict):
    test: NotRequired[list | None]


class DatasetFacts(TypedDict):
    """What every dataset's `record()` holds (each dataset adds its own keys: name, classes...)."""

    source_md5: str | None
    tensor_md5: str | None
    shape: list
    splits: Splits
    split_md5: NotRequired[Annotated[SplitMd5, Since(2)]]
    held_out_files: NotRequired[HeldOutFiles | None]


class RecordedConfig(TypedDict):
    """The keys of `RunConfig.to_dict()` a record must hold: what names the run and its data (the
    other RunConfig fields are kept as written)."""

    dataset: str
    method: str
    seed: int
    params: dict
    dataset_params: dict | None
    size: int | None
    imbalance: float | None
    max_train_samples: int | None


MetricValue = float | None | dict[str, float | None]  # alone (`auc`) or by level (`tpr_at_fpr.0.1`)


class Metrics(TypedDict, extra_items=MetricValue):
    """A split's metrics (`benchmarks.core.metrics.binary_metrics`)."""

    auc: float | None
    pauc_two_way: NotRequired[float | None]  # two-way partial AUC (TPR >= 0.7, FPR <= 0.3)
    ap: NotRequired[float | None]  # average precision


class HistoryEntry(TypedDict, extra_items=float | bool | str | None):
    """One epoch of training; the other keys are the method's state summary (ALM's mu, AUCM's prior)."""

    epoch: int
    stage: NotRequired[str]
    train_loss: float | None
    val_auc: float | None
    lr: float | None
    seconds: float | None


class OperatingPoints(TypedDict):
    min_tpr: dict
    max_fpr: dict


class Calibration(TypedDict):
    val: dict
    test: dict


class TestScores(TypedDict):
    y_true: list[Literal[0, 1]]
    y_score: list[float | None]


class ClassMetrics(TypedDict):
    """A split's metrics on every label (`benchmarks.core.metrics.class_metrics`)."""

    acc: float | None  # MedMNIST v2's ACC
    auc: float | None  # MedMNIST v2's AUC
    balanced_accuracy: float | None
    recall: list[float | None]  # per class, in the dataset's class_names order
    groups: NotRequired[dict[str, dict]]  # long-tailed data: many/medium/few -> {"classes", "acc"}


class LastEpochResults(TypedDict):
    """The last epoch's weights on every label (what the long-tail literature reports beside the best)."""

    epoch: int
    val: ClassMetrics
    test: ClassMetrics


class ClassResults(TypedDict):
    """A --task multiclass run's results on every label, of the selected checkpoint, and of the last
    epoch's weights."""

    val: ClassMetrics
    test: ClassMetrics
    confusion_matrix: list[list[int]] | None  # test; rows true label, columns predicted (None: multi-label)
    last_epoch: NotRequired[LastEpochResults]


class FitResult(TypedDict):
    """What `Trainer.fit` returns, the body of a run record (a method's `report` adds its own keys).
    NotRequired: keys records of older CritBench versions lack."""

    history: list[HistoryEntry]
    best_epoch: NotRequired[int | None]
    best_stage: NotRequired[str]
    stopped_early: NotRequired[bool]
    resumed_from_epoch: NotRequired[int | None]  # None: trained from the start
    val: Metrics
    test: Metrics
    operating_points: NotRequired[OperatingPoints]
    calibration: NotRequired[Calibration | None]  # None: the method's score is no probability logit
    test_scores: TestScores
    multiclass: NotRequired[ClassResults]  # --task multiclass only


class RunRecord(FitResult):
    """A complete run's record, as `benchmarks.engine.pipeline.run_benchmark` builds it."""

    record_version: int
    run_id: str
    status: Literal["complete"]
    config: RecordedConfig
    dataset: DatasetFacts
    env: dict  # base_environment() and the device's description
    seconds: float | None
    finished_at: NotRequired[Annotated[str, Since(2)]]
    command: NotRequired[str]  # the command line that ran it


class FailureRecord(TypedDict):
    """The record of a run that diverged or crashed (shown as it is: never checked)."""

    record_version: int
    run_id: str
    status: Literal["failed"]
    failure: Literal["diverged", "crashed"]
    reason: str
    traceback: str
    config: dict
    dataset: DatasetFacts | None  # None: failed before its data was loaded
    env: dict
    failed_at: str
    seconds: float | None
    command: NotRequired[str]
    history: NotRequired[list[HistoryEntry]]  # diverged: the epochs finished before the non-finite loss


HISTORY_FIELDS = tuple(HistoryEntry.__annotations__)  # the trainer's own; other history keys are the method's
JSON_TYPES = {  # a Python type of the record types -> its JSON name and check
    str: ("string", lambda value: isinstance(value, str)),
    int: ("integer", lambda value: isinstance(value, int) and not isinstance(value, bool)),
    float: ("number", lambda value: isinstance(value, (int, float)) and not isinstance(value, bool)),
    bool: ("boolean", lambda value: isinstance(value, bool)),
    list: ("list", lambda value: isinstance(value, list)),
    dict: ("object", lambda value: isinstance(value, dict)),
}


def failure_record(config: RunConfig, identity: str, error: BaseException, seconds: float | None,
                   dataset: dict | None = None, env: dict | None = None, command: str | None = None) -> FailureRecord:
    """The record of a run that diverged or crashed: status "failed", reason and traceback."""
    record = FailureRecord(
        record_version=RECORD_VERSION,
        run_id=identity,
        status="failed",
        failure="diverged" if isinstance(error, DivergedError) else "crashed",
        reason=f"{type(error).__name__}: {error}",
        traceback="".join(traceback.format_exception(error)),
        config=config.to_dict(),
        dataset=dataset,
        env=env or base_environment(),
        failed_at=utc_now(),
        seconds=seconds,
    )
    if command is not None:
        record["command"] = command
    if isinstance(error, DivergedError) and error.history:
        record["history"] = error.history
    return record


def shown(value, width: int = 40) -> str:
    """`value` as JSON for a message, cut to `width` characters (an object or array by its kind)."""
    if isinstance(value, (dict, list)):
        return json_kind(value)
    text = json.dumps(value)
    return text if len(text) <= width else text[:width - 3] + "..."


def json_kind(value) -> str:
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    kinds = {dict: "an object", list: "an array", str: "a string"}
    return next((name for kind, name in kinds.items() if isinstance(value, kind)), "a number")


@cache
def key_types(typed: type) -> dict[str, tuple[object, int | None]]:
    """Each key of TypedDict `typed`: (its type, the record version from which it is required; None:
    checked when present)."""
    keys = {}
    for key, hint in get_type_hints(typed, include_extras=True).items():
        since = 1
        if get_origin(hint) is NotRequired:
            (hint,), since = get_args(hint), None
        if get_origin(hint) is Annotated:
            hint, *marks = get_args(hint)
            since = next((mark.version for mark in marks if isinstance(mark, Since)), since)
        keys[key] = (hint, since)
    return keys


def plain(kind) -> type:
    """The Python type a record type is checked as (list[int] -> list, a TypedDict -> dict)."""
    return dict if is_typeddict(kind) else get_origin(kind) or kind


def accepts(kind, value) -> bool:
    """Whether `value` is of `kind`'s JSON type, not looking inside objects and lists."""
    if get_origin(kind) is Literal:
        return any(type(value) is type(option) and value == option for option in get_args(kind))
    return JSON_TYPES[plain(kind)][1](value)


def described(kind) -> str:
    if get_origin(kind) is Literal:
        return " or ".join(json.dumps(option) for option in get_args(kind))
    name = JSON_TYPES[plain(kind)][0]
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"


def schema_problems(value, kind, path: str, version: int):
    """What in `value` does not fit record type `kind`, by key path (`test.auc`, `history[1].epoch`)."""
    options = get_args(kind) if get_origin(kind) in (Union, types.UnionType) else (kind,)
    if value is None and type(None) in options:
        return
    kinds = [option for option in options if option is not type(None)]
    match = next((option for option in kinds if accepts(option, value)), None)
    if match is None:
        allowed = [described(option) for option in kinds] + (["null"] if type(None) in options else [])
        yield f"{path} is {shown(value)}, not {', '.join(allowed[:-1]) + ' or ' if len(allowed) > 1 else ''}{allowed[-1]}"
    elif is_typeddict(match):
        yield from object_problems(value, match, path, version)
    elif get_origin(match) is list:
        for index, item in enumerate(value):
            yield from schema_problems(item, get_args(match)[0], f"{path}[{index}]", version)
    elif get_origin(match) is dict:
        for key, item in value.items():
            yield from schema_problems(item, get_args(match)[1], f"{path}.{key}", version)


def object_problems(value: dict, typed: type, path: str, version: int):
    """Each declared key of `typed` present (when required at `version`) and of its type; the other
    keys of the type's `extra_items`, when it declares them."""
    declared = key_types(typed)
    for key, (kind, since) in declared.items():
        where = f"{path}.{key}" if path else key
        if key in value:
            yield from schema_problems(value[key], kind, where, version)
        elif since is not None and version >= since:
            yield f"missing {where}"
    if typed.__extra_items__ is not NoExtraItems:
        for key in value.keys() - declared.keys():
            yield from schema_problems(value[key], typed.__extra_items__, f"{path}.{key}" if path else key, version)


def version_problem(record: dict) -> str | None:
    version = record.get("record_version")
    if "record_version" not in record:
        return "missing record_version (not written by CritBench)"
    if not accepts(int, version) or version < 1:
        return f"record_version {shown(version)} is not a CritBench record version (1 to {RECORD_VERSION})"
    if version > RECORD_VERSION:
        return (f"record_version {version} is newer than this CritBench reads (1 to {RECORD_VERSION}); "
                f"update CritBench (git pull) to read it")
    return None


def is_newer(record) -> bool:
    """Whether a newer CritBench wrote `record` (its schema cannot be checked here)."""
    version = record.get("record_version") if isinstance(record, dict) else None
    return accepts(int, version) and version > RECORD_VERSION


def record_problem(record) -> str | None:
    """Why `record` is not a usable complete run record, or None: the record version (1 to
    RECORD_VERSION), status "complete", every key of `RunRecord` (as required at that version) with
    its type, some data checksum, and one score per label."""
    if not isinstance(record, dict):
        return f"holds {json_kind(record)}, not a run record (a JSON object)"
    if problem := version_problem(record):
        return problem
    if record.get("status") != "complete":
        return "missing status" if "status" not in record else f"status {shown(record['status'])}, not \"complete\""
    if problem := next(object_problems(record, RunRecord, "", record["record_version"]), None):
        return problem
    if not (record["dataset"]["source_md5"] or record["dataset"]["tensor_md5"]):
        return "dataset has neither source_md5 nor tensor_md5: the data it ran on is unknown"
    labels, scores = record["test_scores"]["y_true"], record["test_scores"]["y_score"]
    if len(labels) != len(scores):
        return f"test_scores has {len(labels)} labels (y_true) but {len(scores)} scores (y_score)"
    return None
