"""README.md and docs/: README fits on a screen, every relative link leads to a file (and its
#anchor to a heading there), every project name in inline code (`reports.report.build_report`)
exists, and every command shown (`python -m <command> ...` in code blocks and inline code,
`make <target>`) still parses with its command's own parser and names registered suites, datasets
and methods. The other way round, every registered method, dataset, suite, tuning objective,
metric, record key and command option is named on its page. Nothing trains: each command's
`build_parser().parse_args(argv)` runs, and the names are looked up."""
from __future__ import annotations

import importlib
import re
import shlex
from pathlib import Path

import pytest

from benchmarks.core import records
from benchmarks.core.errors import CritBenchError
from benchmarks.core.metrics import METRIC_LABELS
from benchmarks.methods import get_method
from benchmarks.methods.registry import list_methods
from benchmarks.sweep.suite import list_suites
from benchmarks.sweep.tuning import OBJECTIVES
from datasets import list_datasets

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
PAGES = [README, *sorted((REPO / "docs").glob("*.md"))]
README_MAX_LINES = 250
PROJECT = ("benchmarks.", "reports.", "datasets.", "models3d.")  # `python -m pytest` and the like are not checked
SEPARATORS = {"|", "||", "&", "&&", ";", ">", ">>", "<", "(", ")"}
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.M | re.S)
INLINE = re.compile(r"`([^`\n]+)`")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
DOTTED = re.compile(r"`((?:benchmarks|reports|datasets|models3d)(?:\.\w+)+)")
HEADING = re.compile(r"^#+\s+(.+?)\s*$", re.M)
# The page that documents each command's options (benchmarks.run's own options are on command-line.md).
OPTION_PAGES = {"benchmarks.run": "docs/command-line.md", "benchmarks.tune": "docs/tuning.md",
                "benchmarks.leaderboard": "docs/leaderboards.md", "benchmarks.speed": "docs/speed.md",
                "reports.build": "docs/reports.md", "reports.validation": "docs/validation.md",
                "reports.dose_response": "docs/reports.md", "datasets.export": "docs/datasets.md"}
# The record types whose keys docs/records.md names, key by key.
RECORD_TYPES = (records.RunRecord, records.FailureRecord, records.ClassResults, records.ClassMetrics,
                records.LastEpochResults)


def code_of(text: str) -> list[str]:
    """The lines of every fenced code block (backslash continuations joined) and every inline code
    span outside them."""
    blocks = FENCE.findall(text)
    prose = FENCE.sub("", text)
    return [line for block in blocks for line in block.replace("\\\n", " ").splitlines()] + INLINE.findall(prose)


def commands_in(line: str) -> list[list[str]]:
    """The commands a shell line runs, each as its words from `python -m X` or `make` on (environment
    assignments, `nice -n 5` and the like before them dropped); [] for text that is not shell."""
    try:
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split, lexer.commenters = True, "#"
        tokens = list(lexer)
    except ValueError:  # unbalanced quotes: prose, not a command
        return []
    found, segment = [], []
    for token in tokens + [";"]:
        if token not in SEPARATORS:
            segment.append(token)
            continue
        for start, word in enumerate(segment):
            if word in ("python", "python3") and segment[start + 1:start + 2] == ["-m"] and len(segment) > start + 2:
                found.append(segment[start + 2:])
                break
            if word == "make":
                found.append(segment[start:])
                break
        segment = []
    return found


def shown_commands() -> list[tuple[str, list[str]]]:
    """(page, words) of every project command shown in README.md and docs/*.md."""
    return [(page.relative_to(REPO).as_posix(), words) for page in PAGES
            for line in code_of(page.read_text(encoding="utf-8")) for words in commands_in(line)
            if words[0] == "make" or words[0].startswith(PROJECT)]


def slug(heading: str) -> str:
    """GitHub's anchor of a Markdown heading: lower case, punctuation but '-' and '_' dropped, each
    space a '-'."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    return {slug(heading) for heading in HEADING.findall(text)}


def named(name: str, text: str, quoted: bool = True) -> bool:
    """Whether `text` names `name`: in inline code (`quoted`), else as a whole word, any case."""
    pattern = rf"`{re.escape(name)}`" if quoted else rf"(?<![\w-]){re.escape(name)}(?![\w-])"
    return re.search(pattern, text, 0 if quoted else re.I) is not None


def make_targets() -> set[str]:
    return set(re.findall(r"^([A-Za-z][\w-]*):", (REPO / "Makefile").read_text(), re.M))


def names(value) -> list[str]:
    """A name option's values: a comma-joined string or a list of them; none when unset."""
    items = value if isinstance(value, list) else [value] if value else []
    return [name.strip() for item in items for name in str(item).split(",") if name.strip()]


def unknown_names(args) -> list[str]:
    """The suites, datasets and methods the parsed `args` name that are not registered."""
    options = vars(args)
    problems = []
    for suite in names(options.get("suite")):
        if not suite.endswith(".toml") and suite not in list_suites():
            problems.append(f"--suite {suite} (valid: {', '.join(list_suites())} or a TOML file)")
    for key in ("dataset", "datasets"):
        problems += [f"--{key} {name}" for name in names(options.get(key)) if name not in list_datasets()]
    for key in ("method", "methods"):
        for name in names(options.get(key)):
            try:
                get_method(name)
            except CritBenchError:
                problems.append(f"--{key} {name}")
    return problems


def resolves(dotted: str) -> bool:
    """Whether `dotted` names a project module, or an attribute of one (`reports.report.build_report`)."""
    parts = dotted.split(".")
    for split in range(len(parts), 0, -1):
        try:
            target = importlib.import_module(".".join(parts[:split]))
        except ModuleNotFoundError:
            continue
        for name in parts[split:]:
            if not hasattr(target, name):
                return False
            target = getattr(target, name)
        return True
    return False


def check(words: list[str]) -> str | None:
    """Why the command `words` would not run as shown, or None when it parses and its names exist."""
    if words[0] == "make":  # bare `make` runs the first target
        missing = sorted({word for word in words[1:] if not word.startswith("-") and "=" not in word} - make_targets())
        return f"no Makefile target {', '.join(missing)}" if missing else None
    try:
        module = importlib.import_module(words[0])
    except ModuleNotFoundError:
        return f"no module {words[0]}"
    if not hasattr(module, "build_parser"):
        return f"{words[0]} has no build_parser()"
    if len(words) == 1:  # the command named, not run: its required flags are not shown
        return None
    try:
        args = module.build_parser().parse_args(words[1:])
    except SystemExit:
        return "its parser refuses the flags (see stderr)"
    problems = unknown_names(args)
    return f"unknown {'; '.join(problems)}" if problems else None


COMMANDS = shown_commands()


def test_readme_fits_on_a_screen():
    lines = len(README.read_text(encoding="utf-8").splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move reference material into docs/"


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.relative_to(REPO).as_posix())
def test_every_relative_link_points_to_a_file(page):
    broken = [target for target in LINK.findall(page.read_text(encoding="utf-8"))
              if not re.match(r"[a-z]+:|#", target) and not (page.parent / target.split("#")[0]).exists()]
    assert not broken, f"{page.name}: links to missing files: {broken}"


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.relative_to(REPO).as_posix())
def test_every_anchor_is_a_heading(page):
    broken = []
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        path, _, anchor = target.partition("#")
        linked = page.parent / path if path else page
        if anchor and not re.match(r"[a-z]+:", target) and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(target)
    assert not broken, f"{page.name}: links to headings that do not exist: {broken}"


def test_slugs_are_githubs():
    assert slug("Two task framings: `--task binary | multiclass`") == "two-task-framings---task-binary--multiclass"
    assert slug("ALM dose-response (CIFAR-10 1:100)") == "alm-dose-response-cifar-10-1100"


def page_text(relative: str) -> str:
    return (REPO / relative).read_text(encoding="utf-8")


@pytest.mark.parametrize("page, kind, registered, quoted", [
    ("docs/methods.md", "method", list_methods(), True),
    ("docs/datasets.md", "dataset", list_datasets(), False),  # the MedMNIST ones by their own spelling
    ("docs/leaderboards.md", "suite", list_suites(), True),
    ("docs/tuning.md", "objective", list(OBJECTIVES), True),
    ("docs/metrics.md", "metric", list(METRIC_LABELS), True),
], ids=["methods", "datasets", "suites", "objectives", "metrics"])
def test_every_registered_name_is_documented(page, kind, registered, quoted):
    text = page_text(page)
    missing = [name for name in registered if not named(name, text, quoted)]
    assert not missing, f"{page} does not name the {kind}s {missing}"


def test_every_record_key_is_documented():
    text = page_text("docs/records.md")
    keys = {key for typed in RECORD_TYPES for key in typed.__annotations__}
    missing = sorted(key for key in keys if not named(key, text))
    assert not missing, f"docs/records.md does not name the record keys {missing}"


@pytest.mark.parametrize("command, page", OPTION_PAGES.items())
def test_every_option_is_documented(command, page):
    own = {option for action in importlib.import_module(command).build_parser()._actions
           for option in action.option_strings if option.startswith("--") and option != "--help"}
    if command != "benchmarks.run":  # commands that take benchmarks.run's flags document only their own
        own -= {option for action in importlib.import_module("benchmarks.run").build_parser()._actions
                for option in action.option_strings}
    text = page_text(page)
    missing = sorted(option for option in own if not re.search(re.escape(option) + r"(?![\w-])", text))
    assert not missing, f"{page} does not mention {command}'s options {missing}"


def test_an_undocumented_name_is_caught():
    assert named("sota_s", "`sota_s` and `sopa`") and not named("sopa", "`sopa_s`")
    assert named("organamnist", "OrganAMNIST, OrganCMNIST", quoted=False)
    assert not named("cifar10", "`cifar10_lt`", quoted=False)


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.relative_to(REPO).as_posix())
def test_every_project_name_exists(page):
    missing = sorted({name for name in DOTTED.findall(page.read_text(encoding="utf-8")) if not resolves(name)})
    assert not missing, f"{page.name} names what the code no longer has: {missing}"


def test_a_stale_name_is_caught():
    assert resolves("reports.report.build_report") and resolves("benchmarks.engine")
    assert not resolves("reports.build.build_report") and not resolves("benchmarks.engine.nothing_here")


def test_the_pages_show_every_command():
    shown = {words[0] for _, words in COMMANDS}
    assert {"make", "benchmarks.run", "benchmarks.leaderboard", "benchmarks.tune", "benchmarks.speed",
            "reports.build", "reports.validation", "datasets.export"} <= shown


@pytest.mark.parametrize("page, words", COMMANDS, ids=[f"{page}: {shlex.join(words)}"[:120] for page, words in COMMANDS])
def test_every_shown_command_still_runs(page, words):
    assert check(words) is None, f"{page}: `{shlex.join(words)}`: {check(words)}"


@pytest.mark.parametrize("stale", [
    "python -m benchmarks.run --dataset vesselmnist3d --method alm --epoch 3",  # a flag that does not exist
    "python -m benchmarks.run --dataset vesselmnist3d --method almm",
    "python -m benchmarks.leaderboard --suite quik --data-dir DIR",
    "python -m benchmarks.leaderboard --suite full --datasets vesselmnist3d,cifar11 --methods alm",
    "python -m benchmarks.tune --dataset nodule --method alm --space delta=0.1,0.5",
    "python -m reports.build --run runs/",
    "python -m benchmarks.train --dataset vesselmnist3d",
    "make install demo-gpu",
])
def test_a_stale_command_is_caught(stale):
    (words,) = commands_in(stale)
    assert check(words) is not None


def test_commands_are_found_after_environment_and_in_pipelines():
    line = "OMP_NUM_THREADS=1 nice -n 5 python -m benchmarks.run --list | tail -1  # note"
    assert commands_in(line) == [["benchmarks.run", "--list"]]
    assert commands_in("PYTHON=/path/to/python make demo") == [["make", "demo"]]
    assert code_of("x `python -m reports.build --runs r`\n```bash\npython -m a \\\n  --b\n```\n") == \
        ["python -m a    --b", "python -m reports.build --runs r"]
