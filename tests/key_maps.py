"""The key -> shape maps of the released checkpoints (../shared/keys/<family>/), and meta tensors of them."""
import json
import os

import torch

from skyreels_pack.models.loading.checkpoint import TensorSource

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", "shared", "keys"))


class KeyMaps:
    """One family's folder of key maps (the top folder holds the Wan / V2 ones) and its configs.json."""

    def __init__(self, family: str = ""):
        self.dir = os.path.join(ROOT, family) if family else ROOT
        with open(os.path.join(self.dir, "configs.json")) as f:
            self.configs = json.load(f)

    def listed(self, name: str) -> dict:
        """key -> shape of a key map file (a name in the folder, or a full path)."""
        with open(os.path.join(self.dir, name)) as f:
            return {k: tuple(v) for k, v in json.load(f).items()}


def meta_source(shapes, dtype=torch.float32) -> TensorSource:
    """A TensorSource of meta tensors with the listed shapes (no memory)."""
    return TensorSource.from_dict({k: torch.empty(v, device="meta", dtype=dtype) for k, v in shapes.items()})
