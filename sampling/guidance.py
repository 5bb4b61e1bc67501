"""Classifier-free guidance around a DiT: the velocity the solvers step with.

``Denoiser(model, cond, uncond, scale)(x, t)`` returns ``v_u + scale (v_c - v_u)``; with a
scale of 1 (or no negative) only the conditional pass runs.  ``cond`` and ``uncond`` are
what the DiT takes besides the latent and the timestep: :class:`ModelInputs` for the Wan DiT,
:class:`HunyuanInputs` for HunyuanVideo (SkyReels-V1, whose embedded guidance rides with
each branch); each knows how to call its model (``call``).


:class:`ReferenceDenoiser` is the three-pass guidance of SkyReels-V3 reference-to-video:
``u_ti + g_img (u_t - u_ti) + g_txt (c - u_t)`` with c the prompt with the references, u_t
the negative prompt with the references and u_ti the negative prompt with the reference
frames zeroed.

:class:`AudioGuidance` is the audio-aware variant of the SkyReels-V3 talking avatar: a text
scale and an audio scale, with the audio-free branch fed zero audio features.
"""
from __future__ import annotations

import math
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


    def call(self, model, x: torch.Tensor, t: torch.Tensor, cache=None) -> torch.Tensor:
        """The velocity of a Wan DiT for this branch (time-axis references appended, their
        prediction dropped; V3 extension segments beside x)."""
        y = self.y
        if y is not None and y.shape[2] != x.shape[2]:
            raise ValueError("the conditioning has %d latent frames, the latent %d" % (y.shape[2], x.shape[2]))
        extra = {}
        if self.segments:
            extra["segments"] = self.segments
        if self.rope_frame_offset:
            extra["rope_frame_offset"] = self.rope_frame_offset
        refs = self.time_refs
        if refs is None:
            return model(x, t, self.context, clip_fea=self.clip_fea, y=y, fps=self.fps, cache=cache, **extra)
        frames = x.shape[2]
        refs = refs.to(x.device, x.dtype).expand(x.shape[0], -1, -1, -1, -1)
        out = model(torch.cat([x, refs], dim=2), t, self.context, clip_fea=self.clip_fea, y=y, fps=self.fps,
                    cache=cache, **extra)
        return out[:, :, :frames]


@dataclass
class HunyuanInputs:
    """Per-branch inputs of the HunyuanVideo DiT (SkyReels-V1, see ``HunyuanDiT.forward``)."""

    text: torch.Tensor                          # [B, L, 4096] Llama states
    pooled: torch.Tensor                        # [B, 768] CLIP-L pooled text
    text_mask: Optional[torch.Tensor] = None    # [B, L], ones then zeros; None = all valid
    guidance: float = 1.0                       # embedded guidance scale (the model gets it × 1000)
    image_latents: Optional[torch.Tensor] = None  # [B, 16, F, h, w], scaled; image-to-video

    def to(self, model) -> "HunyuanInputs":
        dev = model.device
        move = lambda t: None if t is None else t.to(dev)  # noqa: E731
        return replace(self, text=move(self.text), pooled=move(self.pooled), text_mask=move(self.text_mask),
                       image_latents=move(self.image_latents))

    def call(self, model, x: torch.Tensor, t: torch.Tensor, cache=None) -> torch.Tensor:
        """The velocity of a HunyuanVideo DiT for this branch; one prompt serves a batch."""
        B = x.shape[0]
        fit = lambda v: v if v is None or v.shape[0] == B else v.expand(B, *v.shape[1:])  # noqa: E731
        g = torch.full((B,), float(self.guidance) * 1000.0, dtype=torch.float32, device=x.device)
        return model(x, t, fit(self.text), fit(self.pooled), guidance=g, text_mask=fit(self.text_mask),
                     image_latents=fit(self.image_latents), cache=cache)


class Denoiser:
    def __init__(self, model, cond: ModelInputs, uncond: Optional[ModelInputs], scale: float,
                 caches=(None, None)):
        self.model = model
        self.cond = cond
        self.uncond = uncond
        self.scale = float(scale)
        if not math.isfinite(self.scale):
            raise ValueError("the guidance scale (cfg) must be a finite number, got %r" % (scale,))
        self.caches = caches  # (cond cache, uncond cache): step caches such as TeaCache
        self.calls = 0

    @property
    def uses_cfg(self) -> bool:
        return self.uncond is not None and self.scale != 1.0

    def _run(self, x, t, inputs, cache):
        self.calls += 1
        return inputs.call(self.model, x, t, cache)

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        v_c = self._run(x, t, self.cond, self.caches[0])
        if not self.uses_cfg:
            return v_c
        v_u = self._run(x, t, self.uncond, self.caches[1])
        return v_u + self.scale * (v_c - v_u)


class AudioGuidance:
    """Audio-aware CFG (SkyReels-V3 talking avatar), three regimes by which scale is above 1:

    * both: ``v_u + g_t (v_c - v_dt) + g_a (v_dt - v_u)``; 3 calls: cond (prompt, audio),
      drop_text (negative, audio), uncond (negative, zero audio);
    * text only: ``v_dt + g_t (v_c - v_dt)``; 2 calls;
    * audio only: ``v_da + g_a (v_c - v_da)`` with drop_audio = (prompt, zero audio); 2 calls;
    * neither (the distilled model's 1 / 1): ``v_c``; 1 call.

    "Above 1" is strict; a scale of 0.5 is the same as 1.  ``audio`` is the windows tensor the
    model takes (``WanDiT.forward(audio=...)``); the audio-free branch gets zeros of its shape.
    """

    def __init__(self, model, cond: ModelInputs, negative: Optional[ModelInputs], audio: torch.Tensor,
                 text_scale: float = 1.0, audio_scale: float = 1.0):
        self.model = model
        self.cond = cond
        self.negative = negative
        self.audio = audio
        self.text_scale = float(text_scale)
        self.audio_scale = float(audio_scale)
        self.calls: list = []  # branch names, in order
        if self.regime in ("both", "text") and negative is None:
            raise ValueError("text guidance above 1 needs a negative prompt")

    @property
    def regime(self) -> str:
        t, a = self.text_scale > 1, self.audio_scale > 1
        return "both" if t and a else "text" if t else "audio" if a else "none"

    def _run(self, name: str, x, t, inputs: ModelInputs, audio: torch.Tensor):
        self.calls.append(name)
        return self.model(x, t, inputs.context, clip_fea=inputs.clip_fea, y=inputs.y, audio=audio)

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        regime = self.regime
        v_c = self._run("cond", x, t, self.cond, self.audio)
        if regime == "none":
            return v_c
        if regime == "audio":
            v_da = self._run("drop_audio", x, t, self.cond, torch.zeros_like(self.audio))
            return v_da + self.audio_scale * (v_c - v_da)
        v_dt = self._run("drop_text", x, t, self.negative, self.audio)
        if regime == "text":
            return v_dt + self.text_scale * (v_c - v_dt)
        v_u = self._run("uncond", x, t, self.negative, torch.zeros_like(self.audio))
        return v_u + self.text_scale * (v_c - v_dt) + self.audio_scale * (v_dt - v_u)


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
        if not math.isfinite(self.img_scale):
            raise ValueError("the image guidance scale must be a finite number, got %r" % (img_scale,))
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
