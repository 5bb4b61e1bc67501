"""Flow-matching sigma schedules with shift.

Rectified flow: ``x_sigma = (1 - sigma) x0 + sigma * noise``; the model sees ``t = 1000 sigma``.

Two grids are in use:

* ``official``: SkyReels-V2 / Wan ``FlowUniPCMultistepScheduler`` (V2, V3-V2V):
  unshifted b = linspace(0.999, 0, N+1)[:N]; sigma = s b / (1 + (s-1) b); the model gets
  ``int(1000 sigma)`` (truncated) while the solver uses the float32 sigma; a final 0 is
  appended.
* ``diffusers``: ``UniPCMultistepScheduler(use_flow_sigmas=True)`` of newer diffusers (0.42 checked):
  unshifted b = linspace(1, 1/1000, N+1)[:N]; the model gets the float ``1000 sigma``.
  (SkyReels-A2 and V3-R2V ran on diffusers <= 0.36, whose flow grid is the ``official`` one.)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List

import numpy as np
import torch

GRIDS = ("official", "diffusers")


@dataclass
class Schedule:
    sigmas: torch.Tensor      # [N+1] float32, last is 0
    timesteps: torch.Tensor   # [N] what the model sees (int64 on the official grid, float32 otherwise)

    @property
    def steps(self) -> int:
        return int(self.timesteps.shape[0])

    def template(self) -> List[int]:
        """Integer timesteps, as the diffusion-forcing schedule uses them."""
        return [int(v) for v in self.timesteps.tolist()]


def shift_sigmas(b: np.ndarray, shift: float) -> np.ndarray:
    return shift * b / (1 + (shift - 1) * b)


def flow_schedule(steps: int, shift: float, grid: str = "official") -> Schedule:
    if steps < 1:
        raise ValueError("steps must be at least 1, got %d" % steps)
    if shift <= 0:
        raise ValueError("shift must be positive, got %g" % shift)
    if grid == "official":
        b = np.linspace(np.float32(0.999), 0.0, steps + 1)[:steps]  # float64, start = float32(0.999)
        s = shift_sigmas(b, shift)
        timesteps = torch.from_numpy((s * 1000).astype(np.int64))
    elif grid == "diffusers":
        b = np.linspace(1.0, 1.0 / 1000, steps + 1)[:steps]
        s = shift_sigmas(b, shift)
        timesteps = torch.from_numpy((s * 1000).astype(np.float32))
    else:
        raise ValueError("unknown sigma grid %r; choose one of %s" % (grid, ", ".join(GRIDS)))
    sigmas = torch.from_numpy(np.concatenate([s, [0.0]]).astype(np.float32))
    return Schedule(sigmas=sigmas, timesteps=timesteps)
