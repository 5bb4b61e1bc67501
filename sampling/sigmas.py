"""Flow-matching sigma schedules with shift.

Rectified flow: ``x_sigma = (1 - sigma) x0 + sigma * noise``; the model sees ``t = 1000 sigma``.

These grids are in use:

* ``official``: SkyReels-V2 / Wan ``FlowUniPCMultistepScheduler`` (V2, V3-V2V):
  unshifted b = linspace(0.999, 0, N+1)[:N]; sigma = s b / (1 + (s-1) b); the model gets
  ``int(1000 sigma)`` (truncated) while the solver uses the float32 sigma; a final 0 is
  appended.
* ``diffusers``: ``UniPCMultistepScheduler(use_flow_sigmas=True)`` of newer diffusers (0.42 checked):
  unshifted b = linspace(1, 1/1000, N+1)[:N]; the model gets the float ``1000 sigma``.
  (SkyReels-A2 and V3-R2V ran on diffusers <= 0.36, whose flow grid is the ``official`` one.)
* ``simple``: unshifted b = linspace(1, 0, N+1)[:N], float timesteps.  With 4 steps these are
  the timesteps 1000, 750, 500, 250 of the step-distilled Wan models and LoRAs (lightx2v's
  ``denoising_step_list``), which after shift 5 are 1000, 937.5, 833.3, 625; it is also
  ComfyUI's ``simple`` scheduler on a flow model.
* ``hunyuan``: the ``simple`` grid computed as diffusers' ``FlowMatchEulerDiscreteScheduler``
  does for SkyReels-V1 (HunyuanVideo): b cast to float32 and the shift computed in float32;
  the model gets the float32 ``1000 sigma`` (not rounded: 1000.0, 995.0981, 989.899, ...).

:func:`a2v_schedule` is the grid of the V3 talking avatar (Euler): t = linspace(1000, 1, N)
shifted in float32, the model gets the float t.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List

import numpy as np
import torch

GRIDS = ("official", "diffusers", "simple", "hunyuan")


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
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError("steps must be a whole number of at least 1, got %r" % (steps,))
    if isinstance(shift, bool) or not isinstance(shift, (int, float, np.floating)) or not math.isfinite(shift) \
            or shift <= 0:
        raise ValueError("shift must be a finite number above 0, got %r" % (shift,))
    if grid == "official":
        b = np.linspace(np.float32(0.999), 0.0, steps + 1)[:steps]  # float64, start = float32(0.999)
        s = shift_sigmas(b, shift)
        timesteps = torch.from_numpy((s * 1000).astype(np.int64))
    elif grid in ("diffusers", "simple"):
        b = np.linspace(1.0, 1.0 / 1000 if grid == "diffusers" else 0.0, steps + 1)[:steps]
        s = shift_sigmas(b, shift)
        timesteps = torch.from_numpy((s * 1000).astype(np.float32))
    elif grid == "hunyuan":
        b = np.linspace(1.0, 0.0, steps + 1)[:steps].astype(np.float32)
        s = (shift * b / (1 + (shift - 1) * b)).astype(np.float32)  # float32 arithmetic, as the scheduler
        timesteps = torch.from_numpy(s) * 1000.0
    else:
        raise ValueError("unknown sigma grid %r; choose one of %s" % (grid, ", ".join(GRIDS)))
    sigmas = torch.from_numpy(np.concatenate([s, [0.0]]).astype(np.float32))
    return Schedule(sigmas=sigmas, timesteps=timesteps)


def a2v_schedule(steps: int, shift: float) -> Schedule:
    """The SkyReels-V3 talking-avatar grid: t = numpy ``linspace(1000, 1, steps)`` in float32, 0
    appended, each shifted in float32 (r = t / 1000, t' = 1000 s r / (1 + (s - 1) r)); the model
    gets the float t' (never rounded), the Euler solver sigma = t' / 1000."""
    if steps < 1:
        raise ValueError("steps must be at least 1, got %d" % steps)
    if shift <= 0:
        raise ValueError("shift must be positive, got %g" % shift)
    t = torch.cat([torch.from_numpy(np.linspace(1000, 1, steps, dtype=np.float32)), torch.zeros(1)])
    r = t / 1000
    shifted = 1000 * (shift * r / (1 + (shift - 1) * r))
    return Schedule(sigmas=shifted / 1000, timesteps=shifted[:-1].clone())
