"""The error of the loading machinery, below every reader (checkpoint files, GGUF files, ...)."""
from __future__ import annotations


class CheckpointError(ValueError):
    """A file or folder that cannot serve as the requested model; the message says why."""


def not_a(where, source, what: str, expected: str) -> CheckpointError:
    """The error for weights that are not the model asked for: '<where> is not <what>: expected
    <expected>; found e.g. <four of its keys>'."""
    return CheckpointError("%s is not %s: expected %s; found e.g. %s"
                           % (where or "the given weights", what, expected, ", ".join(sorted(source.keys())[:4])))
