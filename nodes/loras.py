"""The LoRA node: adds a LoRA to a DiT handle (chain several for several LoRAs)."""
from __future__ import annotations

import dataclasses
import os

from .. import host
from . import handles
from .base import LOADERS, NodeError, model_list


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
                "path": ("STRING", {"default": "", "tooltip": "A full path to a LoRA file anywhere; overrides "
                                                              "'lora_name' when not empty."}),
            },
        }

    def apply(self, model, lora_name, strength, path=""):
        from ..models.loading.checkpoint import CheckpointError
        from ..models.lora import load_lora

        choice = (path or "").strip() or lora_name
        if choice.startswith("(no models found"):
            raise NodeError("no LoRA file was found in the loras folder; put one there or type a full path into 'path'")
        try:
            full = host.resolve_model("loras", choice)
        except FileNotFoundError as e:
            raise NodeError(str(e)) from None
        if strength == 0:
            return (model,)
        try:
            resolved = load_lora(full, model.model, model.name)
        except CheckpointError as e:  # LoRAError included
            raise NodeError(str(e)) from None
        host.log(resolved.report())
        spec = handles.LoRASpec(os.path.basename(full), full, float(strength), resolved)
        return (dataclasses.replace(model, loras=tuple(model.loras) + (spec,)),)


NODES = [
    ("SkyReelsLoRALoader", LoRALoader, "SkyReels LoRA"),
]
