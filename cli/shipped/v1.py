"""The SkyReels-V1 workflows shipped in ``workflows/`` (HunyuanVideo 13B: T2V and I2V).

Defaults are the official ones (``video_generate.py``): 544x960, 97 frames at 24 fps, 30 steps,
cfg 6 with the official negative prompt, embedded guidance 1.0, shift 7, prompts starting
with "FPS-24, ".
"""
from __future__ import annotations

from typing import List

from ..workflow_builder import Node, Note
from .wan_v2 import EXAMPLE_IMAGE

# Model files the workflows name: (ComfyUI models subfolder, name).  The demo models use the
# same names, in the same formats as the real files.
MODELS = {
    "v1_t2v": ("diffusion_models", "skyreels_hunyuan_t2v_fp8_e4m3fn.safetensors"),
    "v1_i2v": ("diffusion_models", "SkyReels-V1-Hunyuan-I2V"),
    "v1_llama": ("text_encoders", "llava_llama3_fp8_scaled.safetensors"),
    "v1_clip": ("text_encoders", "clip_l.safetensors"),
    "v1_vae": ("vae", "hunyuan_video_vae_bf16.safetensors"),
}

T2V_PROMPT = ("FPS-24, A young woman with long dark hair sits at a wooden table in a sunlit cafe, she looks up from "
              "her book, smiles warmly at the camera and brushes a strand of hair behind her ear, soft window light, "
              "shallow depth of field, cinematic.")
I2V_PROMPT = ("FPS-24, The camera slowly pushes in over a calm lake at dawn, mist drifts over the water and a small "
              "wooden boat rocks gently near the shore as golden light spreads across the mountains.")

_WHERE = {
    "v1_t2v": "Kijai/SkyReels-V1-Hunyuan_comfy: skyreels_hunyuan_t2v_fp8_e4m3fn.safetensors (or _bf16); also the "
              "official Skywork/SkyReels-V1-Hunyuan-T2V folder (config.json + shards)",
    "v1_i2v": "the official Skywork/SkyReels-V1-Hunyuan-I2V folder (config.json + 6 shards + index), or Kijai's "
              "skyreels_hunyuan_i2v_bf16 / _fp8_e4m3fn.safetensors (pick it in the loader)",
    "v1_llama": "Comfy-Org/HunyuanVideo_repackaged (split_files/text_encoders): llava_llama3_fp8_scaled or "
                "llava_llama3_fp16; or hunyuanvideo-community/HunyuanVideo text_encoder/. Tokenizer: inside ComfyUI "
                "its own copy is used; headless, put the tokenizer/ folder of hunyuanvideo-community/HunyuanVideo "
                "beside the file as 'llama_tokenizer'",
    "v1_clip": "Comfy-Org/HunyuanVideo_repackaged (split_files/text_encoders): clip_l.safetensors; or "
               "text_encoder_2/ of hunyuanvideo-community/HunyuanVideo. Tokenizer: ComfyUI's own copy, or "
               "tokenizer_2/ beside the file as 'clip_l_tokenizer'",
    "v1_vae": "Comfy-Org/HunyuanVideo_repackaged (split_files/vae): hunyuan_video_vae_bf16.safetensors; or vae/ of "
              "hunyuanvideo-community/HunyuanVideo",
}


def _note(keys: List[str], head: str) -> str:
    lines = [head, "", "Model files (any of the listed formats work; pick them in the loaders):", ""]
    for k in keys:
        folder, name = MODELS[k]
        lines.append("- ComfyUI/models/%s/%s\n  %s" % (folder, name, _WHERE[k]))
    lines += ["",
              "Low on VRAM? On the DiT loader set vram_budget_gb (e.g. 10 on a 12 GB card, 6 on 8 GB) with the fp8 "
              "file or weight_dtype nf4; on the VAE loader pick 'small tiles'; on the text encoder loader, "
              "run_on_cpu when the 8B Llama does not fit. A SkyReels TeaCache node on 'cache' (0.1-0.15) is ~2x "
              "faster.",
              "",
              "Headless: python . run workflows/<this file> --models ComfyUI/models"]
    return "\n".join(lines)


def _loaders(dit: str):
    return [
        Node(1, "SkyReelsV1ModelLoader", (40, 40), {"model": MODELS[dit][1]}),
        Node(2, "SkyReelsV1TextEncoderLoader", (40, 330), {"llama": MODELS["v1_llama"][1],
                                                           "clip": MODELS["v1_clip"][1]}),
        Node(3, "SkyReelsV1VAELoader", (40, 560), {"model": MODELS["v1_vae"][1]}),
    ]


def t2v() -> list:
    return _loaders("v1_t2v") + [
        Node(10, "SkyReelsV1TextEncode", (420, 40), {"prompt": T2V_PROMPT}, {"text_encoder": (2, 0)}),
        Node(11, "SkyReelsEmptyLatent", (420, 420), {"width": 960, "height": 544, "num_frames": 97}),
        Node(12, "SkyReelsV1Sampler", (800, 40),
             {"seed": 42, "steps": 30, "cfg": 6.0, "embedded_guidance": 1.0, "shift": 7.0},
             {"model": (1, 0), "positive": (10, 0), "negative": (10, 1), "latent": (11, 0)}),
        Node(13, "SkyReelsV1VAEDecode", (1180, 40), {}, {"vae": (3, 0), "latent": (12, 0)}),
        Node(14, "SkyReelsSaveVideo", (1180, 200), {"fps": 24.0, "filename_prefix": "SkyReels/v1_t2v"},
             {"images": (13, 0)}),
        Note(90, (800, 380), _note(["v1_t2v", "v1_llama", "v1_clip", "v1_vae"],
                                   "SkyReels-V1 text-to-video (HunyuanVideo 13B), official defaults: 960x544, 97 "
                                   "frames (4 s at 24 fps), 30 steps, cfg 6 with the official negative prompt, "
                                   "embedded guidance 1.0, shift 7, seed 42. Prompts start with 'FPS-24, '."), size=(360, 460)),
    ]


def i2v() -> list:
    return _loaders("v1_i2v") + [
        Node(5, "SkyReelsLoadImage", (40, 760), {"image": EXAMPLE_IMAGE}),
        Node(10, "SkyReelsV1TextEncode", (420, 40), {"prompt": I2V_PROMPT}, {"text_encoder": (2, 0)}),
        Node(11, "SkyReelsV1ImageToVideo", (420, 420), {"width": 960, "height": 544, "num_frames": 97},
             {"positive": (10, 0), "negative": (10, 1), "vae": (3, 0), "start_image": (5, 0)}),
        Node(12, "SkyReelsV1Sampler", (800, 40),
             {"seed": 42, "steps": 30, "cfg": 6.0, "embedded_guidance": 1.0, "shift": 7.0},
             {"model": (1, 0), "positive": (11, 0), "negative": (11, 1), "latent": (11, 2)}),
        Node(13, "SkyReelsV1VAEDecode", (1180, 40), {}, {"vae": (3, 0), "latent": (12, 0)}),
        Node(14, "SkyReelsSaveVideo", (1180, 200), {"fps": 24.0, "filename_prefix": "SkyReels/v1_i2v"},
             {"images": (13, 0)}),
        Note(90, (800, 380), _note(["v1_i2v", "v1_llama", "v1_clip", "v1_vae"],
                                   "SkyReels-V1 image-to-video (HunyuanVideo 13B, 32-channel I2V model), official "
                                   "defaults: 960x544 (the image is center-cropped to it), 97 frames, 30 steps, cfg "
                                   "6, embedded guidance 1.0, shift 7. Put the start image in ComfyUI/input; "
                                   "describe it in the prompt."), size=(360, 460)),
    ]


# workflow -> the CPU-sized smoke run of the tests: (--set overrides besides width=128,
# height=96, steps=3; frames of the written video)
SMOKE = {
    "skyreels_v1_t2v.json": (["num_frames=9"], 9),
    "skyreels_v1_i2v.json": (["num_frames=9"], 9),
}

SHIPPED = {
    "skyreels_v1_t2v.json": t2v,
    "skyreels_v1_i2v.json": i2v,
}

# More runs (tests/test_workflows.py): the T2V workflow with 17 frames (5 latent frames: the
# framewise VAE windows) decoded with our small VAE tiles.
EXTRA_SMOKE = {
    "skyreels_v1_t2v small VAE tiles": ("skyreels_v1_t2v.json",
                                        ["num_frames=17", "tiling=small tiles", "tile_size=64", "tile_overlap=16"],
                                        17),
}
