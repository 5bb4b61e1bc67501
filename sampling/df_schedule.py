"""The diffusion-forcing timestep matrix (spec section 4.5.2).

Latent frames are grouped in blocks of ``causal_block_size`` c.  Each block has a progress
counter r in [0, N+1]: 0 = not started (t = 999), k in 1..N = this row performs its k-th step
with t = template[k-1], N+1 = finished (t = 0).  Every row advances the first block by one;
a later block advances by one once the block before it has performed its last step, and
otherwise trails it by ``ar_step`` (0 = synchronous: all unfinished blocks move together).
Ready prefix frames count in whole blocks only (floor(P / c) blocks).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Sequence

import torch


class DFScheduleError(ValueError):
    """Arguments for which no diffusion-forcing schedule exists."""


@dataclass
class DFSchedule:
    step_matrix: torch.Tensor   # [R, F] int64 model timestep of every frame in every row
    step_index: torch.Tensor    # [R, F] int64 progress counter
    update_mask: torch.Tensor   # [R, F] bool: the frame's solver steps after this row
    num_steps: int

    @property
    def rows(self) -> int:
        return int(self.step_matrix.shape[0])

    @property
    def frames(self) -> int:
        return int(self.step_matrix.shape[1])


def expected_rows(num_steps: int, blocks: int, ready_blocks: int, ar_step: int) -> int:
    """Rows (model calls per CFG branch) of a schedule: N + (B - P - 1) * min(a, N).

    A block never trails the one before it by more than N rows: it starts at the latest when
    that block has performed its last step.  a = 0 gives N rows (synchronous)."""
    todo = blocks - ready_blocks
    return num_steps + max(todo - 1, 0) * min(ar_step, num_steps)


def df_schedule(num_frames: int, template: Sequence[int], ar_step: int = 0,
                num_prefix_frames: int = 0, causal_block_size: int = 1) -> DFSchedule:
    """Timestep matrix, progress counters and update masks for one chunk of ``num_frames``.

    ``template`` is the list of N integer model timesteps of the solver (``Schedule.template``).
    """
    n = len(template)
    c = int(causal_block_size)
    if n < 1:
        raise DFScheduleError("the step template is empty")
    if c < 1:
        raise DFScheduleError("causal_block_size must be at least 1, got %d" % c)
    if ar_step < 0:
        raise DFScheduleError("ar_step must be 0 (synchronous) or more, got %d" % ar_step)
    if num_frames < 1:
        raise DFScheduleError("a chunk needs at least one latent frame")
    if num_frames % c:
        raise DFScheduleError(
            "%d latent frames cannot be split into blocks of causal_block_size %d; every chunk's latent "
            "length must be a multiple of it" % (num_frames, c))
    if not 0 <= num_prefix_frames <= num_frames:
        raise DFScheduleError("%d prefix frames for a chunk of %d" % (num_prefix_frames, num_frames))
    blocks = num_frames // c
    ready = num_prefix_frames // c
    if ready >= blocks:
        raise DFScheduleError("every frame of the chunk is already a finished prefix; nothing to generate")

    finished = n + 1
    table = [999] + [int(t) for t in template] + [0]
    prev = [finished if b < ready else 0 for b in range(blocks)]
    rows_idx: List[List[int]] = []
    rows_mask: List[List[bool]] = []
    while not all(r >= n for r in prev):
        row = [0] * blocks
        for b in range(blocks):
            if b == 0 or prev[b - 1] >= n:
                row[b] = prev[b] + 1
            else:
                row[b] = row[b - 1] - ar_step
        row = [min(max(r, 0), finished) for r in row]
        rows_mask.append([row[b] != prev[b] and row[b] != finished for b in range(blocks)])
        rows_idx.append(row)
        prev = row

    idx = torch.tensor(rows_idx, dtype=torch.int64).repeat_interleave(c, dim=1)
    mask = torch.tensor(rows_mask, dtype=torch.bool).repeat_interleave(c, dim=1)
    steps = torch.tensor(table, dtype=torch.int64)[idx]
    return DFSchedule(step_matrix=steps, step_index=idx, update_mask=mask, num_steps=n)
