"""Classifier-free guidance around a Wan DiT: the velocity the solvers step with.

``Denoiser(model, cond, uncond, scale)(x, t)`` returns ``v_u + scale (v_c - v_u)``; with a
scale of 1 (or no negative) only the conditional pass runs.  ``cond`` and ``uncond`` are
:class:`ModelInputs`: what the DiT takes besides the latent and the timestep.

:class:`ReferenceDenoiser` is the three-pass guidance of SkyReels-V3 reference-to-video:
``u_ti + g_img (u_t - u_ti) + g_txt (c - u_t)`` with c the prompt with the references, u_t
the negative prompt with the references and u_ti the negative prompt with the reference
frames zeroed.
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
    # Normalised latent frames [1 or B, 16, R, h, w] put after the video on the time axis with
    # the same timestep; their prediction is dropped (V3 reference-to-video).
    time_refs: Optional[torch.Tensor] = None
    segments: Sequence = ()                  # models.wan.dit.LatentSegment s beside x (V3 extension)
    rope_frame_offset: int = 0               # temporal RoPE position of x's first frame

    def without_time_refs(self) -> "ModelInputs":
        """The same inputs with the reference frames zeroed (the official uncond-image pass)."""
        return replace(self, time_refs=None if self.time_refs is None else torch.zeros_like(self.time_refs))

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
                       time_refs=move(self.time_refs), segments=segments)


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
        refs = inputs.time_refs
        if refs is None:
            return self.model(x, t, inputs.context, clip_fea=inputs.clip_fea, y=y, fps=inputs.fps, cache=cache,
                              **extra)
        frames = x.shape[2]
        refs = refs.to(x.device, x.dtype).expand(x.shape[0], -1, -1, -1, -1)
        out = self.model(torch.cat([x, refs], dim=2), t, inputs.context, clip_fea=inputs.clip_fea, y=y,
                         fps=inputs.fps, cache=cache, **extra)
        return out[:, :, :frames]

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        v_c = self._run(x, t, self.cond, self.caches[0])
        if not self.uses_cfg:
            return v_c
        v_u = self._run(x, t, self.uncond, self.caches[1])
        return v_u + self.scale * (v_c - v_u)


class ReferenceDenoiser(Denoiser):
    """SkyReels-V3 reference-to-video guidance.

    Guidance is on when ``scale`` (the text guidance) is above 1, as in the official pipeline;
    ``img_scale`` alone does nothing.  Then ``u_ti + img_scale (u_t - u_ti) + scale (c - u_t)``.
    With ``img_scale`` 1 the uncond-image pass cancels out (``u_ti + (u_t - u_ti) = u_t``) and
    is skipped: two passes instead of three, the same result up to rounding.
    """

    def __init__(self, model, cond: ModelInputs, uncond: Optional[ModelInputs], scale: float,
                 img_scale: float = 1.0, caches=(None, None, None)):
        caches = tuple(caches) + (None,) * (3 - len(caches))
        super().__init__(model, cond, uncond, scale, caches[:2])
        self.img_scale = float(img_scale)
        self.uncond_img = uncond.without_time_refs() if uncond is not None else None
        self.cache_img = caches[2]

    @property
    def uses_cfg(self) -> bool:
        return self.uncond is not None and self.scale > 1.0

    @property
    def passes(self) -> int:
        """Model calls per step."""
        return 1 if not self.uses_cfg else (2 if self.img_scale == 1.0 else 3)

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        c = self._run(x, t, self.cond, self.caches[0])
        if not self.uses_cfg:
            return c
        u_t = self._run(x, t, self.uncond, self.caches[1])
        if self.img_scale == 1.0:
            return u_t + self.scale * (c - u_t)
        u_ti = self._run(x, t, self.uncond_img, self.cache_img)
        return u_ti + self.img_scale * (u_t - u_ti) + self.scale * (c - u_t)
