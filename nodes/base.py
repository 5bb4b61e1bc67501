"""Shared pieces of the node layer: categories, widget helpers, model lists, chunk folders."""
from __future__ import annotations

from typing import List, Optional, Tuple

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


def model_names(kinds, extensions=None, include_folders: bool = True) -> List[str]:
    """Files (and model folders) in the ComfyUI model folders of ``kinds`` (a name or several)."""
    names = set()
    for kind in as_kinds(kinds):
        names.update(host.list_models(kind, include_folders=include_folders, extensions=extensions))
    return sorted(names)


def model_list(kinds):
    """Files and folders in the ComfyUI model folders of ``kinds`` (a name or several); a
    placeholder when empty so the combo still validates and the message on use is clear."""
    return model_names(kinds) or ["(no models found in %s)" % " or ".join(as_kinds(kinds))]


def as_kinds(kinds) -> Tuple[str, ...]:
    """Model folder kinds as a tuple ("vae" or ("diffusion_models", "vae"))."""
    return (kinds,) if isinstance(kinds, str) else tuple(kinds)


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


def chunk_folder_input(piece: str, pieces: str) -> tuple:
    """The ``chunk_folder`` input of a long render (``piece``: what is saved, e.g. "chunk")."""
    return ("STRING", {"default": "", "tooltip": "Folder where each finished %s is saved as it is made. After a crash "
                                                 "or a cancel, running again with the same inputs and settings resumes "
                                                 "from the saved %s. Relative paths are inside ComfyUI's output "
                                                 "folder. Empty = off." % (piece, pieces)})


def check_chunk_folder(value) -> object:
    """VALIDATE_INPUTS of a ``chunk_folder``: True, or why it cannot be used (outside the output folder, ...)."""
    if (value or "").strip():
        try:
            host.check_output_dir(value, "chunk_folder")
        except host.PathError as e:
            return str(e)
    return True


def resolve_chunk_folder(value) -> Optional[str]:
    """The full path of a ``chunk_folder`` input (made if missing), or None when empty.  Inside the
    output folder only: ``host.resolve_output_dir`` refuses '..', paths elsewhere, links out."""
    folder = (value or "").strip()
    if not folder:
        return None
    try:
        return host.resolve_output_dir(folder, create=True, what="chunk_folder")
    except host.PathError as e:
        raise NodeError(str(e)) from e
