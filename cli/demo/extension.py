"""Demo models of the SkyReels-V3 video-extension workflows: both transformers of the
Skywork/SkyReels-V3-V2V-14B layout, ``transformer/`` and ``shot_transformer/`` side by side,
each a config.json with the official ``WanModel`` fields and official Wan key names in bf16
(the single-shot one sharded with an index, the shot one a single file).  The text encoder
and the VAE are the V2 demo files.  Random weights make noise, not video."""
from __future__ import annotations

import json
import os

import torch

from ..shipped.extension import MODELS
from .common import randomize, save
from .wan_v2 import DIT, _official_config

VERSION = 1


def _write(root: str, key: str, seed: int, shards: int) -> None:
    from ...models.wan.dit import WanDiT
    from ...models.wan.dit_config import WanDiTConfig

    cfg = WanDiTConfig(**DIT, variant=key)
    sd = {k: v.to(torch.bfloat16) for k, v in randomize(WanDiT(cfg), seed).items()}
    folder = os.path.join(root, *MODELS[key])
    if shards == 1:
        save(os.path.join(folder, "diffusion_pytorch_model.safetensors"), sd)
    else:
        keys = sorted(sd)
        weight_map = {}
        for i in range(shards):
            name = "diffusion_pytorch_model-%05d-of-%05d.safetensors" % (i + 1, shards)
            part = keys[i::shards]
            save(os.path.join(folder, name), {k: sd[k] for k in part})
            weight_map.update({k: name for k in part})
        with open(os.path.join(folder, "diffusion_pytorch_model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": 0}, "weight_map": weight_map}, f, indent=1)
    config = _official_config(cfg, "t2v")
    config.pop("inject_sample_info", None)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(config, f, indent=1)


def write_v3_extend(root: str) -> None:
    _write(root, "v3_extend", 11, shards=2)


def write_v3_shot(root: str) -> None:
    _write(root, "v3_shot", 12, shards=1)


WRITERS = (write_v3_extend, write_v3_shot)
