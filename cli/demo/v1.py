"""Demo models of the SkyReels-V1 workflows (HunyuanVideo DiT, llava-llama-3, CLIP-L, HunyuanVideo VAE).

Same file names and formats as the real files (``shipped.v1.MODELS``), tiny and random:

* T2V DiT: Kijai's single file layout, original naming, block Linear weights in fp8_e4m3fn;
* I2V DiT: the official diffusers folder (``config.json`` + 2 shards + index, bf16), so the
  diffusers naming (split q/k/v, swapped final modulation) is exercised;
* Llama: Comfy-Org's ``llava_llama3_fp8_scaled`` layout (``model.`` prefix, scaled fp8 with
  ``scale_weight`` and the ``scaled_fp8`` marker), a ``llama_tokenizer/`` folder beside it;
* CLIP-L: ``clip_l.safetensors`` (``text_model.*``, fp16), a ``clip_l_tokenizer/`` beside it;
* VAE: ``hunyuan_video_vae_bf16.safetensors`` (diffusers naming, bf16).

The sizes are chosen so that nothing needs a config.json where the real files have none: the
Llama head size is 128, CLIP's 64, the VAE's channels are multiples of 32 groups.
"""
from __future__ import annotations

import json
import os

import torch

from ..shipped.v1 import MODELS
from .common import randomize, save

VERSION = 1

LLAMA = dict(hidden_size=128, intermediate_size=256, num_hidden_layers=4, num_attention_heads=1,
             num_key_value_heads=1, head_dim=128)
CLIP = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=1,
            max_position_embeddings=77)
DIT = dict(hidden_size=128, num_heads=2, depth=2, depth_single_blocks=2, axes_dim=(8, 28, 28))
VAE = dict(block_out_channels=(32, 32, 32, 32), layers_per_block=1, norm_num_groups=32)


def _dit_state(in_channels: int, seed: int):
    from ...models.hunyuan.dit import HunyuanDiT
    from ...models.hunyuan.dit_config import HunyuanDiTConfig

    cfg = HunyuanDiTConfig(in_channels=in_channels, text_dim=LLAMA["hidden_size"], pooled_dim=CLIP["hidden_size"],
                           **DIT)
    return cfg, randomize(HunyuanDiT(cfg), seed)


def write_t2v(root: str) -> None:
    """Kijai-style single file: original names, block Linear weights fp8_e4m3fn, the rest bf16."""
    from ...models.hunyuan.dit_loader import fp8_eligible

    _, sd = _dit_state(16, 21)
    out = {k: (v.to(torch.float8_e4m3fn) if fp8_eligible(k) else v.to(torch.bfloat16)) for k, v in sd.items()}
    save(os.path.join(root, *MODELS["v1_t2v"]), out)


def write_i2v(root: str) -> None:
    """The official diffusers folder: config.json + 2 shards + index, diffusers names, bf16."""
    from ...models.hunyuan import dit_keys

    cfg, sd = _dit_state(32, 22)
    out = {}
    for k, v in sd.items():
        if dit_keys.is_swapped(k):
            v = torch.cat([v[v.shape[0] // 2:], v[: v.shape[0] // 2]])
        parts = dit_keys.original_to_diffusers(k)
        if len(parts) == 4:  # single-stream linear1: q, k, v (D each), mlp (4D)
            d = cfg.hidden_size
            pieces = [v[:d], v[d:2 * d], v[2 * d:3 * d], v[3 * d:]]
        else:
            pieces = list(v.chunk(len(parts), dim=0))
        for name, piece in zip(parts, pieces):
            out[name] = piece.to(torch.bfloat16).contiguous()
    folder = os.path.join(root, *MODELS["v1_i2v"])
    keys = sorted(out)
    half = len(keys) // 2
    shards = {"diffusion_pytorch_model-00001-of-00002.safetensors": keys[:half],
              "diffusion_pytorch_model-00002-of-00002.safetensors": keys[half:]}
    weight_map = {}
    for fname, ks in shards.items():
        save(os.path.join(folder, fname), {k: out[k] for k in ks})
        weight_map.update({k: fname for k in ks})
    with open(os.path.join(folder, "diffusion_pytorch_model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": 0}, "weight_map": weight_map}, f, indent=1)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump({"_class_name": "HunyuanVideoTransformer3DModel", "in_channels": cfg.in_channels,
                   "out_channels": cfg.out_channels, "num_attention_heads": cfg.num_heads,
                   "attention_head_dim": cfg.head_dim, "num_layers": cfg.depth,
                   "num_single_layers": cfg.depth_single_blocks, "num_refiner_layers": cfg.depth_refiner,
                   "mlp_ratio": cfg.mlp_ratio, "patch_size": 2, "patch_size_t": 1, "qk_norm": "rms_norm",
                   "guidance_embeds": True, "text_embed_dim": cfg.text_dim, "pooled_projection_dim": cfg.pooled_dim,
                   "rope_theta": cfg.theta, "rope_axes_dim": list(cfg.axes_dim)}, f, indent=1)


def write_llama(root: str) -> None:
    """Comfy-Org llava_llama3_fp8_scaled layout, with a tokenizer folder beside it."""
    from transformers import LlamaConfig, LlamaModel

    from ...models.hunyuan.text_encoder import llama_fp8_eligible
    from ...models.hunyuan.tokenizers import write_demo_llama_tokenizer
    from ...models.loading.materialize import quantize_fp8

    path = os.path.join(root, *MODELS["v1_llama"])
    vocab = write_demo_llama_tokenizer(os.path.join(os.path.dirname(path), "llama_tokenizer"))
    model = LlamaModel(LlamaConfig(vocab_size=vocab, rope_theta=500000.0, rms_norm_eps=1e-5, **LLAMA))
    out = {}
    for k, v in randomize(model, 23).items():
        if k.startswith("rotary_emb."):
            continue
        name = "model." + k
        if llama_fp8_eligible(k):
            q, scale = quantize_fp8(v, torch.float8_e4m3fn)
            out[name] = q
            out[name[: -len(".weight")] + ".scale_weight"] = scale.reshape(1)
        else:
            out[name] = v.to(torch.float16)
    out["scaled_fp8"] = torch.zeros(0, dtype=torch.float8_e4m3fn)
    save(path, out)


def write_clip(root: str) -> None:
    """Comfy-Org clip_l layout (``text_model.*``, fp16), with a tokenizer folder beside it."""
    from transformers import CLIPTextConfig, CLIPTextModel

    from ...models.hunyuan.tokenizers import write_demo_clip_tokenizer

    path = os.path.join(root, *MODELS["v1_clip"])
    vocab = write_demo_clip_tokenizer(os.path.join(os.path.dirname(path), "clip_l_tokenizer"))
    model = CLIPTextModel(CLIPTextConfig(vocab_size=vocab, hidden_act="quick_gelu", bos_token_id=0, pad_token_id=1,
                                         eos_token_id=2, **CLIP))
    out = {}
    for k, v in randomize(model, 24).items():
        if k.endswith("position_ids"):
            continue
        name = k if k.startswith("text_model.") else "text_model." + k
        out[name] = v.to(torch.float16)
    save(path, out)


def write_vae(root: str) -> None:
    """Comfy-Org hunyuan_video_vae_bf16 layout (diffusers = Tencent names)."""
    from ...models.hunyuan.vae import HunyuanVAE, HunyuanVAEConfig

    sd = randomize(HunyuanVAE(HunyuanVAEConfig(**VAE)), 25)
    save(os.path.join(root, *MODELS["v1_vae"]), {k: v.to(torch.bfloat16) for k, v in sd.items()})


WRITERS = (write_t2v, write_i2v, write_llama, write_clip, write_vae)
