"""Every node of the pack, by id.  Ids carry the ``SkyReels`` prefix and never change;
new inputs are only ever appended, so saved workflows keep working.

Each node module exports ``NODES``: a list of (id, class, display name).  The Wan/V2 core
modules come first; each later family adds one module ``nodes/<family>.py``.
"""
from . import a1, a1_driver, avatar, conditioning, df, extension, latent, loaders, loras, media, refs, sampling, v1
from .validation import guard

MODULES = (loaders, conditioning, sampling, df, latent, media, refs, extension, loras, a1, a1_driver, v1, avatar)

_NODES = [entry for module in MODULES for entry in module.NODES]

# guard: every widget value is checked (finite, in range, a listed choice) before the node's
# own VALIDATE_INPUTS runs, in ComfyUI and headless (nodes/validation.py).
NODE_CLASS_MAPPINGS = {nid: guard(cls) for nid, cls, _ in _NODES}
NODE_DISPLAY_NAME_MAPPINGS = {nid: name for nid, _, name in _NODES}
assert len(NODE_CLASS_MAPPINGS) == len(_NODES), "a node id is used twice"
