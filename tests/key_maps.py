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


def rank1_meta_lora(listed: dict, prefix: str) -> dict:
    """A rank-1 LoRA (ComfyUI / kohya key style) on meta tensors for every Linear of a key map
    ``listed`` (key -> shape): ``prefix`` + stem + ``.lora_down/.lora_up.weight``, and ``.diff_b``
    where the map has the bias.  A ``prefix`` ending in ``_`` (``lora_unet_``) gives kohya's
    flat spelling (dots as underscores)."""
    flat = prefix.endswith("_")
    sd = {}
    for key, shape in listed.items():
        if not key.endswith(".weight") or len(shape) != 2:
            continue
        stem = key[: -len(".weight")]
        out_f, in_f = shape
        name = prefix + (stem.replace(".", "_") if flat else stem)
        sd[name + ".lora_down.weight"] = torch.empty(1, in_f, device="meta")
        sd[name + ".lora_up.weight"] = torch.empty(out_f, 1, device="meta")
        if stem + ".bias" in listed:
            sd[name + ".diff_b"] = torch.empty(listed[stem + ".bias"], device="meta")
    return sd
