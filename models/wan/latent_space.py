"""The Wan2.1 latent space: 16 channels, x4 in time, x8 in space, and its normalisation.

The VAE's raw posterior mean ``mu`` (what ComfyUI's LATENT holds) is normalised per channel
for the DiT: ``z = (mu - mean) * (1 / std)``; back: ``mu = z / (1 / std) + mean`` (written with
the reciprocal like the official code).  Constants from the official VAE (spec section 2.2).
"""
from __future__ import annotations

import torch

CHANNELS = 16
TIME_FACTOR = 4
SPACE_FACTOR = 8

LATENTS_MEAN = (-0.7571, -0.7089, -0.9113, 0.1075, -0.1745, 0.9653, -0.1517, 1.5508,
                0.4134, -0.0715, 0.5517, -0.3632, -0.1922, -0.9497, 0.2503, -0.2921)
LATENTS_STD = (2.8184, 1.4541, 2.3275, 2.6558, 1.2196, 1.7708, 2.6052, 2.0743,
               3.2687, 2.1526, 2.8652, 1.5579, 1.6382, 1.1253, 2.8251, 1.9160)


def _stats(like: torch.Tensor):
    shape = (1, CHANNELS) + (1,) * (like.dim() - 2)
    mean = torch.tensor(LATENTS_MEAN, dtype=torch.float32, device=like.device).view(shape)
    inv_std = 1.0 / torch.tensor(LATENTS_STD, dtype=torch.float32, device=like.device).view(shape)
    return mean, inv_std


def normalize(mu: torch.Tensor) -> torch.Tensor:
    """Raw VAE mean -> DiT latent (float32)."""
    mean, inv_std = _stats(mu)
    return (mu.float() - mean) * inv_std


def denormalize(z: torch.Tensor) -> torch.Tensor:
    """DiT latent -> raw VAE mean (float32)."""
    mean, inv_std = _stats(z)
    return z.float() / inv_std + mean


def latent_shape(width: int, height: int, frames: int, batch: int = 1):
    return (batch, CHANNELS, (frames - 1) // TIME_FACTOR + 1, height // SPACE_FACTOR, width // SPACE_FACTOR)
