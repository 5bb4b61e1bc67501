"""Shared pieces of the node layer: categories, widget helpers, model lists."""
from __future__ import annotations

from .. import host

ROOT = "SkyReels"
LOADERS = ROOT + "/loaders"
CONDITIONING = ROOT + "/conditioning"
SAMPLING = ROOT + "/sampling"
LATENT = ROOT + "/latent"
MEDIA = ROOT + "/media"

MAX_RESOLUTION = 8192
MAX_FRAMES = 100_001
SEED_MAX = 0xFFFF_FFFF_FFFF_FFFF


def model_list(kind: str):
    """Files and folders in the ComfyUI model folder ``kind``; a placeholder when empty so the
    combo still validates and the message on use is clear."""
    names = host.list_models(kind)
    return names or ["(no models found in %s)" % kind]


def seed_input(tooltip: str = "Seed of the noise; the same seed gives the same video on any device."):
    return ("INT", {"default": 0, "min": 0, "max": SEED_MAX, "control_after_generate": True, "tooltip": tooltip})


def size_inputs(width: int = 960, height: int = 544, frames: int = 97, frames_tip: str = None, frames_step: int = 4):
    """width, height, num_frames.  The editor snaps a typed num_frames to min + k * step: step 4
    from 1 gives the 4k+1 counts a latent needs; a node that also takes other counts passes 1."""
    return {
        "width": ("INT", {"default": width, "min": 16, "max": MAX_RESOLUTION, "step": 16,
                          "tooltip": "Video width in pixels, a multiple of 16 (960 for 540P landscape, 1280 for 720P)."}),
        "height": ("INT", {"default": height, "min": 16, "max": MAX_RESOLUTION, "step": 16,
                           "tooltip": "Video height in pixels, a multiple of 16 (544 for 540P, 720 for 720P)."}),
        "num_frames": ("INT", {"default": frames, "min": 1, "max": MAX_FRAMES, "step": frames_step,
                               "tooltip": frames_tip or "Number of frames, 4k+1 (97 = 4 s at 24 fps)."}),
    }


class NodeError(ValueError):
    """A bad input, explained for the user."""
