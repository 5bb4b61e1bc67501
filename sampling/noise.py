"""Seeded Gaussian noise that is the same on every device.

The noise is drawn on the CPU from a ``torch.Generator`` seeded once, in float32, then moved;
so a seed gives the same video on a CPU, a CUDA GPU or a Mac.
"""
from __future__ import annotations

from typing import Sequence

import torch


class NoiseSource:
    """One seeded stream of Gaussian noise; successive draws continue the stream."""

    def __init__(self, seed: int):
        self.seed = int(seed)
        self.generator = torch.Generator(device="cpu")
        self.generator.manual_seed(self.seed & 0xFFFF_FFFF_FFFF_FFFF)

    def randn(self, shape: Sequence[int], device="cpu", dtype=torch.float32) -> torch.Tensor:
        t = torch.randn(tuple(shape), generator=self.generator, dtype=torch.float32)
        return t.to(device=device, dtype=dtype)


def chunk_seed(seed: int, chunk: int) -> int:
    """Seed of chunk ``chunk`` of a long render: chunk 0 uses ``seed`` itself, so a one-chunk
    video equals an ordinary run; later chunks get independent streams, so resuming from a
    saved chunk reproduces the rest exactly."""
    if chunk == 0:
        return int(seed)
    return (int(seed) ^ (chunk * 0x9E3779B97F4A7C15)) & 0xFFFF_FFFF_FFFF_FFFF
