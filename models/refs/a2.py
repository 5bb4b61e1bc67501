"""SkyReels-A2 elements-to-video: how up to three references become the I2V conditioning.

The official pipeline (``A2Pipeline.prepare_latents`` with ``vae_combine="before"``,
``vae_repeat=True``, as ``infer.py`` calls it) builds one pixel video of T frames:

* reference 0 in pixel frame 0, each further reference repeated over the next 4 pixel frames
  (one latent frame each), zero frames after: [ref0, ref1 x4, ref2 x4, 0 ...];
* it is VAE-encoded once, as a *sample* of the posterior, and normalised;
* the 4 mask channels are 1 on the latent frames the references occupy (0..n-1), 0 elsewhere;
* condition = [mask (4), latent (16)] on the channel axis, after the 16 noise channels.

The references also enter as CLIP tokens, concatenated on the token axis in reference order.
Roles decide the pixel preparation: subjects and objects are padded with white to the video's
aspect, the background is centre-cropped (``infer.py``).

One reference: the official code always raises there (its mask is 4 slots too long).  Here it
is the plain Wan I2V layout, which is what the 2- and 3-reference layouts reduce to: the
reference in frame 0, mask on latent frame 0.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Sequence

import torch

from . import images

ROLES = ("subject", "object", "background")
MAX_REFS = len(ROLES)
REPEAT = 4                 # pixel frames of every reference after the first (one latent frame)
TIME_FACTOR = 4

# Official defaults (infer.py): 832x480, 81 frames, UniPC flow shift 8, 50 steps, cfg 5; the
# first 12 decoded frames (where the references show) are dropped and the video is written at 15 fps.
WIDTH, HEIGHT, FRAMES = 832, 480, 81
STEPS, CFG, SHIFT = 50, 5.0, 8.0
DROP_FIRST_FRAMES = 12
FPS = 15.0


@dataclass(frozen=True)
class Layout:
    """Where the references sit: the reference index of every pixel frame (-1 = a zero frame)
    and the 4 mask channels of every latent frame."""

    pixel_frame_source: List[int]
    mask: List[List[int]]

    @property
    def num_latent_frames(self) -> int:
        return len(self.mask)


def layout(num_refs: int, num_frames: int, repeat: bool = True) -> Layout:
    """The official frame and mask layout for ``num_refs`` references and ``num_frames`` frames.

    ``repeat=False`` is the official ``vae_repeat=False`` branch (one pixel frame per
    reference; the mask then covers part of a latent frame).  One reference gives the I2V layout.
    """
    if not 1 <= num_refs <= MAX_REFS:
        raise ValueError("SkyReels-A2 takes 1 to %d references, got %d" % (MAX_REFS, num_refs))
    if num_frames < 1 or (num_frames - 1) % TIME_FACTOR:
        raise ValueError("num_frames must be 4k+1, got %d" % num_frames)
    per = REPEAT if repeat else 1
    used = 1 + per * (num_refs - 1)
    if used > num_frames:
        raise ValueError("%d references take %d frames; use at least %d frames (4k+1)"
                         % (num_refs, used, used + (-(used - 1)) % TIME_FACTOR))
    source = [0] + [i for i in range(1, num_refs) for _ in range(per)] + [-1] * (num_frames - used)
    # The first pixel frame fills the 4 mask slots of latent frame 0, then one slot per frame.
    slots = [1] * (TIME_FACTOR + used - 1) + [0] * (num_frames - used)
    mask = [slots[i:i + TIME_FACTOR] for i in range(0, len(slots), TIME_FACTOR)]
    return Layout(source, mask)


def prepare_vae_image(arr, role: str, width: int, height: int):
    """uint8 [h, w, 3] -> uint8 [height, width, 3] by role (background: crop; others: white pad)."""
    if role not in ROLES:
        raise ValueError("unknown A2 role %r; use one of %s" % (role, ", ".join(ROLES)))
    if role == "background":
        return images.crop_resize(arr, height, width)
    return images.pad_resize(arr, height, width)


def condition_video(frames: Sequence[torch.Tensor], num_frames: int) -> torch.Tensor:
    """The pixel conditioning video [1, 3, T, H, W] from prepared references [3, H, W] in [-1, 1]."""
    lay = layout(len(frames), num_frames)
    c, h, w = frames[0].shape
    video = torch.zeros(1, c, num_frames, h, w, dtype=torch.float32)
    for t, src in enumerate(lay.pixel_frame_source):
        if src >= 0:
            video[0, :, t] = frames[src]
    return video


def mask_tensor(num_refs: int, num_frames: int, height: int, width: int, batch: int = 1) -> torch.Tensor:
    """The 4 mask channels [B, 4, F, h, w] (h, w latent sizes)."""
    lay = layout(num_refs, num_frames)
    m = torch.tensor(lay.mask, dtype=torch.float32).t()  # [4, F]
    return m[None, :, :, None, None].expand(batch, -1, -1, height, width).contiguous()


def condition(mask: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
    """[mask (4) ; normalised latent (16)] -> [B, 20, F, h, w], the channels after the noise."""
    b = mask.shape[0]
    return torch.cat([mask, latent.expand(b, -1, -1, -1, -1)], dim=1)
