"""One clip of the SkyReels-V3 talking avatar: Euler flow with motion-latent re-injection.

The sampler is the shared one (:func:`flow_sampler.sample_flow` with the Euler solver on the
:func:`sigmas.a2v_schedule` grid).  Loop windows after the first keep their motion frames by
re-injection: the first ``k`` latent frames of the sample are replaced by the conditioning's
motion latents ``z`` noised to the current level, ``(1 - sigma) z + sigma eps`` with fresh
noise, before the first step (pure noise: sigma = 1) and after every step (after the last,
exactly ``z``).
"""
from __future__ import annotations

from typing import Callable, Optional

import torch

from ..host import Progress
from .flow_sampler import sample_flow
from .sigmas import Schedule


def sample_a2v_clip(velocity: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], x: torch.Tensor,
                    schedule: Schedule, motion: Optional[torch.Tensor] = None, noise=None,
                    progress: Optional[Progress] = None) -> torch.Tensor:
    """Denoise ``x`` [B, 16, F, h, w] (noise at sigma 1) to a clean latent.

    ``motion``: latents [B, 16, k, h, w] re-injected into the first k frames; ``noise``: the
    source of the fresh noise (anything with ``randn(shape, device=)``, e.g. a ``NoiseSource``)."""
    callback = None
    if motion is not None:
        if noise is None:
            raise ValueError("motion re-injection needs a noise source")
        k = motion.shape[2]
        z = motion.to(x.device, torch.float32)

        def inject(sample: torch.Tensor, sigma: torch.Tensor) -> None:
            eps = noise.randn(z.shape, device=sample.device)
            s = sigma.to(sample.device)
            sample[:, :, :k] = ((1 - s) * z + s * eps).to(sample.dtype)

        x = x.clone()
        inject(x, schedule.sigmas[0])
        callback = lambda i, sample: inject(sample, schedule.sigmas[i + 1])  # noqa: E731  (in place)
    return sample_flow(velocity, x, schedule, "euler", progress=progress, callback=callback)
