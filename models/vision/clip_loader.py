"""Load the CLIP vision tower (open-clip ViT-H/14) from any file in circulation.

Accepted: the official ``models_clip_open-clip-xlm-roberta-large-vit-huge-14.pth`` (its
text tower is ignored), diffusers ``image_encoder/`` folders and ComfyUI's
``clip_vision_h.safetensors`` (transformers ``CLIPVisionModel`` naming), open_clip checkpoints,
fp32 / bf16 / fp16 / fp8 files, in-memory state dicts and :class:`TensorSource` objects.
The naming and the sizes are detected from the keys and shapes; the model is built on the
meta device and filled one tensor at a time.
"""
from __future__ import annotations

import re
from typing import Dict, Optional, Tuple, Union

import torch

from ..common.ops import default_compute_dtype
from ..loading.checkpoint import CheckpointError, TensorSource, open_weights
from ..loading.materialize import build_and_fill, parse_weight_dtype, storage_policy
from . import clip_keys
from .clip_preprocess import clip_preprocess
from .clip_vit import CLIPVisionConfig, CLIPVisionTower

_FP8_ELIGIBLE = re.compile(r"^transformer\.\d+\.(attn\.to_qkv|attn\.proj|mlp\.0|mlp\.2)\.weight$")


def fp8_eligible(key: str) -> bool:
    """Weights stored in fp8 when asked: the Linear weights of the blocks."""
    return bool(_FP8_ELIGIBLE.match(key))


def detect(source: TensorSource) -> Optional[Tuple[str, str]]:
    """(naming, prefix) if ``source`` holds a CLIP vision tower, else None."""
    return clip_keys.detect_naming(source.keys())


class ImageEncoder:
    """Vision tower + config.  ``encode(images)`` -> [B, 257, 1280] penultimate-layer tokens (ViT-H)."""

    def __init__(self, model: CLIPVisionTower, config: CLIPVisionConfig):
        self.model = model
        self.config = config
        self.source_path: Optional[str] = None

    @property
    def device(self) -> torch.device:
        return self.model.device

    def to(self, device) -> "ImageEncoder":
        self.model.to(device)
        return self

    @torch.no_grad()
    def encode(self, images: torch.Tensor, layout: str = "auto", device=None, layer: int = -2) -> torch.Tensor:
        """Tokens [N, num_patches + 1, dim] float32 for ComfyUI IMAGE [B, H, W, 3] in [0, 1]
        or pixels [B, 3, H, W] / video [B, 3, T, H, W] in [-1, 1] (see ``clip_preprocess``)."""
        device = torch.device(device) if device is not None else self.device
        pixels = clip_preprocess(images, self.config.image_size, layout, device=device)
        return self.model(pixels, layer=layer).float()

    @torch.no_grad()
    def encode_pixels(self, pixels: torch.Tensor, layer: int = -2) -> torch.Tensor:
        """Tokens for already normalised pixels [B, 3, S, S]."""
        return self.model(pixels.to(self.device), layer=layer).float()


def load_clip_vision_model(path: Union[str, Dict[str, torch.Tensor], TensorSource], *, weight_dtype: str = "auto",
                           compute_dtype: Optional[torch.dtype] = None, device: Union[str, torch.device] = "cpu",
                           num_heads: Optional[int] = None, config: Optional[CLIPVisionConfig] = None,
                           attention: str = "sdpa") -> Tuple[CLIPVisionTower, CLIPVisionConfig]:
    """The tower alone.  Returns (model, config), eval mode, no gradients.

    ``num_heads`` is needed only for towers of unusual width (it is not in the shapes);
    a transformers ``config.json`` beside the weights provides it too.
    """
    device = torch.device(device)
    if compute_dtype is None:
        compute_dtype = default_compute_dtype(device)
    source, file_config, where = open_weights(path, "clip_vision")
    found = detect(source)
    if found is None:
        from ..loading.identify import wrong_component

        raise wrong_component(where or source.files[0], source, "clip_vision",
                              "'visual.transformer.0.attn.to_qkv.weight' (official), "
                              "'vision_model.encoder.layers.0.self_attn.q_proj.weight' (transformers / ComfyUI "
                              "clip_vision_h) or 'visual.transformer.resblocks.0.attn.in_proj_weight' (open_clip)")
    naming, prefix = found
    view = clip_keys.mapped_source(source, naming, prefix)
    if config is None:
        vision_config = (file_config or {}).get("vision_config", file_config or {})
        if num_heads is None and "num_attention_heads" in vision_config:
            declared = CLIPVisionConfig.from_transformers(vision_config)
            # a config.json beside a single file may describe another model: trust it only if widths agree
            patch = view.shape("patch_embedding.weight") if "patch_embedding.weight" in view else None
            if patch is not None and declared.dim == patch[0]:
                num_heads = declared.num_heads
        try:
            config = clip_keys.infer_config({k: view.shape(k) for k in view.keys()}, num_heads)
        except KeyError as e:
            raise CheckpointError("%s looks like a CLIP vision tower but lacks the tensor %s"
                                  % (where or source.files[0], e)) from e
    config.validate()
    policy = storage_policy(parse_weight_dtype(weight_dtype), compute_dtype, fp8_eligible)
    model = build_and_fill(lambda: CLIPVisionTower(config), view, lambda k: k,
                           "CLIP vision tower (%s naming)" % naming, policy, device)
    model.compute_dtype = compute_dtype
    from ...host import log
    from ..common.attention import resolve_backend

    model.attention_backend = resolve_backend(attention, device, log)
    model.eval().requires_grad_(False)
    return model, config


def load_clip_vision(path: Union[str, Dict[str, torch.Tensor], TensorSource], *, weight_dtype: str = "auto",
                     compute_dtype: Optional[torch.dtype] = None, device: Union[str, torch.device] = "cpu",
                     num_heads: Optional[int] = None, attention: str = "sdpa") -> ImageEncoder:
    """Load the vision tower as an :class:`ImageEncoder`.

    Args:
        path: a file, a model folder, a diffusers pipeline or ``image_encoder/`` folder, an
            in-memory state dict, or a :class:`TensorSource`.
        weight_dtype: "auto", "bf16", "fp16", "fp32", "fp8_e4m3fn", "fp8_e5m2".
        compute_dtype: dtype of the matrix products; default float32 on CPU, bf16 elsewhere.
        device: where the weights are placed.
    """
    model, config = load_clip_vision_model(path, weight_dtype=weight_dtype, compute_dtype=compute_dtype,
                                           device=device, num_heads=num_heads, attention=attention)
    enc = ImageEncoder(model, config)
    enc.source_path = path if isinstance(path, str) else None
    return enc
