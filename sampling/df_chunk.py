"""One diffusion-forcing chunk (spec section 4.5.3).

Every row of the timestep matrix runs the whole chunk through the model once per CFG
branch, with one timestep per latent frame.  Each latent frame has its own solver (UniPC
order 2 keeps a per-frame history) and steps only when the row's update mask says so.
Clean prefix frames stay untouched; with ``addnoise_condition`` A > 0 the model's *input
copy* of them is ``(1 - A/1000) z + (A/1000) noise`` at timestep A.  An optional end latent is
appended after the generated frames, pinned at t = 0, never updated, and dropped from the
result.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import torch

from ..host import Progress, check_interrupt
from .df_schedule import DFSchedule, df_schedule
from .finite import check_finite
from .noise import NoiseSource
from .sigmas import Schedule
from .solvers import make_solver


@dataclass
class DFChunkSettings:
    ar_step: int = 0
    causal_block_size: int = 1
    addnoise_condition: int = 0
    solver: str = "unipc"
    # Keep every prefix frame clean even when it does not fill a whole causal block.  The
    # official code counts ready frames in whole blocks only, so with causal_block_size 5 a
    # one-frame start image is denoised again (spec section 12, quirk 3); we pin it instead.
    pin_prefix: bool = True


def chunk_schedule(num_frames: int, num_prefix: int, end_frames: int, schedule: Schedule,
                   settings: DFChunkSettings) -> DFSchedule:
    """The chunk's matrix, plus end-frame columns pinned at t = 0 and never updated.

    The official code builds the matrix with the end frame as one more block and then
    overwrites its column; in asynchronous mode that block only adds rows in which no real
    frame changes.  Building the matrix for the real frames and appending the pinned columns
    gives the same real-frame rows without those idle model calls, and does not need the
    end frame to fill a whole causal block.
    """
    s = df_schedule(num_frames, schedule.template(), settings.ar_step, num_prefix, settings.causal_block_size)
    if settings.pin_prefix and num_prefix % settings.causal_block_size:
        s.step_matrix[:, :num_prefix] = 0
        s.step_index[:, :num_prefix] = s.num_steps + 1
        s.update_mask[:, :num_prefix] = False
    if end_frames:
        rows = s.rows
        s.step_matrix = torch.cat([s.step_matrix, torch.zeros(rows, end_frames, dtype=torch.int64)], dim=1)
        s.step_index = torch.cat([s.step_index, torch.full((rows, end_frames), s.num_steps + 1)], dim=1)
        s.update_mask = torch.cat([s.update_mask, torch.zeros(rows, end_frames, dtype=torch.bool)], dim=1)
    return s


def sample_df_chunk(velocity: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], latents: torch.Tensor,
                    num_prefix: int, schedule: Schedule, settings: DFChunkSettings,
                    noise: Optional[NoiseSource] = None, end_latent: Optional[torch.Tensor] = None,
                    progress: Optional[Progress] = None,
                    on_row: Optional[Callable[[int, torch.Tensor, torch.Tensor], None]] = None) -> torch.Tensor:
    """Denoise one chunk.

    Args:
        velocity: ``velocity(x [1, C, F', h, w], t [1, F'])`` -> v (CFG included).
        latents: [1, C, F, h, w] initial noise whose first ``num_prefix`` frames already hold
            the clean prefix latents.
        schedule: the flow schedule (sigmas for the solvers, integer template for the matrix).
        noise: noise stream for ``addnoise_condition`` (needed when it is > 0 and a prefix exists).
        end_latent: [1, C, k, h, w] frames to append at t = 0 (start-and-end-frame mode).
        on_row: called as ``on_row(row, model_input, t)`` before each row (debugging, tests).
    Returns the denoised [1, C, F, h, w] (without the end frames).
    """
    frames = latents.shape[2]
    end_frames = 0 if end_latent is None else end_latent.shape[2]
    x = latents.clone()
    if end_frames:
        x = torch.cat([x, end_latent.to(x.device, x.dtype)], dim=2)
    plan = chunk_schedule(frames, num_prefix, end_frames, schedule, settings)
    solver_noise = noise if noise is not None else NoiseSource(0)  # drawn from by the lcm solver only
    solvers = [make_solver(settings.solver, schedule.sigmas, solver_noise) for _ in range(frames + end_frames)]
    a = int(settings.addnoise_condition)
    if a > 0 and num_prefix > 0 and noise is None:
        raise ValueError("addnoise_condition needs a noise source")
    for r in range(plan.rows):
        check_interrupt()
        t = plan.step_matrix[r].clone()
        inp = x
        if a > 0 and num_prefix > 0:
            inp = x.clone()
            pre = inp[:, :, :num_prefix]
            eps = noise.randn(pre.shape, device=pre.device, dtype=pre.dtype)
            inp[:, :, :num_prefix] = pre * (1.0 - 0.001 * a) + eps * (0.001 * a)
            t[:num_prefix] = a
        t = t.unsqueeze(0).to(x.device)
        if on_row is not None:
            on_row(r, inp, t)
        v = velocity(inp, t)
        for f in torch.nonzero(plan.update_mask[r]).flatten().tolist():
            x[:, :, f] = solvers[f].step(v[:, :, f], x[:, :, f])
        check_finite(x, r + 1, plan.rows, "denoising row")
        if progress is not None:
            progress.update(1)
    return x[:, :, :frames]
