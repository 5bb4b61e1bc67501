"""Small random-weight models in the real file formats, laid out like ComfyUI's ``models/``.

One module per family; each exports ``VERSION`` (bump it when its files change) and
``WRITERS`` (functions ``writer(root)``).  Random weights make noise, not video: they prove
that everything runs, fast, on a CPU, without downloading anything.
"""
from __future__ import annotations

import json
import os

from . import a1, a1_driver, avatar, extension, loras, refs, v1, wan_v2
from .common import randomize  # noqa: F401  (used by tests and benchmarks)

FAMILIES = (wan_v2, refs, extension, loras, a1, a1_driver, v1, avatar)
MARKER = "skyreels_demo_models.json"


def _written_versions(marker: str) -> dict:
    try:
        with open(marker) as f:
            return dict(json.load(f).get("families") or {})
    except (OSError, ValueError, AttributeError):
        return {}


def write_demo_models(root: str, force: bool = False) -> str:
    """Write the demo models of every family into ``root``; a family whose files are already
    there at its current version is skipped, unless ``force``."""
    from ..shipped import MODELS

    root = os.path.abspath(os.path.expanduser(root))
    marker = os.path.join(root, MARKER)
    done = {} if force else _written_versions(marker)
    os.makedirs(root, exist_ok=True)
    for fam in FAMILIES:
        name = fam.__name__.rsplit(".", 1)[-1]
        if done.get(name) == fam.VERSION:
            continue
        for writer in fam.WRITERS:
            writer(root)
        done[name] = fam.VERSION
        with open(marker, "w") as f:
            json.dump({"families": done, "note": "random weights: they produce noise, not real videos",
                       "files": {k: os.path.join(*v) for k, v in MODELS.items()}}, f, indent=1)
    return root
