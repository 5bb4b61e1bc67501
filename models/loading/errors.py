"""The error of the loading machinery, below every reader (checkpoint files, GGUF files, ...)."""
from __future__ import annotations


class CheckpointError(ValueError):
    """A file or folder that cannot serve as the requested model; the message says why."""
