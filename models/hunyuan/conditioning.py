"""SkyReels-V1 conditioning pieces that are not networks: the image latent of image-to-video.

The official I2V pipeline VAE-encodes the start image (one frame, sampled from the posterior),
scales it by 0.476986 and puts it on latent frame 0, zeros on the other frames; this
16-channel tensor is concatenated after the noisy latent (32 channels), the same for both CFG
branches.  There is no mask channel.
"""
from __future__ import annotations

import torch

from .vae import SCALING_FACTOR


def image_latents_for(raw_image_latent: torch.Tensor, num_latent_frames: int,
                      scaling_factor: float = SCALING_FACTOR) -> torch.Tensor:
    """Raw image latent [B, 16, k, h, w] (k >= 1 given frames) -> the DiT's ``image_latents``
    [B, 16, F, h, w]: scaled on the first k frames, exact zeros after."""
    if raw_image_latent.dim() != 5:
        raise ValueError("the image latent must be [B, 16, frames, h, w], got %s" % list(raw_image_latent.shape))
    B, C, k, h, w = raw_image_latent.shape
    k = min(k, num_latent_frames)
    out = torch.zeros(B, C, num_latent_frames, h, w, dtype=torch.float32, device=raw_image_latent.device)
    out[:, :, :k] = raw_image_latent[:, :, :k].float() * scaling_factor
    return out
