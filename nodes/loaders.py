"""Loader nodes: the DiT, the umT5 text encoder, the CLIP vision encoder and the video VAE."""
from __future__ import annotations

import torch

from .. import host
from ..models.common.ops import default_compute_dtype
from . import handles
from .base import LOADERS, NodeError, model_list

WEIGHT_DTYPES = ["auto", "bf16", "fp16", "fp32", "fp8_e4m3fn", "fp8_e5m2", "int8", "nf4"]
COMPUTE_DTYPES = ["auto", "bf16", "fp16", "fp32"]
ATTENTION = ["auto", "sdpa", "flash_attn", "sageattn"]
_COMPUTE = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
VARIANT_NAMES = {"t2v": "text-to-video", "i2v": "image-to-video", "df": "diffusion forcing",
                 "a2": "SkyReels-A2 elements-to-video", "r2v": "SkyReels-V3 reference-to-video"}


def _path(kind: str, name: str, override: str) -> str:
    choice = (override or "").strip() or name
    if choice.startswith("(no models found"):
        raise NodeError("no model file was found in the %s folder; put one there (or in a subfolder, and type its "
                        "name into 'path')" % kind)
    try:
        return host.resolve_model(kind, choice)
    except (FileNotFoundError, host.PathError) as e:
        raise NodeError(str(e)) from e


def _check_model(kind: str, model, path) -> object:
    """VALIDATE_INPUTS of a loader: True, or why the model cannot be found (before anything runs)."""
    if model is None and not path:  # linked: checked when it runs
        return True
    try:
        _path(kind, model or "", path or "")
    except NodeError as e:
        return str(e)
    return True


def _compute_dtype(name: str, device: torch.device):
    return default_compute_dtype(device) if name == "auto" else _COMPUTE[name]


class DiTLoader:
    DESCRIPTION = ("Loads a SkyReels / Wan2.1 diffusion transformer (V2 T2V, I2V or DF, 1.3B or 14B; SkyReels-A2; "
                   "SkyReels-V3 R2V and video extension) from any common format: official folders, diffusers "
                   "pipeline folders, ComfyUI single files, fp8 and scaled fp8, and GGUF files (Q2_K to Q8_0, F16, "
                   "BF16; dequantized layer by layer while sampling). The log says which model was found.")
    CATEGORY = LOADERS
    RETURN_TYPES = (handles.DIT,)
    RETURN_NAMES = ("model",)
    OUTPUT_TOOLTIPS = ("The loaded DiT with its detected configuration.",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": (model_list("diffusion_models"), {
                    "tooltip": "A file or model folder in ComfyUI's models/diffusion_models (or unet), e.g. "
                               "SkyReels-V2-DF-1.3B-540P or a .gguf file. Type, size and naming are detected from "
                               "the weights."}),
                "weight_dtype": (WEIGHT_DTYPES, {
                    "default": "auto",
                    "tooltip": "How weights are kept in memory. auto: fp8 files stay fp8, others in the compute dtype. "
                               "fp8 halves the memory of bf16 at a small quality cost; int8 / nf4 quantise further."}),
                "compute_dtype": (COMPUTE_DTYPES, {
                    "default": "auto",
                    "tooltip": "Precision of the matrix products. auto: bf16 on GPUs that have it, fp16 on older ones, "
                               "fp32 on CPU."}),
                "attention": (ATTENTION, {
                    "default": "auto",
                    "tooltip": "Attention kernel. auto picks SageAttention or flash-attention when installed, else "
                               "PyTorch SDPA; an unavailable choice falls back to SDPA with a message."}),
                "vram_budget_gb": ("FLOAT", {
                    "default": 0.0, "min": 0.0, "max": 1024.0, "step": 0.5,
                    "tooltip": "GPU memory the DiT may use, in GB. 0 = no budget (the whole model on the GPU). "
                               "With a budget, as many blocks as fit stay on the GPU and the rest stream in just in "
                               "time, so a 14B model runs on an 8-16 GB card (slower). Leave room for the VAE "
                               "(about 2 GB with tiles) and the rest of the workflow."}),
            },
            "optional": {
                "path": ("STRING", {"default": "", "tooltip": "A file or folder in ComfyUI's diffusion_models "
                                                              "folders (a name, or a full path inside them); "
                                                              "overrides 'model' when not empty."}),
                "variant": (["auto", "t2v", "i2v", "df", "a2", "r2v", "v3_extend", "v3_shot"], {
                    "default": "auto",
                    "tooltip": "What the checkpoint is for, when its keys cannot tell (DF-14B, V3 R2V and the V3 "
                               "extension models look like T2V-14B, SkyReels-A2 like I2V-14B). auto reads the "
                               "config's class name, then 'R2V' / 'Reference2Video' / 'A2' / 'DF' / 'I2V' / 'T2V' in "
                               "the file or folder name, and SkyReels-V3-V2V-14B/transformer (single-shot "
                               "extension, v3_extend) or /shot_transformer (shot switching, v3_shot). With the whole "
                               "V3-V2V folder chosen, v3_shot loads its shot_transformer."}),
                "compile": ("BOOLEAN", {"default": False,
                                        "tooltip": "torch.compile the blocks (faster after a slow first step; "
                                                   "falls back with a message where unsupported)."}),
            },
        }

    @classmethod
    def VALIDATE_INPUTS(cls, model=None, path=None, **_):
        return _check_model("diffusion_models", model, path)

    def load(self, model, weight_dtype, compute_dtype, attention, vram_budget_gb, path="", variant="auto", compile=False):
        from ..models.wan.dit_loader import load_wan_dit

        full = _path("diffusion_models", model, path)
        device = host.torch_device()
        quant = weight_dtype if weight_dtype in ("int8", "nf4") else None
        gguf = full.lower().endswith(".gguf")
        if quant and gguf:
            host.log("%s is a GGUF file, already quantized: weight_dtype %s is not applied" % (model, quant))
            quant, weight_dtype = None, "auto"
        storage = "bf16" if quant else weight_dtype  # quantised from bf16: no fp32 copy on the way
        dit, cfg = load_wan_dit(full, weight_dtype=storage, compute_dtype=_compute_dtype(compute_dtype, device),
                                device=host.offload_device(), variant=None if variant == "auto" else variant,
                                attention=attention, compute_device=device)
        if quant:
            from ..memory.quant import quantize_blocks

            quantize_blocks(dit, quant)
        if compile:
            from ..memory.compile import compile_blocks

            compile_blocks(dit)
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
                "weight_dtype": (["auto", "bf16", "fp16", "fp32", "fp8_e4m3fn"], {
                    "default": "auto", "tooltip": "How the encoder's weights are kept in memory (auto keeps the file's)."}),
            },
            "optional": {
                "tokenizer_path": ("STRING", {
                    "default": "",
                    "tooltip": "Folder with the umT5 tokenizer (tokenizer.json or spiece.model), inside ComfyUI's "
                               "text_encoders folders. Not needed for ComfyUI files, which embed it, or when a "
                               "tokenizer folder sits beside the weights."}),
                "path": ("STRING", {"default": "", "tooltip": "A file or folder in this model type's ComfyUI folders "
                                                              "(a name, or a full path inside them); overrides "
                                                              "'model' when not empty."}),
            },
        }

    @classmethod
    def VALIDATE_INPUTS(cls, model=None, path=None, tokenizer_path=None, **_):
        if (tokenizer_path or "").strip():
            ok = _check_model("text_encoders", None, tokenizer_path)
            if ok is not True:
                return "tokenizer_path: %s" % ok
        return _check_model("text_encoders", model, path)

    def load(self, model, weight_dtype, tokenizer_path="", path=""):
        from ..models.text.umt5_loader import load_umt5

        full = _path("text_encoders", model, path)
        device = host.torch_device()
        tokenizer = _path("text_encoders", "", tokenizer_path) if (tokenizer_path or "").strip() else None
        enc = load_umt5(full, weight_dtype=weight_dtype, compute_dtype=_compute_dtype("auto", device),
                        device=host.offload_device(), tokenizer_path=tokenizer)
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
                "path": ("STRING", {"default": "", "tooltip": "A file or folder in this model type's ComfyUI folders "
                                                              "(a name, or a full path inside them); overrides "
                                                              "'model' when not empty."}),
            },
        }

    @classmethod
    def VALIDATE_INPUTS(cls, model=None, path=None, **_):
        return _check_model("clip_vision", model, path)

    def load(self, model, path=""):
        from ..models.vision.clip_loader import load_clip_vision

        full = _path("clip_vision", model, path)
        enc = load_clip_vision(full, compute_dtype=_compute_dtype("auto", host.torch_device()),
                               device=host.offload_device())
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
                "dtype": (["fp32", "bf16", "fp16"], {
                    "default": "fp32", "tooltip": "Precision of the VAE. The official code runs it in fp32; bf16 "
                                                  "halves its memory with a small colour error."}),
                "tile_size": ("INT", {
                    "default": 0, "min": 0, "max": 4096, "step": 32,
                    "tooltip": "Tiled encode/decode: tile size in pixels (e.g. 256). 0 = untiled. Tiles let a 720P "
                               "decode fit in 8 GB; seams are blended."}),
                "tile_overlap": ("INT", {"default": 64, "min": 0, "max": 1024, "step": 8,
                                         "tooltip": "Overlap of neighbouring tiles in pixels (blended)."}),
            },
            "optional": {
                "path": ("STRING", {"default": "", "tooltip": "A file or folder in this model type's ComfyUI folders "
                                                              "(a name, or a full path inside them); overrides "
                                                              "'model' when not empty."}),
            },
        }

    @classmethod
    def VALIDATE_INPUTS(cls, model=None, path=None, **_):
        return _check_model("vae", model, path)

    def load(self, model, dtype, tile_size, tile_overlap, path=""):
        from ..models.wan.vae_loader import load_wan_vae

        full = _path("vae", model, path)
        vae, _cfg = load_wan_vae(full, dtype=_COMPUTE[dtype], device=host.offload_device())
        tile = None
        if tile_size > 0:
            from ..models.wan.vae_tiling import VAETiling

            if tile_overlap >= tile_size:
                raise NodeError("tile_overlap (%d) must be smaller than tile_size (%d)" % (tile_overlap, tile_size))
            tile = VAETiling(tile_px=tile_size, overlap_px=tile_overlap)
        return (handles.VAEHandle(vae, full, tile),)


NODES = [
    ("SkyReelsDiTLoader", DiTLoader, "SkyReels DiT Loader"),
    ("SkyReelsTextEncoderLoader", TextEncoderLoader, "SkyReels Text Encoder Loader (umT5)"),
    ("SkyReelsCLIPVisionLoader", CLIPVisionLoader, "SkyReels CLIP Vision Loader"),
    ("SkyReelsVAELoader", VAELoader, "SkyReels VAE Loader"),
]
