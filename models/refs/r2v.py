"""SkyReels-V3 reference-to-video: the size of the video and the reference latents.

The official pipeline (``skyreels_v3/pipelines/reference_to_video_pipeline.py``):

* the video size is the bucket of the resolution table (480P / 540P / 720P) whose key (height /
  width) is nearest to the **first** reference's height / width, floored to multiples of 16;
  on a tie the earlier (smaller) key wins;
* every reference is letterboxed with white to that size (LANCZOS), encoded on its own as a
  one-frame video (a posterior *sample*), and normalised;
* the references are zero-padded to 4 latent frames (zeros in normalised space) and put after
  the noisy latent on the time axis: RoPE positions F..F+3, the same timestep as the video,
  their prediction discarded;
* 24 fps, ``num_frames = 24 * seconds + 1`` (121 for the recommended 5 s).

Sampling (shipped entry point): 8 steps, UniPC flow shift 5, guidance 1 (CFG-distilled, one
pass), empty negative prompt.  With ``cfg > 1`` the three-pass guidance of
:class:`~...sampling.guidance.ReferenceDenoiser` runs.
"""
from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

import torch

from ...media.aspect_buckets import ASPECT_RATIO_CONFIG, closest_ratio
from ...media.aspect_buckets import bucket_size as aspect_bucket_size

MAX_REFS = 4
FPS = 24.0
SECONDS = 5
FRAMES = 24 * SECONDS + 1
STEPS, CFG, SHIFT, IMAGE_CFG = 8, 1.0, 5.0, 1.0
# The pipeline's own defaults for the three-pass guidance (not the shipped entry point).
PIPELINE_CFG, PIPELINE_IMAGE_CFG = 7.5, 5.0
RESOLUTIONS = ("480P", "540P", "720P")
DEFAULT_RESOLUTION = "720P"

# skyreels_v3/config.py: height/width key -> (bucket height, bucket width), shared with the
# V3 video extension (media.aspect_buckets).
BUCKETS: Dict[str, Dict[str, Tuple[int, int]]] = ASPECT_RATIO_CONFIG


def bucket_key(resolution: str, image_width: int, image_height: int) -> str:
    if resolution not in BUCKETS:
        raise ValueError("unknown resolution %r; use one of %s" % (resolution, ", ".join(RESOLUTIONS)))
    if image_width < 1 or image_height < 1:
        raise ValueError("the first reference is empty (%dx%d)" % (image_width, image_height))
    return closest_ratio(image_height, image_width, BUCKETS[resolution])  # first of equals wins


def bucket_size(resolution: str, image_width: int, image_height: int) -> Tuple[int, int]:
    """(height, width) of the video for a first reference of image_width x image_height."""
    bucket_key(resolution, image_width, image_height)  # the checks and messages above
    return aspect_bucket_size(image_height, image_width, resolution)


def frames_for_seconds(seconds: int) -> int:
    return 24 * int(seconds) + 1


def check_count(num_refs: int) -> None:
    if not 1 <= num_refs <= MAX_REFS:
        raise ValueError("SkyReels-V3 reference-to-video takes 1 to %d reference images, got %d"
                         % (MAX_REFS, num_refs))


def assemble(latents: Sequence[torch.Tensor], batch: int = 1) -> torch.Tensor:
    """Normalised one-frame reference latents [1, 16, 1, h, w] each -> [B, 16, 4, h, w]:
    concatenated on time, zero frames after them up to 4."""
    check_count(len(latents))
    frames: List[torch.Tensor] = [z.float() for z in latents]
    for z in frames:
        if z.dim() != 5 or z.shape[0] != 1 or z.shape[2] != 1:
            raise ValueError("each reference latent must be [1, C, 1, h, w], got %s" % list(z.shape))
    frames += [torch.zeros_like(frames[0])] * (MAX_REFS - len(frames))
    return torch.cat(frames, dim=2).repeat(batch, 1, 1, 1, 1)
