"""ComfyUI conditioning in and out of the engine, with no ComfyUI import.

CONDITIONING is a list of ``[tensor, dict]`` pairs.  The tensor is the umT5 text context
[1, L, 4096]; our text encoder pads it to 512 rows of which the padding is exactly zero, as
ComfyUI's own umT5 encoder does.  Image-to-video information rides in the dict under the
names ComfyUI's Wan nodes use, so conditioning moves freely between our nodes and core ones:

* ``concat_latent_image``: RAW VAE latent of [image, grey frames] [1, 16, F, h, w];
* ``concat_mask``: [1, 1, F, h, w], 0 on the latent frames that are given, 1 elsewhere;
* ``clip_vision_output``: an object with ``penultimate_hidden_states`` [B, 257 k, 1280].

Several entries in one CONDITIONING from our text encoder are successive prompts, one per
diffusion-forcing chunk (``skyreels_chunk`` in the dict).

Reference-to-video (SkyReels-V3 R2V) rides under the name of ComfyUI's Phantom node:

* ``time_dim_concat``: RAW VAE latent frames [1, 16, R, h, w] put after the video on the time
  axis (the R2V injector pads to 4 frames with the raw value of a normalised zero);
* ``skyreels_image_cfg``: the image guidance of the three-pass R2V guidance (our key).
"""
from __future__ import annotations

from typing import Callable, List, Optional, Sequence

import torch

from .guidance import ModelInputs


class ClipVisionOutput:
    """The shape of ComfyUI's CLIP_VISION_OUTPUT: attributes, also readable as items."""

    def __init__(self, penultimate_hidden_states: torch.Tensor, image_embeds: Optional[torch.Tensor] = None,
                 last_hidden_state: Optional[torch.Tensor] = None):
        self.penultimate_hidden_states = penultimate_hidden_states
        self.image_embeds = image_embeds
        self.last_hidden_state = last_hidden_state
        self.mm_projected = None

    def __getitem__(self, key):
        return getattr(self, key)

    def __setitem__(self, key, value):
        setattr(self, key, value)


class PromptParts:
    """The later ``|`` parts of a prompt, encoded only when a sampler asks for them (a prompt
    may have more parts than the video has chunks; encoding them all could take gigabytes).

    Rides in the first CONDITIONING entry's dict under ``skyreels_prompt_parts``; core nodes
    ignore it and see the first prompt."""

    BATCH = 8

    def __init__(self, encode: Callable[[List[str]], torch.Tensor], texts: Sequence[str]):
        self._encode = encode
        self.texts = list(texts)
        self._done: List[torch.Tensor] = []

    def __len__(self) -> int:
        return len(self.texts)

    def contexts(self, n: int) -> List[torch.Tensor]:
        """The first ``n`` parts' contexts [1, L, D] (encoded on first use, a batch at a time)."""
        n = min(int(n), len(self.texts))
        while len(self._done) < n:
            start = len(self._done)
            ctx = self._encode(self.texts[start:min(n, start + self.BATCH)])
            self._done.extend(ctx[i:i + 1] for i in range(ctx.shape[0]))
        return self._done[:n]


def make_conditioning(contexts: Sequence[torch.Tensor], more: Optional[PromptParts] = None) -> list:
    """CONDITIONING from one context per prompt (chunk), and the parts still to encode."""
    out = [[c, {"skyreels_chunk": i}] for i, c in enumerate(contexts)]
    if more is not None and len(more) and out:
        out[0][1]["skyreels_prompt_parts"] = more
    return out


def set_values(conditioning: list, values: dict) -> list:
    """A copy of ``conditioning`` with ``values`` added to every entry's dict."""
    out = []
    for t, d in conditioning:
        d = dict(d)
        d.update(values)
        out.append([t, d])
    return out


def _check(conditioning, what: str) -> None:
    if not isinstance(conditioning, (list, tuple)) or not conditioning:
        raise ValueError("%s conditioning is empty; connect a text encode node" % what)
    for item in conditioning:
        if not (isinstance(item, (list, tuple)) and len(item) == 2 and isinstance(item[0], torch.Tensor)):
            raise ValueError("%s is not CONDITIONING (a list of [tensor, dict] pairs)" % what)


def fit_context(context: torch.Tensor, text_dim: int, text_len: int = 512) -> torch.Tensor:
    """[1, L, D] -> [1, text_len, D]: zero-padded or truncated; checks the width."""
    if context.dim() == 2:
        context = context.unsqueeze(0)
    if context.shape[-1] != text_dim:
        raise ValueError(
            "the text conditioning has width %d but this model expects %d; use the umT5-XXL text encoder "
            "that belongs to the Wan / SkyReels models" % (context.shape[-1], text_dim))
    L = context.shape[1]
    if L > text_len:
        return context[:, :text_len]
    if L < text_len:
        pad = torch.zeros(context.shape[0], text_len - L, text_dim, dtype=context.dtype, device=context.device)
        context = torch.cat([context, pad], dim=1)
    return context


def contexts(conditioning, text_dim: int, text_len: int = 512, what: str = "positive",
             count: Optional[int] = None) -> List[torch.Tensor]:
    """The text contexts of ``conditioning``, in chunk order: all of them, or the first
    ``count`` (the prompts a sampler uses; later ``|`` parts are then never encoded)."""
    _check(conditioning, what)
    entries = sorted(enumerate(conditioning), key=lambda p: (_chunk_of(p[1][1]), p[0]))
    ctx = [t for _, (t, _) in entries]
    more = [d["skyreels_prompt_parts"] for _, (_, d) in entries
            if isinstance(d, dict) and isinstance(d.get("skyreels_prompt_parts"), PromptParts)]
    total = len(ctx) + sum(len(m) for m in more)
    if count is not None and total > count:
        from ..host import log

        log("the %s prompt has %d parts separated by '|' but the video has %d chunk(s); parts %d to %d are not used"
            % (what, total, count, count + 1, total))
    for m in more:
        want = len(m) if count is None else max(0, count - len(ctx))
        ctx.extend(m.contexts(want))
    if count is not None:
        ctx = ctx[:count]
    return [fit_context(t, text_dim, text_len) for t in ctx]


def _chunk_of(d) -> int:
    v = d.get("skyreels_chunk", 0) if isinstance(d, dict) else 0
    return v if isinstance(v, int) else 0


def clip_tokens(conditioning) -> Optional[torch.Tensor]:
    for _, d in conditioning:
        out = d.get("clip_vision_output")
        if out is not None:
            t = out["penultimate_hidden_states"] if not isinstance(out, torch.Tensor) else out
            return t
    return None


def image_condition(conditioning, num_latent_frames: int, height: int, width: int,
                    normalize: Callable[[torch.Tensor], torch.Tensor]) -> Optional[torch.Tensor]:
    """The I2V channels y [1, 20, F, h, w] (4 mask + 16 latent), or None if absent.

    The mask follows the official construction: 1 on the given latent frames (ComfyUI's
    ``concat_mask`` says the opposite, so it is inverted), repeated to 4 channels.
    """
    image = mask = None
    for _, d in conditioning:
        if d.get("concat_latent_image") is not None:
            image, mask = d["concat_latent_image"], d.get("concat_mask")
            break
    if image is None:
        return None
    if image.shape[-2:] != (height, width):
        raise ValueError("the image conditioning is %dx%d latents, the video %dx%d; use the same width and height"
                         % (image.shape[-1], image.shape[-2], width, height))
    image = image[:, :, :num_latent_frames].float()
    if image.shape[2] < num_latent_frames:
        image = torch.nn.functional.pad(image, (0, 0, 0, 0, 0, num_latent_frames - image.shape[2]))
    if mask is None:
        given = torch.zeros(1, 1, num_latent_frames, height, width)
        given[:, :, 0] = 1
    else:
        m = mask.float()
        if m.dim() == 4:
            m = m.unsqueeze(1)
        m = m.mean(dim=1, keepdim=True)[:, :, :num_latent_frames]
        if m.shape[-2:] != (height, width):
            m = torch.nn.functional.interpolate(m, size=(m.shape[2], height, width), mode="nearest")
        given = 1.0 - m
        if given.shape[2] < num_latent_frames:
            given = torch.nn.functional.pad(given, (0, 0, 0, 0, 0, num_latent_frames - given.shape[2]))
    return torch.cat([given.repeat(1, 4, 1, 1, 1), normalize(image[:1])], dim=1)


def model_inputs(conditioning, text_dim: int, text_len: int, what: str, *, y=None, clip=None,
                 refs=None, count: Optional[int] = None) -> List[ModelInputs]:
    """One :class:`ModelInputs` per prompt/chunk of ``conditioning`` (the first ``count``)."""
    return [ModelInputs(context=c, clip_fea=clip, y=y, time_refs=refs)
            for c in contexts(conditioning, text_dim, text_len, what, count)]


TIME_REFS = "time_dim_concat"
IMAGE_CFG = "skyreels_image_cfg"


def time_refs(conditioning, height: int, width: int,
              normalize: Callable[[torch.Tensor], torch.Tensor]) -> Optional[torch.Tensor]:
    """The normalised time-axis reference frames [1, 16, R, h, w], or None if absent."""
    for _, d in conditioning:
        raw = d.get(TIME_REFS)
        if raw is None:
            continue
        if raw.dim() != 5:
            raise ValueError("time-axis references must be a latent [1, 16, R, h, w], got %s" % list(raw.shape))
        if tuple(raw.shape[-2:]) != (height, width):
            raise ValueError("the reference latents are %dx%d, the video latent %dx%d; use the size the reference "
                             "node gives (its latent output)" % (raw.shape[-1], raw.shape[-2], width, height))
        return normalize(raw[:1].float())
    return None


def image_cfg(conditioning, default: float = 1.0) -> float:
    for _, d in conditioning:
        if d.get(IMAGE_CFG) is not None:
            return float(d[IMAGE_CFG])
    return default
