"""Demo models of the SkyReels-V2 workflows (Wan2.1 DiT, umT5, CLIP ViT-H, Wan VAE).

They carry the file names the shipped workflows use (``shipped.wan_v2.MODELS``) and
exercise the loaders the way real files do: an official sharded folder with an index and a
config (T2V), an official single-file folder with the fps embedding (DF-1.3B), a Kijai-style
fp8 file (I2V), ComfyUI's scaled-fp8 umT5 with its embedded tokenizer, ComfyUI's CLIP
vision file (transformers naming) and ComfyUI's VAE file.  Random weights make noise, not
video: they prove that everything runs, fast, on a CPU.
"""
from __future__ import annotations

import json
import os

import torch

from ..shipped.wan_v2 import MODELS
from .common import randomize, save, scaled_fp8

VERSION = 1

TEXT = dict(dim=64, dim_attn=64, dim_ffn=160, num_heads=4, num_layers=2)
DIT = dict(dim=128, ffn_dim=256, num_heads=1, num_layers=2, text_dim=TEXT["dim"])
CLIP = dict(image_size=56, patch_size=14, dim=64, mlp_dim=256, num_heads=1, num_layers=3)
VAE = dict(dim=8)


def _dit_state(variant: str, seed: int):
    from ...models.wan.dit import WanDiT
    from ...models.wan.dit_config import WanDiTConfig

    cfg = WanDiTConfig(**DIT, in_dim=36 if variant == "i2v" else 16, image_dim=CLIP["dim"] if variant == "i2v" else None,
                       inject_sample_info=variant == "df", variant=variant)
    return cfg, randomize(WanDiT(cfg), seed)


def _official_config(cfg, model_type: str) -> dict:
    return {"_class_name": "WanModel", "model_type": model_type, "patch_size": list(cfg.patch_size),
            "text_len": cfg.text_len, "in_dim": cfg.in_dim, "dim": cfg.dim, "ffn_dim": cfg.ffn_dim,
            "freq_dim": cfg.freq_dim, "text_dim": cfg.text_dim, "out_dim": cfg.out_dim, "num_heads": cfg.num_heads,
            "num_layers": cfg.num_layers, "window_size": [-1, -1], "qk_norm": True, "cross_attn_norm": True,
            "inject_sample_info": cfg.inject_sample_info, "eps": cfg.eps}


def write_t2v(root: str) -> None:
    """Official sharded folder: config.json + 2 shards + index."""
    folder = os.path.join(root, *MODELS["t2v"])
    cfg, sd = _dit_state("t2v", 1)
    keys = sorted(sd)
    half = len(keys) // 2
    shards = {"model-00001-of-00002.safetensors": keys[:half], "model-00002-of-00002.safetensors": keys[half:]}
    weight_map = {}
    for fname, ks in shards.items():
        save(os.path.join(folder, fname), {k: sd[k].to(torch.bfloat16) for k in ks})
        weight_map.update({k: fname for k in ks})
    with open(os.path.join(folder, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": 0}, "weight_map": weight_map}, f, indent=1)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(_official_config(cfg, "t2v"), f, indent=1)


def write_df(root: str) -> None:
    """Official DF-1.3B layout: config.json (inject_sample_info) + model.safetensors."""
    folder = os.path.join(root, *MODELS["df"])
    cfg, sd = _dit_state("df", 2)
    save(os.path.join(folder, "model.safetensors"), {k: v.to(torch.bfloat16) for k, v in sd.items()})
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(_official_config(cfg, "t2v"), f, indent=1)


def write_i2v(root: str) -> None:
    """Kijai-style single file: official names, block Linear weights in fp8_e4m3fn, the rest fp16."""
    from ...models.wan.dit_loader import fp8_eligible

    cfg, sd = _dit_state("i2v", 3)
    out = {k: (v.to(torch.float8_e4m3fn) if fp8_eligible(k) else v.to(torch.float16)) for k, v in sd.items()}
    save(os.path.join(root, *MODELS["i2v"]), out)


def write_text_encoder(root: str) -> None:
    """ComfyUI's umt5_xxl_fp8_e4m3fn_scaled layout: transformers names, scaled fp8, spiece_model."""
    from ...models.text.tokenizer import build_demo_spiece
    from ...models.text.umt5 import UMT5Config, UMT5Encoder
    from ...models.text.umt5_keys import official_to_transformers
    from ...models.text.umt5_loader import fp8_eligible

    spiece = build_demo_spiece(256)
    from ...models.text.tokenizer import UMT5Tokenizer

    vocab = UMT5Tokenizer.from_spiece_bytes(spiece).vocab_size
    cfg = UMT5Config(vocab=vocab, **TEXT)
    sd = randomize(UMT5Encoder(cfg), 4)
    out = scaled_fp8((name, v, fp8_eligible(k)) for k, v in sd.items()
                     for name in [official_to_transformers(k)] if name is not None)
    out["spiece_model"] = torch.frombuffer(bytearray(spiece), dtype=torch.uint8).clone()
    save(os.path.join(root, *MODELS["text"]), out)


def write_clip(root: str) -> None:
    """ComfyUI's clip_vision_h layout: transformers CLIPVisionModel names under vision_model."""
    from ...models.vision.clip_keys import convert_state_dict
    from ...models.vision.clip_vit import CLIPVisionConfig, CLIPVisionTower

    cfg = CLIPVisionConfig(**CLIP)
    sd = randomize(CLIPVisionTower(cfg), 5)
    out = convert_state_dict(sd, "transformers")
    save(os.path.join(root, *MODELS["clip"]), {k: v.to(torch.float16) for k, v in out.items()})


def write_vae(root: str) -> None:
    """ComfyUI's wan_2.1_vae layout: the official names."""
    from ...models.wan.vae import WanVAE, WanVAEConfig

    sd = randomize(WanVAE(WanVAEConfig(**VAE)), 6)
    sd = {k: v for k, v in sd.items() if k not in ("latents_mean", "latents_std")}
    save(os.path.join(root, *MODELS["vae"]), {k: v.to(torch.float16) for k, v in sd.items()})


WRITERS = (write_t2v, write_df, write_i2v, write_text_encoder, write_clip, write_vae)
