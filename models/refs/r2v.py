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

MAX_REFS = 4
FPS = 24.0
SECONDS = 5
FRAMES = 24 * SECONDS + 1
STEPS, CFG, SHIFT, IMAGE_CFG = 8, 1.0, 5.0, 1.0
# The pipeline's own defaults for the three-pass guidance (not the shipped entry point).
PIPELINE_CFG, PIPELINE_IMAGE_CFG = 7.5, 5.0
RESOLUTIONS = ("480P", "540P", "720P")
DEFAULT_RESOLUTION = "720P"

# skyreels_v3/config.py: height/width key -> (bucket height, bucket width)
BUCKETS: Dict[str, Dict[str, Tuple[int, int]]] = {
    "480P": {"0.38": (392, 1046), "0.43": (420, 980), "0.48": (444, 925), "0.50": (452, 904),
             "0.53": (466, 880), "0.54": (470, 870), "0.56": (480, 854), "0.62": (506, 810),
             "0.67": (522, 784), "0.75": (554, 738), "1.00": (640, 640), "1.33": (740, 555),
             "1.50": (784, 522), "1.78": (854, 480), "1.89": (880, 466), "2.00": (906, 454),
             "2.08": (924, 444)},
    "540P": {"0.34": (416, 1216), "0.38": (464, 1216), "0.40": (464, 1152), "0.43": (496, 1152),
             "0.48": (496, 1024), "0.50": (512, 1024), "0.53": (512, 960), "0.57": (544, 960),
             "0.60": (544, 912), "0.63": (576, 912), "0.67": (576, 864), "0.72": (624, 864),
             "0.75": (624, 832), "0.79": (656, 832), "0.84": (656, 784), "0.92": (720, 784),
             "1.00": (720, 720), "1.09": (784, 720), "1.26": (784, 624), "1.33": (832, 624),
             "1.40": (832, 592), "1.49": (880, 592), "1.62": (880, 544), "1.78": (960, 544),
             "1.88": (960, 512), "2.00": (1024, 512), "2.13": (1024, 480)},
    "720P": {"0.38": (588, 1568), "0.43": (628, 1466), "0.48": (666, 1388), "0.50": (678, 1356),
             "0.53": (698, 1318), "0.54": (706, 1306), "0.56": (720, 1280), "0.62": (758, 1212),
             "0.67": (784, 1176), "0.75": (832, 1110), "1.00": (960, 960), "1.33": (1108, 832),
             "1.50": (1176, 784), "1.78": (1280, 720), "1.89": (1320, 698), "2.00": (1358, 680),
             "2.08": (1386, 666)},
}


def bucket_key(resolution: str, image_width: int, image_height: int) -> str:
    if resolution not in BUCKETS:
        raise ValueError("unknown resolution %r; use one of %s" % (resolution, ", ".join(RESOLUTIONS)))
    if image_width < 1 or image_height < 1:
        raise ValueError("the first reference is empty (%dx%d)" % (image_width, image_height))
    ratio = image_height / image_width
    return min(BUCKETS[resolution], key=lambda k: abs(float(k) - ratio))  # first of equals wins


def bucket_size(resolution: str, image_width: int, image_height: int) -> Tuple[int, int]:
    """(height, width) of the video for a first reference of image_width x image_height."""
    key = bucket_key(resolution, image_width, image_height)
    bh, bw = BUCKETS[resolution][key]
    return bh // 16 * 16, bw // 16 * 16


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
