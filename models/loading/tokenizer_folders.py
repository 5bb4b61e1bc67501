"""Tokenizers beside the weights: the folders searched for them, and the error when none is usable
(the umT5 tokenizer, SkyReels-V1's Llama-3 and CLIP-L tokenizers)."""
from __future__ import annotations

import os
from typing import Iterable, List, Optional, Sequence


class TokenizerError(ValueError):
    """No usable tokenizer; the message says where we looked, or what was expected, and what to put there."""


def candidates(weights_path: Optional[str], names: Sequence[str], stem_names: Iterable[str] = ()) -> List[str]:
    """Folders searched for a tokenizer, nearest first: ``stem_names`` and ``names`` beside the
    weights and one and two levels up (a pipeline's root); "" is the level itself."""
    out: List[str] = []
    if weights_path:
        start = os.path.abspath(weights_path)
        level = start if os.path.isdir(start) else os.path.dirname(start)
        extra = list(stem_names)
        for _ in range(3):
            for sub in list(extra) + list(names):
                out.append(os.path.join(level, sub) if sub else level)
            parent = os.path.dirname(level)
            if parent == level:
                break
            level = parent
    return out
