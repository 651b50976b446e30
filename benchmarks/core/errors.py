"""User-facing errors: each message says what was wrong, what is valid and what to do."""


class CritBenchError(Exception):
    """A problem with the user's input or environment, reported as one line (exit code 2)."""


class UnknownParameter(CritBenchError):
    """A `--param` key the method does not have; the caller may add what else is valid (the dataset's keys)."""


class DataUnavailableError(CritBenchError):
    """A dataset's files are missing and could not be downloaded."""


class DivergedError(RuntimeError):
    """Training produced a non-finite loss; `history` holds the epochs finished before it (their
    per-epoch figures, e.g. ALM's term-to-loss ratio, show how the run got there)."""

    def __init__(self, message: str, history: list | None = None):
        super().__init__(message)
        self.history = list(history or [])
