"""What a checkpoint holds, by its keys: for the message when a loader is given another
component's file ("this is a DiT, not a text encoder")."""
from __future__ import annotations

from typing import Optional

from .checkpoint import CheckpointError, TensorSource

# (component, words, ComfyUI folder, loader)
COMPONENTS = (
    ("dit", "a Wan / SkyReels DiT (diffusion model)", "diffusion_models", "the DiT loader"),
    ("vae", "the Wan2.1 video VAE", "vae", "the VAE loader"),
    ("umt5", "a umT5 text encoder", "text_encoders", "the text encoder loader"),
    ("clip_vision", "a CLIP vision tower", "clip_vision", "the CLIP vision loader"),
)


def _detector(component: str):
    if component == "dit":
        from ..wan.dit_loader import detect
    elif component == "vae":
        from ..wan.vae_loader import detect
    elif component == "umt5":
        from ..text.umt5_loader import detect
    else:
        from ..vision.clip_loader import detect
    return detect


def identify(source: TensorSource) -> Optional[str]:
    """The component ``source`` holds ("dit", "vae", "umt5", "clip_vision"), or None."""
    for component, *_ in COMPONENTS:
        try:
            if _detector(component)(source):
                return component
        except Exception:  # noqa: BLE001 - a detector that cannot tell is no answer
            continue
    return None


def wrong_component(where: str, source: TensorSource, wanted: str, expected_keys: str) -> CheckpointError:
    """The error for ``source`` given where ``wanted`` was expected: it names what it is when
    the keys tell, and where that belongs."""
    words = {c: (w, folder, loader) for c, w, folder, loader in COMPONENTS}
    found = identify(source)
    want_words = words[wanted][0]
    if found is not None and found != wanted:
        w, folder, loader = words[found]
        return CheckpointError("%s is %s, not %s: put it in models/%s and load it with %s"
                               % (where, w, want_words, folder, loader))
    return CheckpointError("%s is not %s: expected keys like %s; found e.g. %s"
                           % (where, want_words, expected_keys, ", ".join(sorted(source.keys())[:4])))
