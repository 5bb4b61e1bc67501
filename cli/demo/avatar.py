"""Demo models of the talking-avatar workflow: a tiny A2V DiT and a tiny wav2vec2, random weights.

* ``SkyReels-V3-A2V-19B``: the official folder layout (``config.json`` with the A2V fields +
  two bf16 shards + an index), a Wan I2V trunk with the audio adapter, sized to the demo
  umT5 and CLIP of :mod:`.wan_v2` (the workflow shares them and the VAE).
* ``chinese-wav2vec2-base``: the released TencentGameMate layout, a transformers
  ``Wav2Vec2ForPreTraining`` checkpoint: ``config.json``, ``preprocessor_config.json`` and a
  ``pytorch_model.bin`` with the names under ``wav2vec2.``, the positional convolution as
  ``weight_g`` / ``weight_v`` and pre-training heads the loader ignores.
"""
from __future__ import annotations

import json
import os

import torch

from ..shipped.avatar import MODELS
from .common import randomize, save
from .wan_v2 import CLIP, TEXT

VERSION = 1

WAV2VEC2 = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                conv_dim=[32] * 7, conv_kernel=[10, 3, 3, 3, 3, 2, 2], conv_stride=[5, 2, 2, 2, 2, 2, 2],
                conv_bias=False, feat_extract_norm="group", feat_extract_activation="gelu", hidden_act="gelu",
                do_stable_layer_norm=False, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4,
                layer_norm_eps=1e-5, num_feat_extract_layers=7, vocab_size=32, apply_spec_augment=True,
                mask_time_prob=0.05)
DIT = dict(dim=128, ffn_dim=256, num_heads=2, num_layers=2, text_dim=TEXT["dim"])
AUDIO = dict(window=5, vae_scale=4, layers=WAV2VEC2["num_hidden_layers"], channels=WAV2VEC2["hidden_size"],
             intermediate_dim=16, output_dim=32, context_tokens=4)


def write_a2v(root: str) -> None:
    from ...models.wan.audio_adapter import AudioAdapterConfig
    from ...models.wan.dit import WanDiT
    from ...models.wan.dit_config import WanDiTConfig

    folder = os.path.join(root, *MODELS["a2v"])
    cfg = WanDiTConfig(**DIT, in_dim=36, image_dim=CLIP["dim"], variant="i2v", audio=AudioAdapterConfig(**AUDIO))
    sd = randomize(WanDiT(cfg), 11)
    keys = sorted(sd)
    half = len(keys) // 2
    weight_map = {}
    for i, ks in enumerate((keys[:half], keys[half:])):
        name = "diffusion_pytorch_model-%05d-of-00002.safetensors" % (i + 1)
        save(os.path.join(folder, name), {k: sd[k].to(torch.bfloat16) for k in ks})
        weight_map.update({k: name for k in ks})
    with open(os.path.join(folder, "diffusion_pytorch_model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": 0}, "weight_map": weight_map}, f, indent=1)
    config = {"_class_name": "WanModel", "model_type": "i2v", "patch_size": [1, 2, 2], "text_len": cfg.text_len,
              "in_dim": 36, "dim": cfg.dim, "ffn_dim": cfg.ffn_dim, "freq_dim": cfg.freq_dim, "text_dim": cfg.text_dim,
              "out_dim": 16, "num_heads": cfg.num_heads, "num_layers": cfg.num_layers, "window_size": [-1, -1],
              "qk_norm": True, "cross_attn_norm": True, "eps": 1e-6, "audio_window": AUDIO["window"],
              "intermediate_dim": AUDIO["intermediate_dim"], "output_dim": AUDIO["output_dim"],
              "context_tokens": AUDIO["context_tokens"], "vae_scale": 4, "norm_input_visual": True,
              "norm_output_audio": True}
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(config, f, indent=1)


def write_wav2vec2(root: str) -> None:
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    folder = os.path.join(root, *MODELS["wav2vec2"])
    os.makedirs(folder, exist_ok=True)
    cfg = Wav2Vec2Config(**WAV2VEC2)
    with torch.device("meta"):
        model = Wav2Vec2Model(cfg)
    sd = randomize(model.to_empty(device="cpu"), 12)
    out = {}
    for k, v in sd.items():
        k = k.replace("parametrizations.weight.original0", "weight_g").replace("parametrizations.weight.original1",
                                                                                "weight_v")
        out["wav2vec2." + k] = v
    g = torch.Generator().manual_seed(13)
    out["quantizer.codevectors"] = torch.randn(1, 16, 16, generator=g)  # pre-training heads: ignored on load
    out["quantizer.weight_proj.weight"] = torch.randn(16, 32, generator=g)
    out["quantizer.weight_proj.bias"] = torch.zeros(16)
    out["project_hid.weight"] = torch.randn(16, 32, generator=g)
    out["project_hid.bias"] = torch.zeros(16)
    out["project_q.weight"] = torch.randn(16, 16, generator=g)
    out["project_q.bias"] = torch.zeros(16)
    tmp = os.path.join(folder, "pytorch_model.bin.part")
    torch.save(out, tmp)
    os.replace(tmp, os.path.join(folder, "pytorch_model.bin"))
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(dict(WAV2VEC2, architectures=["Wav2Vec2ForPreTraining"], model_type="wav2vec2"), f, indent=1)
    with open(os.path.join(folder, "preprocessor_config.json"), "w") as f:
        json.dump({"do_normalize": False, "feature_extractor_type": "Wav2Vec2FeatureExtractor", "feature_size": 1,
                   "padding_side": "right", "padding_value": 0.0, "return_attention_mask": False,
                   "sampling_rate": 16000}, f, indent=1)


WRITERS = (write_a2v, write_wav2vec2)
