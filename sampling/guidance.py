"""Classifier-free guidance around a Wan DiT: the velocity the solvers step with.

``Denoiser(model, cond, uncond, scale)(x, t)`` returns ``v_u + scale (v_c - v_u)``; with a
scale of 1 (or no negative) only the conditional pass runs.  ``cond`` and ``uncond`` are
:class:`ModelInputs`: what the DiT takes besides the latent and the timestep.

``AudioGuidance`` is the audio-aware variant of the SkyReels-V3 talking avatar: a text scale
and an audio scale, with the audio-free branch fed zero audio features.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional

import torch


@dataclass
class ModelInputs:
    """Per-branch inputs of the DiT (see ``WanDiT.forward``)."""

    context: torch.Tensor                    # [B, L, text_dim]
    clip_fea: Optional[torch.Tensor] = None  # [B, N, image_dim]
    y: Optional[torch.Tensor] = None         # [B, 20, F, h, w]
    fps: Optional[int] = None                # fps index for DF-1.3B

    def with_context(self, context: torch.Tensor) -> "ModelInputs":
        return replace(self, context=context)

    def for_fps(self, fps_index: Optional[int]) -> "ModelInputs":
        return replace(self, fps=fps_index)

    def to(self, model) -> "ModelInputs":
        """The tensors on the model's device (the model casts them to its compute dtype)."""
        dev = model.device
        move = lambda t: None if t is None else t.to(dev)  # noqa: E731
        return replace(self, context=move(self.context), clip_fea=move(self.clip_fea), y=move(self.y))


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
        return self.model(x, t, inputs.context, clip_fea=inputs.clip_fea, y=y, fps=inputs.fps, cache=cache)

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
