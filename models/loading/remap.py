"""A checkpoint seen under other names: renamed, concatenated or rearranged tensors, read lazily.

Some namings do not map one key to one key.  HunyuanVideo's original checkpoints fuse q, k
and v into one ``…_qkv`` weight where diffusers stores three; a model with the fused layout
then needs the three diffusers tensors concatenated.  :class:`RemappedSource` presents a
:class:`TensorSource` under the model's names: each new key is built from one or more keys
of the underlying source, concatenated along dim 0 in order, optionally passed through a
transform (for example swapping two halves).  Shapes and dtypes are known without reading,
so the meta-device checks of :mod:`models.loading.materialize` work as for any file, and
the tensors are read one at a time when the loader asks for them.

Scaled fp8 parts (a ``….scale_weight`` beside the weight in the underlying source) are
dequantized before concatenation, and the result is reported in bfloat16.
"""
from __future__ import annotations

from typing import Callable, Dict, Optional, Sequence, Tuple

import torch

from .checkpoint import TensorSource
from .materialize import SCALE_SUFFIXES

Transform = Callable[[torch.Tensor], torch.Tensor]
Recipe = Tuple[Tuple[str, ...], Optional[Transform]]


def _scale_of(base: TensorSource, key: str) -> Optional[str]:
    if not key.endswith(".weight"):
        return None
    stem = key[: -len(".weight")]
    for suffix in SCALE_SUFFIXES:
        if stem + suffix in base:
            return stem + suffix
    return None


def swap_halves(t: torch.Tensor) -> torch.Tensor:
    """[a; b] -> [b; a] along dim 0 (weight rows or bias)."""
    n = t.shape[0] // 2
    return torch.cat([t[n:], t[:n]], dim=0)


class RemappedSource(TensorSource):
    """``base`` under new names.  ``recipe`` maps each new key to (source keys, transform)."""

    def __init__(self, base: TensorSource, recipe: Dict[str, Recipe]):
        self.base = base
        self.files = list(base.files)
        self.metadata = dict(base.metadata)
        self._handles = []
        self._recipe: Dict[str, Recipe] = {}
        self._where = {}
        self._shape: Dict[str, Tuple[int, ...]] = {}
        self._dtype: Dict[str, torch.dtype] = {}
        for new, (parts, transform) in recipe.items():
            parts = tuple(parts)
            missing = [p for p in parts if p not in base]
            if missing:
                continue  # reported by the loader's key check as a missing tensor
            shapes = [tuple(base.shape(p)) for p in parts]
            if len(parts) > 1 and any(s[1:] != shapes[0][1:] for s in shapes):
                continue
            self._recipe[new] = (parts, transform)
            self._where[new] = 0
            self._shape[new] = (sum(s[0] for s in shapes),) + shapes[0][1:] if shapes[0] else shapes[0]
            scaled = len(parts) > 1 and any(_scale_of(base, p) for p in parts)
            dtypes = {base.dtype(p) for p in parts}
            self._dtype[new] = torch.bfloat16 if scaled or len(dtypes) > 1 else dtypes.pop()

    def parts(self, key: str) -> Sequence[str]:
        """The underlying keys a new key is made of."""
        return self._recipe[key][0]

    def get(self, key: str) -> torch.Tensor:
        parts, transform = self._recipe[key]
        if len(parts) == 1:
            t = self.base.get(parts[0])
        else:
            pieces = []
            for p in parts:
                t = self.base.get(p)
                scale = _scale_of(self.base, p)
                if scale is not None:
                    t = t.float() * self.base.get(scale).float().reshape(())
                pieces.append(t.to(self._dtype[key]) if t.dtype != self._dtype[key] else t)
            t = torch.cat(pieces, dim=0)
        return transform(t) if transform is not None else t

    def quantized(self, key: str):
        """Renamed tensors keep a GGUF file's quantized form; concatenated ones are dequantized."""
        parts, transform = self._recipe[key]
        if len(parts) == 1 and transform is None:
            return self.base.quantized(parts[0])
        return None

    def close(self) -> None:
        self.base.close()
