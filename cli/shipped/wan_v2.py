"""The SkyReels-V2 workflows shipped in ``workflows/`` (T2V, I2V, diffusion forcing).

Defaults are the official ones (spec section 4): 544x960, 97 frames, 30 steps, shift 8 / 5,
cfg 6 / 5, 24 fps.
"""
from __future__ import annotations

from typing import Dict, List

from ..workflow_builder import Node, Note

# Model files the workflows name: (ComfyUI models subfolder, name).  The demo models use the
# same names, in the same formats as the real files.
MODELS = {
    "t2v": ("diffusion_models", "SkyReels-V2-T2V-14B-540P"),
    "i2v": ("diffusion_models", "Wan2_1-SkyReels-V2-I2V-14B-540P_fp8_e4m3fn.safetensors"),
    "df": ("diffusion_models", "SkyReels-V2-DF-1.3B-540P"),
    "text": ("text_encoders", "umt5_xxl_fp8_e4m3fn_scaled.safetensors"),
    "clip": ("clip_vision", "clip_vision_h.safetensors"),
    "vae": ("vae", "wan_2.1_vae.safetensors"),
}
EXAMPLE_IMAGE = "skyreels_example_start.png"
EXAMPLE_END_IMAGE = "skyreels_example_end.png"
EXAMPLE_VIDEO = "skyreels_example_clip.mp4"

PROMPT = ("A woman in a leather jacket and sunglasses riding a vintage motorcycle through a desert highway at "
          "sunset, her hair blowing wildly in the wind as the motorcycle kicks up dust, with the golden sun "
          "casting long shadows across the barren landscape.")
I2V_PROMPT = ("A calm lake at dawn, mist drifting over the water, a small wooden boat gently rocking near the "
              "shore, soft golden light spreading across the mountains.")


def _models_note(keys: List[str], extra: str = "") -> str:
    where = {
        "t2v": "the whole Skywork/SkyReels-V2-T2V-14B-540P folder (config.json + shards)",
        "i2v": "a SkyReels-V2-I2V file or folder (e.g. Skywork/SkyReels-V2-I2V-14B-540P, or Kijai's fp8 file)",
        "df": "the whole Skywork/SkyReels-V2-DF-1.3B-540P folder (config.json + model.safetensors)",
        "text": "umT5-XXL: Comfy-Org/Wan_2.1_ComfyUI_repackaged (split_files/text_encoders) or the official "
                "models_t5_umt5-xxl-enc-bf16.pth with its google/umt5-xxl tokenizer folder beside it",
        "clip": "CLIP ViT-H: Comfy-Org/Wan_2.1_ComfyUI_repackaged (split_files/clip_vision) or the official "
                "models_clip_open-clip-xlm-roberta-large-vit-huge-14.pth",
        "vae": "Wan2.1 VAE: Comfy-Org/Wan_2.1_ComfyUI_repackaged (split_files/vae) or the official Wan2.1_VAE.pth",
    }
    lines = ["Model files (any of the listed formats work; pick them in the loaders):", ""]
    for k in keys:
        folder, name = MODELS[k]
        lines.append("- ComfyUI/models/%s/%s\n  %s" % (folder, name, where[k]))
    lines += ["", "Low on VRAM? Set vram_budget_gb on the DiT loader (e.g. 6 on an 8 GB card) and/or "
              "weight_dtype fp8_e4m3fn; set tile_size 256 on the VAE loader.", ""]
    if extra:
        lines.append(extra)
    lines.append("Headless: python . run workflows/<this file> --models ComfyUI/models")
    return "\n".join(lines)


def _loaders(dit: str, y: int = 0, clip: bool = False):
    nodes = [
        Node(1, "SkyReelsDiTLoader", (40, y + 40), {"model": MODELS[dit][1]}),
        Node(2, "SkyReelsTextEncoderLoader", (40, y + 300), {"model": MODELS["text"][1]}),
        Node(3, "SkyReelsVAELoader", (40, y + 480), {"model": MODELS["vae"][1]}),
    ]
    if clip:
        nodes.append(Node(4, "SkyReelsCLIPVisionLoader", (40, y + 700), {"model": MODELS["clip"][1]}))
    return nodes


def t2v() -> list:
    return _loaders("t2v") + [
        Node(10, "SkyReelsTextEncode", (420, 40), {"prompt": PROMPT}, {"text_encoder": (2, 0)}),
        Node(11, "SkyReelsEmptyLatent", (420, 300), {"width": 960, "height": 544, "num_frames": 97}),
        Node(12, "SkyReelsSampler", (800, 40), {"steps": 30, "cfg": 6.0, "shift": 8.0},
             {"model": (1, 0), "positive": (10, 0), "negative": (10, 1), "latent": (11, 0)}),
        Node(13, "SkyReelsVAEDecode", (1180, 40), {}, {"vae": (3, 0), "latent": (12, 0)}),
        Node(14, "SkyReelsSaveVideo", (1180, 140), {"fps": 24.0, "filename_prefix": "SkyReels/t2v"},
             {"images": (13, 0)}),
        Note(90, (800, 380), "SkyReels-V2 text-to-video, official defaults: 960x544, 97 frames (4 s at 24 fps), "
                             "30 steps, cfg 6, shift 8.\n\n" + _models_note(["t2v", "text", "vae"])),
    ]


def i2v() -> list:
    return _loaders("i2v", clip=True) + [
        Node(5, "SkyReelsLoadImage", (420, 300), {"image": EXAMPLE_IMAGE}),
        Node(10, "SkyReelsTextEncode", (420, 40), {"prompt": I2V_PROMPT}, {"text_encoder": (2, 0)}),
        Node(11, "SkyReelsCLIPVisionEncode", (420, 680), {}, {"clip_vision": (4, 0), "image": (5, 0)}),
        Node(12, "SkyReelsImageToVideo", (800, 40), {"width": 960, "height": 544, "num_frames": 97},
             {"positive": (10, 0), "negative": (10, 1), "vae": (3, 0), "start_image": (5, 0),
              "clip_vision_output": (11, 0)}),
        Node(13, "SkyReelsSampler", (800, 300), {"steps": 30, "cfg": 5.0, "shift": 5.0},
             {"model": (1, 0), "positive": (12, 0), "negative": (12, 1), "latent": (12, 2)}),
        Node(14, "SkyReelsVAEDecode", (1180, 40), {}, {"vae": (3, 0), "latent": (13, 0)}),
        Node(15, "SkyReelsSaveVideo", (1180, 140), {"fps": 24.0, "filename_prefix": "SkyReels/i2v"},
             {"images": (14, 0)}),
        Note(90, (800, 660), "SkyReels-V2 image-to-video, official defaults: 960x544 (swapped for portrait "
                             "images), 97 frames, 30 steps, cfg 5, shift 5. Put the start image in ComfyUI/input.\n\n"
             + _models_note(["i2v", "text", "clip", "vae"])),
    ]


def _df(title: str, sampler: Dict, options: Dict, extra_nodes=(), extra_links=None, prompt: str = PROMPT,
        note: str = "") -> list:
    links = {"model": (1, 0), "vae": (3, 0), "positive": (10, 0), "negative": (10, 1), "options": (11, 0)}
    links.update(extra_links or {})
    return _loaders("df") + list(extra_nodes) + [
        Node(10, "SkyReelsTextEncode", (420, 40), {"prompt": prompt}, {"text_encoder": (2, 0)}),
        Node(11, "SkyReelsDFOptions", (420, 300), options),
        Node(12, "SkyReelsDFSampler", (800, 40), sampler, links, title=title),
        Node(13, "SkyReelsSaveVideo", (1180, 40), {"fps": 24.0, "filename_prefix": "SkyReels/df"},
             {"images": (12, 0)}),
        Note(90, (800, 540), note + "\n\n" + _models_note(["df", "text", "vae"])),
    ]


def df_sync_10s() -> list:
    return _df("Diffusion forcing, synchronous, 10 s",
               {"width": 960, "height": 544, "num_frames": 257, "steps": 30, "cfg": 6.0, "shift": 8.0,
                "ar_step": 0, "causal_block_size": 1},
               {"base_num_frames": 97, "overlap_history": 17, "addnoise_condition": 20},
               note="10 s (257 frames) in synchronous mode, the official recommendation: 97-frame chunks "
                    "overlapping by 17 frames (257 = 97 + 80 + 80), addnoise 20. Memory does not grow with length.")


def df_async_30s() -> list:
    return _df("Diffusion forcing, asynchronous, 30 s",
               {"width": 960, "height": 544, "num_frames": 737, "steps": 30, "cfg": 6.0, "shift": 8.0,
                "ar_step": 5, "causal_block_size": 5},
               {"base_num_frames": 97, "overlap_history": 17, "addnoise_condition": 20,
                "chunk_folder": "SkyReels/df_async_30s_chunks"},
               prompt=PROMPT + " | The motorcycle slows down and stops at a roadside diner as night falls.",
               note="30 s (737 frames = 97 + 8 x 80) in asynchronous mode (ar_step 5, causal_block_size 5), "
                    "two prompts ('|' splits them: chunk 1 uses the first, later chunks the last). Each finished "
                    "chunk is saved in output/SkyReels/df_async_30s_chunks: run again after a crash or cancel "
                    "to resume.")


def df_i2v() -> list:
    return _df("Diffusion forcing, image to video",
               {"width": 960, "height": 544, "num_frames": 97, "steps": 30, "cfg": 6.0, "shift": 5.0,
                "ar_step": 0, "causal_block_size": 1},
               {"base_num_frames": 97, "overlap_history": 17, "addnoise_condition": 20},
               extra_nodes=[Node(5, "SkyReelsLoadImage", (40, 700), {"image": EXAMPLE_IMAGE})],
               extra_links={"start_image": (5, 0)}, prompt=I2V_PROMPT,
               note="Image-to-video with a DF model: the start image becomes the first latent frame. Shift 5 is "
                    "suggested for image-to-video. Describe the first frame in the prompt.")


def df_start_end() -> list:
    return _df("Diffusion forcing, start and end frame",
               {"width": 960, "height": 544, "num_frames": 97, "steps": 30, "cfg": 6.0, "shift": 5.0,
                "ar_step": 0, "causal_block_size": 1},
               {"base_num_frames": 97, "overlap_history": 17, "addnoise_condition": 20},
               extra_nodes=[Node(5, "SkyReelsLoadImage", (40, 700), {"image": EXAMPLE_IMAGE}, title="Start image"),
                            Node(6, "SkyReelsLoadImage", (420, 700), {"image": EXAMPLE_END_IMAGE}, title="End image")],
               extra_links={"start_image": (5, 0), "end_image": (6, 0)}, prompt=I2V_PROMPT,
               note="Start and end frame in one 97-frame chunk (the official example). The 14B DF model follows "
                    "the end frame better than the 1.3B one.")


def df_extend() -> list:
    return _df("Diffusion forcing, extend a video",
               {"width": 960, "height": 544, "num_frames": 160, "steps": 30, "cfg": 6.0, "shift": 8.0,
                "ar_step": 0, "causal_block_size": 1},
               {"base_num_frames": 97, "overlap_history": 17, "addnoise_condition": 20},
               extra_nodes=[Node(5, "SkyReelsLoadVideo", (40, 700), {"video": EXAMPLE_VIDEO})],
               extra_links={"video": (5, 0)},
               note="Extends the loaded video by 160 new frames (2 chunks of 80). The video is resized to the "
                    "width and height; it needs at least overlap_history (17) frames. The output starts with the "
                    "input frames.")


# workflow -> the CPU-sized smoke run of the tests: (--set overrides besides width=128,
# height=96, steps=3; frames of the written video)
SMOKE = {
    "skyreels_v2_t2v.json": (["num_frames=9"], 9),
    "skyreels_v2_i2v.json": (["num_frames=9"], 9),
    "skyreels_v2_df_10s_sync.json": (["num_frames=41", "base_num_frames=17", "overlap_history=5"], 41),
    "skyreels_v2_df_30s_async.json": (["num_frames=57", "base_num_frames=37", "overlap_history=17"], 57),
    "skyreels_v2_df_i2v.json": (["num_frames=9"], 9),
    "skyreels_v2_df_start_end.json": (["num_frames=9"], 9),
    # the example clip has 33 frames; extension appends 8 new ones
    "skyreels_v2_df_extend.json": (["num_frames=8", "base_num_frames=17", "overlap_history=5"], 33 + 8),
}

SHIPPED = {
    "skyreels_v2_t2v.json": t2v,
    "skyreels_v2_i2v.json": i2v,
    "skyreels_v2_df_10s_sync.json": df_sync_10s,
    "skyreels_v2_df_30s_async.json": df_async_30s,
    "skyreels_v2_df_i2v.json": df_i2v,
    "skyreels_v2_df_start_end.json": df_start_end,
    "skyreels_v2_df_extend.json": df_extend,
}
