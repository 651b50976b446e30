"""README.md and docs/: README fits on a screen, every relative link leads to a file, every
project name in inline code (`reports.report.build_report`) exists, and every command shown
(`python -m <command> ...` in code blocks and inline code, `make <target>`) still parses with its
command's own parser and names registered suites, datasets and methods. Nothing trains: each
command's `build_parser().parse_args(argv)` runs, and the names are looked up."""
from __future__ import annotations

import importlib
import re
import shlex
from pathlib import Path

import pytest

from benchmarks.core.errors import CritBenchError
from benchmarks.methods import get_method
from benchmarks.sweep.suite import list_suites
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
