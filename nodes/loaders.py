"""Loader nodes: the DiT, the umT5 text encoder, the CLIP vision encoder and the video VAE."""
from __future__ import annotations

from .. import host
from . import handles
from .base import LOADERS, model_list
from .loading import (ENCODER_WEIGHT_DTYPES, DiTLoaderNode, check_model, dit_inputs, dit_optional, dtype_of, load_dit,
                      optional_path, path_input, resolve_path, vae_dtype_input, vae_tiles)

VARIANTS = ["auto", "t2v", "i2v", "df", "a2", "r2v", "v3_extend", "v3_shot"]
VARIANT_NAMES = {"t2v": "text-to-video", "i2v": "image-to-video", "df": "diffusion forcing",
                 "a2": "SkyReels-A2 elements-to-video", "r2v": "SkyReels-V3 reference-to-video"}


class DiTLoader(DiTLoaderNode):
    DESCRIPTION = ("Loads a SkyReels / Wan2.1 diffusion transformer (V2 T2V, I2V or DF, 1.3B or 14B; SkyReels-A2; "
                   "SkyReels-V3 R2V and video extension) from any common format: official folders, diffusers "
                   "pipeline folders, ComfyUI single files, fp8 and scaled fp8, and GGUF files (Q2_K to Q8_0, F16, "
                   "BF16; dequantized layer by layer while sampling). The log says which model was found.")
    RETURN_TYPES = (handles.DIT,)
    OUTPUT_TOOLTIPS = ("The loaded DiT with its detected configuration.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": dit_inputs(
                "A file or model folder in ComfyUI's models/diffusion_models (or unet), e.g. SkyReels-V2-DF-1.3B-540P "
                "or a .gguf file. Type, size and naming are detected from the weights.",
                budget_note=", so a 14B model runs on an 8-16 GB card (slower). Leave room for the VAE (about 2 GB "
                            "with tiles) and the rest of the workflow."),
            "optional": dit_optional(variant=(VARIANTS, {
                "default": "auto",
                "tooltip": "What the checkpoint is for, when its keys cannot tell (DF-14B, V3 R2V and the V3 extension "
                           "models look like T2V-14B, SkyReels-A2 like I2V-14B). auto reads the config's class name, "
                           "then 'R2V' / 'Reference2Video' / 'A2' / 'DF' / 'I2V' / 'T2V' in the file or folder name, "
                           "and SkyReels-V3-V2V-14B/transformer (single-shot extension, v3_extend) or "
                           "/shot_transformer (shot switching, v3_shot). With the whole V3-V2V folder chosen, v3_shot "
                           "loads its shot_transformer."})),
        }

    def load(self, model, weight_dtype, compute_dtype, attention, vram_budget_gb, path="", variant="auto", compile=False):
        from ..models.wan.dit_loader import load_wan_dit

        dit, cfg, full = load_dit(load_wan_dit, model, path, weight_dtype, compute_dtype, attention, compile,
                                  variant=None if variant == "auto" else variant)
        host.log("loaded %s: %s %s (%s), %d layers, dim %d%s%s" % (
            full, cfg.size_name, cfg.variant.upper(), VARIANT_NAMES.get(cfg.variant, cfg.variant), cfg.num_layers,
            cfg.dim, ", fps embedding" if cfg.inject_sample_info else "",
            ", GGUF tensors: " + dit.source_types if getattr(dit, "source_types", "") else ""))
        return (handles.DiTHandle(dit, cfg, full, float(vram_budget_gb), bool(compile)),)


class TextEncoderLoader:
    DESCRIPTION = "Loads the umT5-XXL text encoder used by SkyReels-V2 / Wan (official .pth, ComfyUI or diffusers files)."
    CATEGORY = LOADERS
    RETURN_TYPES = (handles.TEXT_ENCODER,)
    RETURN_NAMES = ("text_encoder",)
    OUTPUT_TOOLTIPS = ("The text encoder with its tokenizer.",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": (model_list("text_encoders"), {
                    "tooltip": "umT5-XXL encoder in ComfyUI's models/text_encoders: models_t5_umt5-xxl-enc-bf16.pth, "
                               "umt5_xxl_fp16.safetensors, umt5_xxl_fp8_e4m3fn_scaled.safetensors, or a diffusers "
                               "text_encoder folder."}),
                "weight_dtype": (ENCODER_WEIGHT_DTYPES, {
                    "default": "auto", "tooltip": "How the encoder's weights are kept in memory (auto keeps the file's)."}),
            },
            "optional": {
                "tokenizer_path": ("STRING", {
                    "default": "",
                    "tooltip": "Folder with the umT5 tokenizer (tokenizer.json or spiece.model), inside ComfyUI's "
                               "text_encoders folders. Not needed for ComfyUI files, which embed it, or when a "
                               "tokenizer folder sits beside the weights."}),
                "path": path_input(),
            },
        }

    @classmethod
    def VALIDATE_INPUTS(cls, model=None, path=None, tokenizer_path=None, **_):
        if (tokenizer_path or "").strip():
            ok = check_model("text_encoders", None, tokenizer_path)
            if ok is not True:
                return "tokenizer_path: %s" % ok
        return check_model("text_encoders", model, path)

    def load(self, model, weight_dtype, tokenizer_path="", path=""):
        from ..models.text.umt5_loader import load_umt5

        full = resolve_path("text_encoders", model, path)
        enc = load_umt5(full, weight_dtype=weight_dtype, compute_dtype=dtype_of("auto"), device=host.offload_device(),
                        tokenizer_path=optional_path("text_encoders", tokenizer_path))
        return (handles.TextEncoderHandle(enc, full),)


class CLIPVisionLoader:
    DESCRIPTION = "Loads the CLIP ViT-H/14 image encoder used by the image-to-video models."
    CATEGORY = LOADERS
    RETURN_TYPES = (handles.CLIP_VISION,)
    RETURN_NAMES = ("clip_vision",)
    OUTPUT_TOOLTIPS = ("The image encoder.",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": (model_list("clip_vision"), {
                    "tooltip": "CLIP ViT-H/14 in ComfyUI's models/clip_vision: clip_vision_h.safetensors or the "
                               "official models_clip_open-clip-xlm-roberta-large-vit-huge-14.pth."}),
            },
            "optional": {
                "path": path_input(),
            },
        }

    @classmethod
    def VALIDATE_INPUTS(cls, model=None, path=None, **_):
        return check_model("clip_vision", model, path)

    def load(self, model, path=""):
        from ..models.vision.clip_loader import load_clip_vision

        full = resolve_path("clip_vision", model, path)
        enc = load_clip_vision(full, compute_dtype=dtype_of("auto"), device=host.offload_device())
        return (handles.ClipVisionHandle(enc, full),)


class VAELoader:
    DESCRIPTION = "Loads the Wan2.1 video VAE (Wan2.1_VAE.pth, wan_2.1_vae.safetensors or a diffusers vae folder)."
    CATEGORY = LOADERS
    RETURN_TYPES = (handles.VAE,)
    RETURN_NAMES = ("vae",)
    OUTPUT_TOOLTIPS = ("The video VAE with its tiling settings.",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": (model_list("vae"), {"tooltip": "The Wan2.1 VAE in ComfyUI's models/vae."}),
                "dtype": vae_dtype_input(),
                "tile_size": ("INT", {
                    "default": 0, "min": 0, "max": 4096, "step": 32,
                    "tooltip": "Tiled encode/decode: tile size in pixels (e.g. 256). 0 = untiled. Tiles let a 720P "
                               "decode fit in 8 GB; seams are blended."}),
                "tile_overlap": ("INT", {"default": 64, "min": 0, "max": 1024, "step": 8,
                                         "tooltip": "Overlap of neighbouring tiles in pixels (blended)."}),
            },
            "optional": {
                "path": path_input(),
            },
        }

    @classmethod
    def VALIDATE_INPUTS(cls, model=None, path=None, **_):
        return check_model("vae", model, path)

    def load(self, model, dtype, tile_size, tile_overlap, path=""):
        from ..models.wan.vae_loader import load_wan_vae

        full = resolve_path("vae", model, path)
        vae, _cfg = load_wan_vae(full, dtype=dtype_of(dtype), device=host.offload_device())
        tile = vae_tiles(tile_size, tile_overlap) if tile_size > 0 else None
        return (handles.VAEHandle(vae, full, tile),)


NODES = [
    ("SkyReelsDiTLoader", DiTLoader, "SkyReels DiT Loader"),
    ("SkyReelsTextEncoderLoader", TextEncoderLoader, "SkyReels Text Encoder Loader (umT5)"),
    ("SkyReelsCLIPVisionLoader", CLIPVisionLoader, "SkyReels CLIP Vision Loader"),
    ("SkyReelsVAELoader", VAELoader, "SkyReels VAE Loader"),
]
