"""Which labels make a dataset's critical class: `--param critical=<index or name>` or the dataset's
documented default, resolved against the dataset's label names before any data is loaded."""
from __future__ import annotations

from dataclasses import dataclass

from benchmarks.core.errors import CritBenchError

PARAM = "critical"
PARAM_HELP = "the critical class: a label index or name (case-insensitive), several joined by '+'"
MINORITY = "minority"  # the train split's rarer label (a binary dataset without a clinical critical class)


@dataclass(frozen=True)
class CriticalDefault:
    """A dataset's default critical class and the one-line reason for it (docs and `--list`)."""

    labels: tuple[int, ...] | str  # label indices, or MINORITY
    reason: str


@dataclass(frozen=True)
class CriticalChoice:
    """The resolved critical class: its label indices, its display name, and where it came from."""

    labels: tuple[int, ...] | str  # label indices, or MINORITY (resolved from the train labels)
    name: str
    source: str  # "default" or "--param critical"

    def record(self) -> dict:
        """What the dataset record says about the choice."""
        labels = self.labels if isinstance(self.labels, str) else list(self.labels)
        return {"critical_labels": labels, "critical_source": self.source}


def label_list(names: list[str]) -> str:
    return ", ".join(f"{index} {name!r}" for index, name in enumerate(names))


def parse_labels(text: str, names: list[str], dataset: str) -> tuple[int, ...]:
    """`"4"`, `"melanoma"` or `"mass+nodule"` -> sorted label indices into `names`; a CritBenchError
    listing the valid labels for anything else."""
    lowered = [name.lower() for name in names]
    chosen = set()
    for part in str(text).split("+"):
        part = part.strip()
        if part.isdigit() and int(part) < len(names):
            index = int(part)
        elif part.lower() in lowered:
            index = lowered.index(part.lower())
        else:
            raise CritBenchError(f"{dataset}: --param {PARAM}={text}: {part!r} is not one of its labels; valid (index or "
                                 f"name, several joined by '+'): {label_list(names)}")
        if index in chosen:  # `0+0` would train as `0` under another run id
            raise CritBenchError(f"{dataset}: --param {PARAM}={text} names label {index} {names[index]!r} twice; "
                                 f"name each label once")
        chosen.add(index)
    if len(chosen) == len(names):
        raise CritBenchError(f"{dataset}: --param {PARAM}={text} names every label, which leaves no other class; "
                             f"choose a subset of: {label_list(names)}")
    return tuple(sorted(chosen))


def choose_critical(params: dict, names: list[str], default: CriticalDefault | None, dataset: str) -> CriticalChoice:
    """The critical class of a run: `--param critical` when given, else the dataset's default;
    refuses (listing the labels) a dataset without a default when none is given."""
    if PARAM in params:
        labels = parse_labels(params[PARAM], names, dataset)
        return CriticalChoice(labels, "+".join(names[i] for i in labels), f"--param {PARAM}")
    if default is None:
        raise CritBenchError(f"{dataset} has no default critical class (no clinically unambiguous choice among its "
                             f"{len(names)} labels); choose one with --param {PARAM}=<index or name>: {label_list(names)}")
    if default.labels == MINORITY:
        return CriticalChoice(MINORITY, "the minority class", "default")
    return CriticalChoice(default.labels, default_name(default, names), "default")


def canonical_params(params: dict, names: list[str], default: CriticalDefault | None, dataset: str) -> dict:
    """`params` checked (`choose_critical`), with `critical` written as its sorted label indices
    ("Melanoma", "melanoma" and "4" are one training, so one run id and one seed)."""
    choice = choose_critical(params, names, default, dataset)
    if PARAM not in params:
        return params
    return {**params, PARAM: "+".join(map(str, choice.labels))}


def default_name(default: CriticalDefault, names: list[str]) -> str:
    """The display name of a default: the label's name, or the reason's lead for a group of labels."""
    if default.labels == MINORITY:
        return "the minority class"
    if len(default.labels) == 1:
        return names[default.labels[0]]
    return default.reason.split(":")[0]
