"""The LoRA nodes: add a LoRA to a DiT handle (chain several for several LoRAs). One for the
SkyReels-V2 / Wan DiT, one for the SkyReels-V1 (HunyuanVideo) DiT; both share :func:`add_lora`."""
from __future__ import annotations

import dataclasses
import os

from .. import host
from . import handles
from .base import LOADERS, NodeError, model_list
from .loading import path_input, resolve_path


class LoRALoader:
    DESCRIPTION = ("Applies a LoRA to a SkyReels / Wan DiT: step-distill LoRAs (lightx2v, CausVid, AccVid: 4-8 "
                   "steps without CFG), style and character LoRAs. Reads ComfyUI / Kijai (diffusion_model. lora_up / "
                   "lora_down, diff, diff_b), kohya / musubi (lora_unet_...) and diffusers / PEFT (lora_A / lora_B) "
                   "files. Chain several nodes to stack LoRAs; the base file is not read again when a LoRA or its "
                   "strength changes. Works with bf16/fp16 (merged), fp8, int8, nf4 and GGUF weights (applied on "
                   "the fly) and with the VRAM budget.")
    CATEGORY = LOADERS
    RETURN_TYPES = (handles.DIT,)
    RETURN_NAMES = ("model",)
    OUTPUT_TOOLTIPS = ("The same DiT with this LoRA added to its list (connect to a sampler or to another LoRA node).",)
    FUNCTION = "apply"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": (handles.DIT, {"tooltip": "From the SkyReels DiT loader or another LoRA node."}),
                "lora_name": (model_list("loras"), {
                    "tooltip": "A LoRA file in ComfyUI's models/loras, e.g. the lightx2v step-distill LoRA "
                               "(Wan21_T2V_14B_lightx2v_cfg_step_distill_lora_rank32.safetensors)."}),
                "strength": ("FLOAT", {
                    "default": 1.0, "min": -10.0, "max": 10.0, "step": 0.05,
                    "tooltip": "How much of the LoRA: 1 as trained, 0 off, negative inverts it. Step-distill "
                               "LoRAs are used at 1 (some at 0.6-0.8 together with style LoRAs)."}),
            },
            "optional": {
                "path": path_input("loras", overrides="lora_name", what="A LoRA file"),
            },
        }

    def apply(self, model, lora_name, strength, path=""):
        return (add_lora(model, lora_name, strength, path, model.name),)


def add_lora(model, lora_name, strength, path, model_name):
    """``model`` (a DiT handle) with the LoRA file added to its list; ``model_name`` names the
    model in messages.  Strength 0 gives the handle back unchanged."""
    from ..models.loading.checkpoint import CheckpointError
    from ..models.lora import load_lora

    full = resolve_path("loras", lora_name, path, "no LoRA file was found in the loras folder; put one there or "
                                                 "type a full path into 'path'")
    if strength == 0:
        return model
    try:
        resolved = load_lora(full, model.model, model_name)
    except CheckpointError as e:  # LoRAError included
        raise NodeError(str(e)) from None
    host.log(resolved.report())
    spec = handles.LoRASpec(os.path.basename(full), full, float(strength), resolved)
    return dataclasses.replace(model, loras=tuple(model.loras) + (spec,))


class V1LoRALoader:
    DESCRIPTION = ("Applies a LoRA to the SkyReels-V1 DiT (HunyuanVideo 13B): HunyuanVideo style, character and "
                   "motion LoRAs. Reads musubi-tuner / kohya (lora_unet_double_blocks_...), ComfyUI / Kijai "
                   "(diffusion_model.double_blocks..., original or ComfyUI names) and diffusers / finetrainers / "
                   "PEFT files (transformer.transformer_blocks...: their separate to_q / to_k / to_v and the single "
                   "blocks' proj_mlp land on the right rows of the fused weights). Chain several nodes to stack "
                   "LoRAs. Works with bf16/fp16 (merged), fp8, int8, nf4 and GGUF weights (applied on the fly) and "
                   "with the VRAM budget. Wan / SkyReels-V2 LoRAs do not fit this model.")
    CATEGORY = LOADERS
    RETURN_TYPES = (handles.V1_DIT,)
    RETURN_NAMES = ("model",)
    OUTPUT_TOOLTIPS = ("The same V1 DiT with this LoRA added to its list (connect to the V1 sampler or to another "
                       "V1 LoRA node).",)
    FUNCTION = "apply"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": (handles.V1_DIT, {"tooltip": "From the SkyReels V1 DiT Loader or another V1 LoRA node."}),
                "lora_name": (model_list("loras"), {
                    "tooltip": "A HunyuanVideo LoRA file in ComfyUI's models/loras (made for HunyuanVideo T2V; "
                               "SkyReels-V1 is a HunyuanVideo fine-tune)."}),
                "strength": ("FLOAT", {
                    "default": 1.0, "min": -10.0, "max": 10.0, "step": 0.05,
                    "tooltip": "How much of the LoRA: 1 as trained, 0 off, negative inverts it."}),
            },
            "optional": {
                "path": path_input("loras", overrides="lora_name", what="A LoRA file"),
            },
        }

    def apply(self, model, lora_name, strength, path=""):
        return (add_lora(model, lora_name, strength, path, "%s (a SkyReels-V1 / HunyuanVideo DiT)" % model.name),)


NODES = [
    ("SkyReelsLoRALoader", LoRALoader, "SkyReels LoRA"),
    ("SkyReelsV1LoRALoader", V1LoRALoader, "SkyReels V1 LoRA"),
]
