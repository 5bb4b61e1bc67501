"""Discrete-time (DDPM-style) noise schedules: ᾱ tables and inference timesteps.

Used by the v-prediction DDIM solver of CogVideoX / SkyReels-A1 (``solvers.DDIMSolver``),
diffusers' ``CogVideoXDDIMScheduler`` configuration as the A1 release ships it:

* scaled-linear betas: β = linspace(√β₀, √β₁, 1000)², ᾱ = cumprod(1 − β), in float64;
* the SNR shift ᾱ / (s + (1 − s) ᾱ) (the identity for s = 1);
* zero-terminal-SNR rescaling: q = √ᾱ, q ← (q − q₉₉₉) q₀ / (q₀ − q₉₉₉), ᾱ = q²;
* "trailing" timesteps: round_half_even(arange(1000, 0, −1000/N)) − 1;
* each step goes from t to t − 1000 // N (the official rule; it is not the next scheduled
  timestep when N does not divide 1000), ᾱ = 1 below 0.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

SPACINGS = ("trailing", "leading", "linspace")


@dataclass
class DiscreteSchedule:
    alphas_cumprod: torch.Tensor   # [num_train] float64
    timesteps: torch.Tensor        # [N] int64, what the model sees, high to low
    num_train: int = 1000
    final_alpha_cumprod: float = 1.0

    @property
    def steps(self) -> int:
        return int(self.timesteps.shape[0])

    def prev_timestep(self, i: int) -> int:
        """Where step ``i`` ends: t_i − num_train // N (official DDIM rule)."""
        return int(self.timesteps[i]) - self.num_train // self.steps

    def alpha(self, t: int) -> float:
        return float(self.alphas_cumprod[t]) if t >= 0 else self.final_alpha_cumprod


def zero_terminal_snr(alphas_cumprod: torch.Tensor) -> torch.Tensor:
    q = alphas_cumprod.sqrt()
    q0, qT = q[0].clone(), q[-1].clone()
    q = q - qT
    q = q * (q0 / (q0 - qT))
    return q ** 2


def vp_schedule(steps: int, beta_start: float = 0.00085, beta_end: float = 0.012, num_train: int = 1000,
                zero_snr: bool = True, snr_shift_scale: float = 1.0, spacing: str = "trailing") -> DiscreteSchedule:
    """The CogVideoX DDIM schedule (defaults: the SkyReels-A1 / CogVideoX-5B configuration)."""
    if steps < 1 or steps > num_train:
        raise ValueError("steps must be between 1 and %d, got %d" % (num_train, steps))
    betas = torch.linspace(beta_start ** 0.5, beta_end ** 0.5, num_train, dtype=torch.float64) ** 2
    ac = torch.cumprod(1.0 - betas, dim=0)
    ac = ac / (snr_shift_scale + (1 - snr_shift_scale) * ac)
    if zero_snr:
        ac = zero_terminal_snr(ac)
    if spacing == "trailing":
        ts = np.round(np.arange(num_train, 0, -num_train / steps)).astype(np.int64) - 1
    elif spacing == "leading":
        ratio = num_train // steps
        ts = (np.arange(0, steps) * ratio).round()[::-1].copy().astype(np.int64)
    elif spacing == "linspace":
        ts = np.linspace(0, num_train - 1, steps).round()[::-1].copy().astype(np.int64)
    else:
        raise ValueError("unknown timestep spacing %r; choose one of %s" % (spacing, ", ".join(SPACINGS)))
    return DiscreteSchedule(alphas_cumprod=ac, timesteps=torch.from_numpy(ts), num_train=num_train)
