"""TeaCache for the Wan / SkyReels DiT: skip the block stack when the timestep input barely moved.

Per forward call of one CFG branch (SkyReels-V2 ``transformer.py``, spec §4.6):

* the modulated input ``m`` is ``e0`` (the 6-way time projection, "ret-steps" mode) or ``e``
  (the time embedding);
* ``rel = mean|m - m_prev| / mean|m_prev|``; ``acc += poly(rel)`` with the official
  4th-degree polynomial of the model;
* if ``acc < threshold`` the blocks are skipped and the residual (block-stack output minus
  input) of the last full computation of this branch is added; otherwise the blocks run,
  the residual is stored and ``acc`` is reset to 0;
* the first calls always compute (warm-up: 5 steps with ret-steps, 1 without) and so do the
  calls from the cutoff on (none with ret-steps, the last step without).

One :class:`TeaCache` per CFG branch (``Denoiser(..., caches=teacache_pair(...))``).

The counter (a deliberate deviation).  The official code keeps one counter for both branches,
incremented on every call (cond and uncond), with its warm-up ``ret_steps`` and cutoff
``cutoff_steps`` expressed in calls (``2 x`` steps) but wrapped to 0 at ``num_steps`` (N,
not 2N).  So the warm-up re-occurs half way through sampling and the cutoff is never
reached (spec §4.6, §12.4).  Here each branch counts its own calls and wraps at
``calls_per_branch`` (the steps, or the rows of a diffusion-forcing chunk): the warm-up
covers the first 5 (or 1) steps once and, without ret-steps, the last step always
computes, which is what the official values (written as ``5*2``, ``num_steps*2 - 2`` calls
of two branches) are meant to do.  With CFG off only
the cond cache is used, and it still counts steps, not parity of calls.  The wrap makes one
cache pair reusable for the next chunk or run; a change of latent size (the shape of ``m``)
also forces a full computation.
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import torch

# Official coefficients, highest power first (spec §4.6).  Keys: (table, use_ret_steps).
COEFFICIENTS = {
    ("i2v-540p", True): (2.57151496e+05, -3.54229917e+04, 1.40286849e+03, -1.35890334e+01, 1.32517977e-01),
    ("i2v-720p", True): (8.10705460e+03, 2.13393892e+03, -3.72934672e+02, 1.66203073e+01, -4.17769401e-02),
    ("i2v-540p", False): (-3.02331670e+02, 2.23948934e+02, -5.25463970e+01, 5.87348440e+00, -2.01973289e-01),
    ("i2v-720p", False): (-114.36346466, 65.26524496, -18.82220707, 4.91518089, -0.23412683),
    ("1.3B", True): (-5.21862437e+04, 9.23041404e+03, -5.28275948e+02, 1.36987616e+01, -4.99875664e-02),
    ("14B", True): (-3.03318725e+05, 4.90537029e+04, -2.65530556e+03, 5.87365115e+01, -3.15583525e-01),
    ("1.3B", False): (2.39676752e+03, -1.31110545e+03, 2.01331979e+02, -8.29855975e+00, 1.37887774e-01),
    ("14B", False): (-5784.54975374, 5449.50911966, -1811.16591783, 256.27178429, -13.02252404),
}

# Latent sizes of the two I2V presets (pixels / 8): 960x544 and 1280x720.
_I2V_AREAS = {"i2v-540p": 68 * 120, "i2v-720p": 90 * 160}


def polyval(coefficients: Sequence[float], x: float) -> float:
    """Polynomial with the highest power first (numpy.poly1d convention)."""
    y = 0.0
    for c in coefficients:
        y = y * x + c
    return y


def coefficient_table(config, use_ret_steps: bool = True, latent_hw: Optional[Sequence[int]] = None) -> str:
    """The name of the official table for a model: "i2v-540p" / "i2v-720p" for image-to-video
    (by the latent size), else "1.3B" / "14B" (T2V and DF) by the model size."""
    if getattr(config, "image_dim", None) or getattr(config, "variant", "") == "i2v":
        if latent_hw is None:
            raise ValueError("image-to-video TeaCache coefficients depend on the resolution (540P or 720P): "
                             "pass latent_hw, the latent (height, width)")
        area = int(latent_hw[0]) * int(latent_hw[1])
        return min(_I2V_AREAS, key=lambda k: abs(_I2V_AREAS[k] - area))
    size = config.size_name
    if size not in ("1.3B", "14B"):
        raise ValueError("TeaCache has official coefficients for the 1.3B and 14B models only; this model "
                         "(dim %d, %d layers) matches neither" % (config.dim, config.num_layers))
    return size


class TeaCache:
    """The step cache of one CFG branch (``lookup(e, e0)`` / ``store(residual)`` protocol).

    Args:
        coefficients: the rescaling polynomial, highest power first.
        threshold: accumulated rescaled distance below which a call is skipped (0.1 ~ 2x,
            0.2 ~ 3x faster per the official help text).
        calls_per_branch: forward calls this branch makes in one run (steps; rows of a
            diffusion-forcing chunk); the counter wraps there.
        use_ret_steps: compare ``e0`` and use the ret-steps warm-up and cutoff, else ``e``.
    """

    def __init__(self, coefficients: Sequence[float], threshold: float, calls_per_branch: int,
                 use_ret_steps: bool = True):
        if calls_per_branch < 1:
            raise ValueError("calls_per_branch must be at least 1, got %d" % calls_per_branch)
        if threshold < 0:
            raise ValueError("the TeaCache threshold must be >= 0, got %r" % threshold)
        self.coefficients = tuple(float(c) for c in coefficients)
        self.threshold = float(threshold)
        self.calls = int(calls_per_branch)
        self.use_ret_steps = bool(use_ret_steps)
        self.warmup = 5 if use_ret_steps else 1
        self.cutoff = self.calls if use_ret_steps else self.calls - 1
        self.skipped: List[int] = []  # call indices (within the run) that were skipped
        self.reset()

    def reset(self) -> None:
        """Forget everything (a new run)."""
        self.index = 0
        self.accumulated = 0.0
        self.previous: Optional[torch.Tensor] = None
        self.residual: Optional[torch.Tensor] = None
        self.skipped = []

    # ------------------------------------------------------------------ protocol

    def lookup(self, e: torch.Tensor, e0: torch.Tensor) -> Optional[torch.Tensor]:
        """The cached residual when this call may skip the blocks, else None (compute)."""
        if self.index >= self.calls:  # a new run (or the next chunk) with the same cache
            self.index = 0
            self.skipped = []
        m = (e0 if self.use_ret_steps else e).detach()
        i = self.index
        self.index += 1
        compute = True
        if i < self.warmup or i >= self.cutoff or self.previous is None or self.residual is None \
                or self.previous.shape != m.shape:
            self.accumulated = 0.0
        else:
            prev = self.previous.float()
            rel = ((m.float() - prev).abs().mean() / prev.abs().mean().clamp(min=1e-12)).item()
            self.accumulated += polyval(self.coefficients, rel)
            if self.accumulated < self.threshold:
                compute = False
            else:
                self.accumulated = 0.0
        self.previous = m.clone()
        if compute:
            return None
        self.skipped.append(i)
        return self.residual

    def store(self, residual: torch.Tensor) -> None:
        self.residual = residual.detach()

    @property
    def computed(self) -> int:
        return self.index - len(self.skipped)


def teacache_pair(config, threshold: float, calls_per_branch: int, use_ret_steps: bool = True,
                  latent_hw: Optional[Sequence[int]] = None) -> Tuple[TeaCache, TeaCache]:
    """(cond cache, uncond cache) with the official coefficients for ``config``.

    Args:
        config: the :class:`WanDiTConfig` (model size and variant select the table).
        threshold: see :class:`TeaCache`.
        calls_per_branch: steps (T2V / I2V) or rows of a diffusion-forcing chunk.
        use_ret_steps: compare ``e0`` (recommended) instead of ``e``.
        latent_hw: latent (height, width); required for image-to-video models (540P / 720P).
    """
    table = coefficient_table(config, use_ret_steps, latent_hw)
    coefficients = COEFFICIENTS[(table, bool(use_ret_steps))]
    return (TeaCache(coefficients, threshold, calls_per_branch, use_ret_steps),
            TeaCache(coefficients, threshold, calls_per_branch, use_ret_steps))


# TeaCache4HunyuanVideo (ali-vilab/TeaCache, also in ComfyUI-TeaCache): the official calibration for
# HunyuanVideo, of which SkyReels-V1 is a fine-tune (SkyReels-V1 itself publishes none).  Its
# indicator is the image tokens normalised and modulated by the first double-stream block; the
# first and the last step always compute (the ``use_ret_steps=False`` schedule here).
# Official guidance: 0.1 ~ 1.6x, 0.15 ~ 2.1x faster.
HUNYUAN_COEFFICIENTS = (7.33226126e+02, -4.01131952e+02, 6.75869174e+01, -3.14987800e+00, 9.61237896e-02)


def hunyuan_teacache_pair(threshold: float, calls_per_branch: int) -> Tuple[TeaCache, TeaCache]:
    """(cond cache, uncond cache) for the HunyuanVideo DiT (SkyReels-V1); each CFG branch has its own."""
    return (TeaCache(HUNYUAN_COEFFICIENTS, threshold, calls_per_branch, use_ret_steps=False),
            TeaCache(HUNYUAN_COEFFICIENTS, threshold, calls_per_branch, use_ret_steps=False))
