"""The ordinary sampling loop (text-to-video and image-to-video): one timestep for all frames."""
from __future__ import annotations

from typing import Callable, Optional

import torch

from ..host import Progress, check_interrupt
from .finite import check_finite
from .sigmas import Schedule
from .solvers import make_solver


def sample_flow(velocity: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], x: torch.Tensor,
                schedule: Schedule, solver: str = "unipc", progress: Optional[Progress] = None,
                callback: Optional[Callable[[int, torch.Tensor], None]] = None, noise=None) -> torch.Tensor:
    """Integrate from noise ``x`` (at sigma[0]) to sigma = 0; returns the clean latent.
    ``noise``: the NoiseSource stochastic solvers (lcm) draw from."""
    s = make_solver(solver, schedule.sigmas, noise)
    batch = x.shape[0]
    for i in range(schedule.steps):
        check_interrupt()
        t = schedule.timesteps[i].reshape(1).expand(batch).to(x.device)
        v = velocity(x, t)
        x = s.step(v, x)
        check_finite(x, i + 1, schedule.steps)
        if callback is not None:
            callback(i, x)
        if progress is not None:
            progress.update(1)
    return x
