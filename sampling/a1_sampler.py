"""The SkyReels-A1 denoising loop for one window (``SkyReelsA1ImagePoseToVideoPipeline.__call__``).

Latents are in the pipeline's layout [1, F, 16, h, w] (frames before channels) and scale
(VAE latents x 0.7).  Each step:

* (long videos, windows after the first) at the start of step i with 3 < i < 8, latent frames
  1..n (n = overlap // 4 = 2) are blended with the previous window's last n latent frames as
  they were after step i: ``lat[1+j] = w_j prev[-n+j] + (1 - w_j) lat[1+j]``, w_j = (n - j) / n.
  The cache is one step less noisy than the latents it is blended into (official);
* the model input is the channel concat [noisy 16 | control 16 | image 16], the image latent
  on frame 0 and zeros after;
* classifier-free guidance on the face tokens against zeros: v = v_u + g (v_c - v_u); the two
  branches run one after the other (the official code batches them; the result is the same
  and the activation memory is halved);
* a DDIM v-prediction step (``solvers.DDIMSolver``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence

import torch

from ..host import Progress, check_interrupt
from .alphas import DiscreteSchedule, vp_schedule
from .solvers import DDIMSolver

ModelFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class A1SampleSettings:
    steps: int = 10
    guidance: float = 3.0
    fusion_interval: Sequence[int] = (3, 8)
    fusion_latents: int = 2          # overlap frames // 4

    def fusion_steps(self) -> List[int]:
        lo, hi = self.fusion_interval
        return [i for i in range(self.steps) if lo < i < hi]

    def fusion_weights(self) -> List[float]:
        n = self.fusion_latents
        return [(n - j) / n for j in range(n)]


def model_input(x: torch.Tensor, control: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """[x | control | image] on the channel axis; ``image`` [1, 1 or F, 16, h, w] (frame 0 only
    when it has one frame: zeros on the other frames)."""
    if image.shape[1] != x.shape[1]:
        full = torch.zeros_like(x)
        full[:, :image.shape[1]] = image.to(x)
        image = full
    return torch.cat([x, control.to(x), image.to(x)], dim=2)


def cfg_velocity(model: ModelFn, inp: torch.Tensor, t: torch.Tensor, face: torch.Tensor, guidance: float) -> torch.Tensor:
    """v_u + g (v_c - v_u), the unconditional branch with zero face tokens."""
    v_c = model(inp, t, face).float()
    if guidance == 1.0:
        return v_c
    v_u = model(inp, t, torch.zeros_like(face)).float()
    return v_u + guidance * (v_c - v_u)


def sample_a1_window(model: ModelFn, noise: torch.Tensor, control: torch.Tensor, image: torch.Tensor,
                     face: torch.Tensor, settings: A1SampleSettings, fusion: Optional[Dict[int, torch.Tensor]] = None,
                     keep_cache: bool = False, schedule: Optional[DiscreteSchedule] = None,
                     progress: Optional[Progress] = None,
                     on_step: Optional[Callable[[int, torch.Tensor, torch.Tensor], None]] = None):
    """Denoise one window.

    Args:
        model: ``model(x [B, F, 48, h, w], t [B], face [B, L, C]) -> v [B, F, 16, h, w]``.
        noise: the initial latents [1, F, 16, h, w] (init sigma 1).
        control: the control latents [1, F, 16, h, w], scaled.
        image: the reference image latent [1, 1, 16, h, w], scaled.
        face: the face tokens [1, L, C].
        fusion: {step: the previous window's latents after that step, last ``fusion_latents``
            frames [1, n, 16, h, w]}, or None for the first window.
        keep_cache: return this window's cache for the next one.
        on_step: called as ``on_step(i, model_input, latents_after)`` (tests, previews).

    Returns (latents [1, F, 16, h, w] float32, cache {step: [1, n, 16, h, w]} or None).
    """
    schedule = schedule or vp_schedule(settings.steps)
    solver = DDIMSolver(schedule)
    x = noise.float()
    n = settings.fusion_latents
    fusion_steps = set(settings.fusion_steps())
    weights = settings.fusion_weights()
    cache: Optional[Dict[int, torch.Tensor]] = {} if keep_cache else None
    for i in range(schedule.steps):
        check_interrupt()
        if fusion is not None and i in fusion_steps:
            prev = fusion[i].to(x)
            x = x.clone()
            for j, w in enumerate(weights):
                x[:, 1 + j] = w * prev[:, j] + (1 - w) * x[:, 1 + j]
        t = schedule.timesteps[i].reshape(1).to(x.device)
        inp = model_input(x, control, image)
        v = cfg_velocity(model, inp, t, face, settings.guidance)
        x = solver.step(v, x)
        if cache is not None and i in fusion_steps:
            cache[i] = x[:, -n:].detach().clone()
        if on_step is not None:
            on_step(i, inp, x)
        if progress is not None:
            progress.update(1)
    return x, cache
