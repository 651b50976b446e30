"""Shared command-line plumbing: one-line errors with exit code 2, `key=value` parsing, counts in words."""
from __future__ import annotations

import argparse
import sys

from benchmarks.core.errors import CritBenchError


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line naming the problem (exit code 2), a flag given twice
    is refused (argparse would silently keep the last), and flags are never abbreviated."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, allow_abbrev=False, **kwargs)

    def parse_known_args(self, args=None, namespace=None):
        args = sys.argv[1:] if args is None else list(args)
        self._refuse_repeated_flags(args)
        return super().parse_known_args(args, namespace)

    def _refuse_repeated_flags(self, args: list[str]) -> None:
        seen = {}
        for position, token in enumerate(args):
            if token == "--":
                break
            flag, equals, value = token.partition("=")
            action = self._option_string_actions.get(flag)
            if action is None or isinstance(action, argparse._AppendAction):  # --param is meant to repeat
                continue
            if not equals and action.nargs != 0:
                value = args[position + 1] if position + 1 < len(args) else ""
            shown = f"{flag} {value}".strip()
            if action.dest in seen:
                self.error(f"{flag} given twice ({seen[action.dest]}, then {shown}); give it once")
            seen[action.dest] = shown

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def parse_key_values(items: list[str] | None) -> dict:
    """`["a=1", "b=x"]` -> `{"a": "1", "b": "x"}`; values stay strings for the receiver to convert."""
    values = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise CritBenchError(f"--param expects key=value, got {item!r}")
        if key in values:
            raise CritBenchError(f"--param {key} given twice ({key}={values[key]} and {item}); give it once")
        values[key] = value.strip()
    return values


def counted(n: int, noun: str) -> str:
    """"1 run", "2 runs", "1 dataset setting": a count and its noun, plural unless it is one."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def fail(message: str, code: int = 2) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code
