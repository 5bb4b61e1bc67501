"""Text-to-video, image-to-video and reference-to-video sampling: noise, CFG, the flow solver, one
timestep for all frames."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import torch

from ..host import Progress
from .flow_sampler import sample_flow
from .guidance import Denoiser, ModelInputs, ReferenceDenoiser
from .noise import NoiseSource
from .sigmas import flow_schedule

SOLVER_CHOICES = ("unipc", "euler", "lcm")
GRID_CHOICES = ("official", "diffusers", "simple")  # "hunyuan" is SkyReels-V1's own (sigmas.GRIDS)


@dataclass
class SampleSettings:
    steps: int = 30
    cfg: float = 6.0
    shift: float = 8.0
    seed: int = 0
    solver: str = "unipc"
    sigma_grid: str = "official"
    # Image guidance of the three-pass reference guidance (V3 R2V); used when the
    # conditioning carries time-axis references and cfg > 1.
    cfg_img: float = 1.0


def sample_video(model, shape: Sequence[int], cond: ModelInputs, uncond: Optional[ModelInputs],
                 settings: SampleSettings, caches: Tuple[object, object] = (None, None),
                 noise: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Sample a normalised latent of ``shape`` [B, 16, F, h, w]; returns it on the CPU, float32.

    ``cond`` / ``uncond``: :class:`ModelInputs` (Wan) or :class:`HunyuanInputs`; ``noise``
    replaces the seeded initial noise when given."""
    device = model.device
    schedule = flow_schedule(settings.steps, settings.shift, settings.sigma_grid)
    source = NoiseSource(settings.seed)
    if noise is not None:
        if tuple(noise.shape) != tuple(shape):
            raise ValueError("noise has shape %s, expected %s" % (list(noise.shape), list(shape)))
        x = noise.to(device=device, dtype=torch.float32)
    else:
        x = source.randn(shape, device=device)
    if getattr(cond, "time_refs", None) is not None:
        den = ReferenceDenoiser(model, cond, uncond, settings.cfg, settings.cfg_img, caches)
    else:
        den = Denoiser(model, cond, uncond, settings.cfg, caches)
    with torch.no_grad(), Progress(settings.steps, "sampling") as bar:
        x = sample_flow(den, x, schedule, settings.solver, progress=bar, noise=source)
    return x.float().cpu()
