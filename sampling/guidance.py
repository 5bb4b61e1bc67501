"""Classifier-free guidance around a Wan DiT: the velocity the solvers step with.

``Denoiser(model, cond, uncond, scale)(x, t)`` returns ``v_u + scale (v_c - v_u)``; with a
scale of 1 (or no negative) only the conditional pass runs.  ``cond`` and ``uncond`` are
:class:`ModelInputs`: what the DiT takes besides the latent and the timestep.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional, Sequence

import torch


@dataclass
class ModelInputs:
    """Per-branch inputs of the DiT (see ``WanDiT.forward``)."""

    context: torch.Tensor                    # [B, L, text_dim]
    clip_fea: Optional[torch.Tensor] = None  # [B, N, image_dim]
    y: Optional[torch.Tensor] = None         # [B, 20, F, h, w]
    fps: Optional[int] = None                # fps index for DF-1.3B
    segments: Sequence = ()                  # models.wan.dit.LatentSegment s beside x (V3 extension)
    rope_frame_offset: int = 0               # temporal RoPE position of x's first frame

    def with_context(self, context: torch.Tensor) -> "ModelInputs":
        return replace(self, context=context)

    def for_fps(self, fps_index: Optional[int]) -> "ModelInputs":
        return replace(self, fps=fps_index)

    def to(self, model) -> "ModelInputs":
        """The tensors on the model's device (the model casts them to its compute dtype)."""
        dev = model.device
        move = lambda t: None if t is None else t.to(dev)  # noqa: E731
        segments = tuple(replace(s, latents=move(s.latents)) for s in self.segments)
        return replace(self, context=move(self.context), clip_fea=move(self.clip_fea), y=move(self.y),
                       segments=segments)


class Denoiser:
    def __init__(self, model, cond: ModelInputs, uncond: Optional[ModelInputs], scale: float,
                 caches=(None, None)):
        self.model = model
        self.cond = cond
        self.uncond = uncond
        self.scale = float(scale)
        self.caches = caches  # (cond cache, uncond cache): step caches such as TeaCache
        self.calls = 0

    @property
    def uses_cfg(self) -> bool:
        return self.uncond is not None and self.scale != 1.0

    def _run(self, x, t, inputs: ModelInputs, cache):
        self.calls += 1
        y = inputs.y
        if y is not None and y.shape[2] != x.shape[2]:
            raise ValueError("the conditioning has %d latent frames, the latent %d" % (y.shape[2], x.shape[2]))
        extra = {}
        if inputs.segments:
            extra["segments"] = inputs.segments
        if inputs.rope_frame_offset:
            extra["rope_frame_offset"] = inputs.rope_frame_offset
        return self.model(x, t, inputs.context, clip_fea=inputs.clip_fea, y=y, fps=inputs.fps, cache=cache, **extra)

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        v_c = self._run(x, t, self.cond, self.caches[0])
        if not self.uses_cfg:
            return v_c
        v_u = self._run(x, t, self.uncond, self.caches[1])
        return v_u + self.scale * (v_c - v_u)
