"""Demo files of the LoRA / GGUF family, in the real formats.

* The lightx2v step-distill LoRA as Kijai publishes it (ComfyUI's LoRA extraction layout):
  ``diffusion_model.<layer>.lora_down.weight`` / ``lora_up.weight`` for the Linear layers,
  ``<layer>.diff_b`` for their biases, ``<norm>.diff`` for the norm weights, no alpha; made
  for the demo T2V DiT (``cli/demo/wan_v2.py``); and one more in the same layout made for the
  demo GGUF T2V DiT (a LoRA stacked on GGUF weights, tests/test_comfyhost.py).
* Two GGUF DiTs laid out like city96's converter output (``general.architecture`` = ``wan``,
  official names, F32 1-D / tiny / modulation tensors, the 5-D patch embedding in F32, the
  embeddings and the head in F16).  Their block weights cycle through every type the loader
  reads (Q2_K ... Q6_K, Q4_0 ... Q8_0, F16, BF16), so the T2V and DF workflows run on all of
  them.  The model is a little wider than the other demo DiTs (256) because K-quant rows
  hold multiples of 256 weights.
"""
from __future__ import annotations

import itertools
import os

import torch

from ..shipped.loras import MODELS
from . import wan_v2
from .common import randomize, save

VERSION = 2

LORA_RANK = 32
GGUF_DIT = dict(dim=256, ffn_dim=512, num_heads=2, num_layers=2, text_dim=wan_v2.TEXT["dim"])
GGUF_TYPES = ("Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "F16", "BF16")
# What city96's quantizer leaves unquantized in Wan files (besides 1-D and tiny tensors).
GGUF_UNQUANTIZED = ("modulation", "patch_embedding.", "text_embedding.", "time_projection.", "time_embedding.",
                    "img_emb.", "head.")


def write_distill_lora(root: str) -> None:
    _write_lora(root, "distill_lora", wan_v2.DIT, 11)


def write_gguf_lora(root: str) -> None:
    _write_lora(root, "gguf_lora", GGUF_DIT, 12)


def _write_lora(root: str, model_key: str, dit: dict, seed: int) -> None:
    from ...models.common.ops import LayerNorm, Linear, RMSNorm
    from ...models.wan.dit import WanDiT
    from ...models.wan.dit_config import WanDiTConfig

    with torch.device("meta"):
        model = WanDiT(WanDiTConfig(**dit, variant="t2v"))
    g = torch.Generator().manual_seed(seed)
    out = {}
    for name, m in model.named_modules():
        key = "diffusion_model." + name
        if isinstance(m, Linear):
            rank = min(LORA_RANK, m.in_features, m.out_features)
            out[key + ".lora_down.weight"] = torch.randn(rank, m.in_features, generator=g) / m.in_features ** 0.5
            out[key + ".lora_up.weight"] = torch.randn(m.out_features, rank, generator=g) * (0.2 / rank ** 0.5)
            out[key + ".diff_b"] = torch.randn(m.out_features, generator=g) * 0.01
        elif isinstance(m, (LayerNorm, RMSNorm)) and getattr(m, "weight", None) is not None:
            out[key + ".diff"] = torch.zeros(tuple(m.weight.shape))   # lightx2v's norm diffs are zeros
            if getattr(m, "bias", None) is not None:
                out[key + ".diff_b"] = torch.zeros(tuple(m.bias.shape))
    save(os.path.join(root, *MODELS[model_key]), {k: v.to(torch.bfloat16) for k, v in out.items()})


def _gguf_state(variant: str, seed: int):
    from ...models.wan.dit import WanDiT
    from ...models.wan.dit_config import WanDiTConfig

    cfg = WanDiTConfig(**GGUF_DIT, inject_sample_info=variant == "df", variant=variant)
    return randomize(WanDiT(cfg), seed)


def _type_cycle(offset: int):
    cycle = itertools.cycle(GGUF_TYPES[offset:] + GGUF_TYPES[:offset])

    def choose(key: str, t: torch.Tensor) -> str:
        if any(s in key for s in GGUF_UNQUANTIZED):
            return "F16"
        if key.startswith("blocks.") and key.endswith(".weight") and t.dim() == 2:
            return next(cycle)
        return "Q8_0"  # e.g. the fps projection of DF-1.3B, which the converter quantizes too

    return choose


def _write_gguf(root: str, key: str, variant: str, seed: int, offset: int) -> None:
    from ...models.loading.gguf_writer import write_gguf

    write_gguf(os.path.join(root, *MODELS[key]), _gguf_state(variant, seed), "wan", _type_cycle(offset),
               keep_full=(".modulation",))


def write_t2v_gguf(root: str) -> None:
    _write_gguf(root, "t2v_gguf", "t2v", 21, 0)


def write_df_gguf(root: str) -> None:
    _write_gguf(root, "df_gguf", "df", 22, 5)


WRITERS = (write_distill_lora, write_gguf_lora, write_t2v_gguf, write_df_gguf)
