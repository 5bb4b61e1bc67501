"""Shipped workflows of the LoRA / GGUF family: text-to-video with the lightx2v step-distill LoRA.

The recipe is the one its makers publish (ModelTC/LightX2V, ``configs/distill/wan21/
wan_t2v_distill_lora_4step_cfg.json`` and ``WanStepDistillScheduler``): 4 steps at the
timesteps 1000, 750, 500, 250 before a shift of 5, no classifier-free guidance, each step
predicting the clean video and re-noising it to the next timestep.  Here: steps 4, cfg 1,
shift 5, solver ``lcm``, sigma grid ``simple``.

``EXTRA_SMOKE`` runs the ordinary T2V and DF workflows on the demo GGUF DiTs, and the distill-LoRA workflow
with a LoRA stacked on the GGUF T2V DiT (tests/test_workflows.py; the T2V ones in a real ComfyUI too,
tests/test_comfyhost.py).
"""
from __future__ import annotations

from ..workflow_builder import Node, Note
from . import wan_v2

MODELS = {
    "distill_lora": ("loras", "Wan21_T2V_14B_lightx2v_cfg_step_distill_lora_rank32.safetensors"),
    "t2v_gguf": ("diffusion_models", "SkyReels-V2-T2V-14B-540P-Q4_K_M.gguf"),
    "df_gguf": ("diffusion_models", "SkyReels-V2-DF-1.3B-540P-Q4_K_M.gguf"),
    # demo only (no workflow names it): a LoRA that fits the demo GGUF T2V DiT, for the test of a
    # LoRA stacked on GGUF weights in a real ComfyUI (tests/test_comfyhost.py)
    "gguf_lora": ("loras", "demo_lora_for_the_gguf_t2v_dit.safetensors"),
}

DISTILL = dict(steps=4, cfg=1.0, shift=5.0, solver="lcm", sigma_grid="simple")

DISTILL_NOTE = (
    "SkyReels-V2 text-to-video in 4 steps without CFG, with the lightx2v step- and CFG-distill LoRA: about "
    "15x fewer model passes than the 30-step, cfg-6 workflow.\n\n"
    "Settings as its makers publish them (github.com/ModelTC/LightX2V, configs/distill/wan21/"
    "wan_t2v_distill_lora_4step_cfg.json and WanStepDistillScheduler): 4 steps at timesteps 1000, 750, 500, 250 "
    "(sigma grid 'simple'), shift 5, no CFG (cfg 1), each step predicting the clean video and re-noising it "
    "(solver 'lcm'). LoRA strength 1.\n\n"
    "The LoRA was trained on Wan2.1-T2V-14B; SkyReels-V2 T2V-14B and DF-14B share its architecture and layer "
    "names, and it is widely used with them, but it was not made for them: expect a look closer to the base "
    "Wan model. Chain more SkyReels LoRA nodes for style or character LoRAs.\n\n"
    "LoRA files (ComfyUI/models/loras/):\n"
    "- %s (Kijai/WanVideo_comfy, Lightx2v folder; rank 32)\n"
    "- or the makers' own lightx2v/Wan2.1-Distill-Loras wan2.1_t2v_14b_lora_rank64_lightx2v_4step.safetensors "
    "(pick it in the LoRA node)\n\n"
    % MODELS["distill_lora"][1])


def t2v_distill_lora() -> list:
    return wan_v2._loaders("t2v") + [
        Node(5, "SkyReelsLoRALoader", (40, 720), {"lora_name": MODELS["distill_lora"][1], "strength": 1.0},
             {"model": (1, 0)}, title="Step-distill LoRA (lightx2v)"),
        Node(10, "SkyReelsTextEncode", (420, 40), {"prompt": wan_v2.PROMPT}, {"text_encoder": (2, 0)}),
        Node(11, "SkyReelsEmptyLatent", (420, 420), {"width": 960, "height": 544, "num_frames": 97}),
        Node(12, "SkyReelsSampler", (800, 40), dict(DISTILL),
             {"model": (5, 0), "positive": (10, 0), "negative": (10, 1), "latent": (11, 0)}),
        Node(13, "SkyReelsVAEDecode", (1180, 40), {}, {"vae": (3, 0), "latent": (12, 0)}),
        Node(14, "SkyReelsSaveVideo", (1180, 200), {"fps": 24.0, "filename_prefix": "SkyReels/t2v_distill"},
             {"images": (13, 0)}),
        Note(90, (800, 420), DISTILL_NOTE + wan_v2._models_note(["t2v", "text", "vae"])),
    ]


SHIPPED = {
    "skyreels_v2_t2v_distill_lora.json": t2v_distill_lora,
}

SMOKE = {
    "skyreels_v2_t2v_distill_lora.json": (["num_frames=9"], 9),
}

# The ordinary T2V and DF workflows on the demo GGUF DiTs (whose blocks hold every GGUF type):
# label -> (workflow, --set overrides on top of its SMOKE entry, frames of the video).
EXTRA_SMOKE = {
    "gguf_t2v": ("skyreels_v2_t2v.json", ["SkyReelsDiTLoader.model=" + MODELS["t2v_gguf"][1]], 9),
    "gguf_df": ("skyreels_v2_df_10s_sync.json",
                ["SkyReelsDiTLoader.model=" + MODELS["df_gguf"][1], "num_frames=29"], 29),  # 2 chunks: 17 + 12
    # a LoRA stacked on the GGUF DiT (applied on the fly to the quantized layers)
    "gguf_t2v_lora": ("skyreels_v2_t2v_distill_lora.json",
                      ["SkyReelsDiTLoader.model=" + MODELS["t2v_gguf"][1],
                       "SkyReelsLoRALoader.lora_name=" + MODELS["gguf_lora"][1]], 9),
}
