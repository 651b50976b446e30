"""Shared command-line plumbing: one-line errors with exit code 2, `key=value` parsing."""
from __future__ import annotations

import argparse
import sys

from benchmarks.core.errors import CritBenchError


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line naming the problem (exit code 2)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def parse_key_values(items: list[str] | None) -> dict:
    """`["a=1", "b=x"]` -> `{"a": "1", "b": "x"}`; values stay strings for the receiver to convert."""
    values = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CritBenchError(f"--param expects key=value, got {item!r}")
        values[key.strip()] = value.strip()
    return values


def fail(message: str, code: int = 2) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code
