"""Encoding prepared references: VAE posterior samples and A2's CLIP tokens.

Both official pipelines condition on a *sample* of the VAE posterior, ``μ + exp(logvar/2)·ε``
(the V2 image-to-video path uses the mean).  ``ε`` is drawn from a seeded CPU stream, so a seed
gives the same conditioning on every device; the official code draws it from the sampler's
generator right after the initial noise, which two separate nodes cannot share.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence

import numpy as np
import torch

from ...sampling.noise import NoiseSource
from . import a2, images, r2v


@dataclass
class Posterior:
    mean: torch.Tensor      # raw μ [B, z, F, h, w]
    logvar: torch.Tensor    # clamped to [-30, 20]
    sample: torch.Tensor    # raw μ + exp(logvar/2)·ε


def posterior_sample(vae, video: torch.Tensor, eps: Optional[torch.Tensor] = None,
                     noise: Optional[NoiseSource] = None, tile=None) -> Posterior:
    """Encode ``video`` [1, 3, T, H, W] in [-1, 1] and draw one posterior sample: ``eps``, or
    the next draw of ``noise`` (default: seed 0).  Tensors come back on the CPU, float32."""
    with torch.no_grad():
        mean, logvar = vae.encode_posterior(video.to(vae.device), tile=tile)
    mean, logvar = mean.float().cpu(), logvar.float().cpu()
    if eps is None:
        eps = (noise or NoiseSource(0)).randn(mean.shape)
    if tuple(eps.shape) != tuple(mean.shape):
        raise ValueError("eps has shape %s, the latent %s" % (list(eps.shape), list(mean.shape)))
    return Posterior(mean, logvar, mean + torch.exp(0.5 * logvar) * eps.float().cpu())


# --------------------------------------------------------------------------- A2


@dataclass
class A2Condition:
    vae_images: torch.Tensor       # [n, 3, H, W] prepared references in [-1, 1]
    video: torch.Tensor            # [1, 3, T, H, W] the pixel conditioning video
    posterior: Posterior           # of the whole video
    mask: torch.Tensor             # [1, 4, F, h, w]
    latent: torch.Tensor           # [1, 16, F, h, w] normalised sample

    @property
    def condition(self) -> torch.Tensor:
        return a2.condition(self.mask, self.latent)


def a2_condition(vae, references: Sequence[np.ndarray], roles: Sequence[str], width: int, height: int,
                 num_frames: int, eps: Optional[torch.Tensor] = None, seed: int = 0, tile=None) -> A2Condition:
    """The VAE branch of A2 for uint8 references [h, w, 3] with their roles, in slot order."""
    if len(references) != len(roles):
        raise ValueError("one role per reference")
    a2.layout(len(references), num_frames)  # checks the count and the frame budget first
    frames = [images.to_pm1(a2.prepare_vae_image(arr, role, width, height)) for arr, role in zip(references, roles)]
    video = a2.condition_video(frames, num_frames)
    post = posterior_sample(vae, video, eps=eps, noise=NoiseSource(seed), tile=tile)
    f, h, w = post.mean.shape[2:]
    mask = a2.mask_tensor(len(references), num_frames, h, w)
    return A2Condition(torch.stack(frames), video, post, mask, vae.normalize(post.sample).cpu())


def a2_clip_pixels(references: Sequence[np.ndarray], size: int) -> torch.Tensor:
    """[n, 3, size, size] CLIP inputs of the references (white square, then the CLIP processor)."""
    return torch.cat([images.clip_pixels(arr, size) for arr in references], dim=0)


def a2_clip_tokens(encoder, references: Sequence[np.ndarray]) -> torch.Tensor:
    """Penultimate CLIP tokens of every reference, concatenated on the token axis: [1, n*k, D]."""
    pixels = a2_clip_pixels(references, encoder.config.image_size)
    tokens = [encoder.encode_pixels(pixels[i:i + 1]).float().cpu() for i in range(pixels.shape[0])]
    return torch.cat(tokens, dim=1)


# --------------------------------------------------------------------------- V3 R2V


@dataclass
class R2VReferences:
    letterboxed: List[np.ndarray]  # uint8 [H, W, 3] each
    latents: torch.Tensor          # [1, 16, 4, h, w] normalised, zero-padded


def r2v_vae_input(arr: np.ndarray, width: int, height: int) -> torch.Tensor:
    """[1, 3, 1, H, W]: a letterboxed reference as a one-frame video in [-1, 1]."""
    return images.to_pm1_centered(images.letterbox(arr, width, height))[None, :, None]


def r2v_references(vae, references: Sequence[np.ndarray], width: int, height: int,
                   seed: int = 0, tile=None) -> R2VReferences:
    """Letterbox every reference to width x height, encode each on its own (one posterior
    sample per reference, successive draws of one seeded stream), normalise and pad to 4."""
    r2v.check_count(len(references))
    boxed = [images.letterbox(arr, width, height) for arr in references]
    noise = NoiseSource(seed)
    latents = [vae.normalize(posterior_sample(vae, images.to_pm1_centered(arr)[None, :, None], noise=noise,
                                              tile=tile).sample).cpu() for arr in boxed]
    return R2VReferences(boxed, r2v.assemble(latents))
