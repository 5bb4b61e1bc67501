"""The SkyReels-A2 and SkyReels-V3 reference-to-video workflows shipped in ``workflows/``.

Official defaults:

* A2 (``infer.py``): 832x480, 81 frames, 50 steps, cfg 5, shift 8, the official negative
  prompt, the first 12 decoded frames dropped, 15 fps;
* V3 R2V (``generate_video.py``, the shipped CFG-distilled entry point): 720P bucket of the
  first reference, 121 frames (5 s), 8 steps, cfg 1, shift 5, empty negative prompt, 24 fps.
"""
from __future__ import annotations

from ...models.refs import a2, r2v
from ..workflow_builder import Node, Note
from . import refs_inputs
from .wan_v2 import MODELS as WAN_MODELS

MODELS = {
    "a2": ("diffusion_models", "SkyReels-A2"),
    "r2v": ("diffusion_models", "SkyReels-V3-R2V-14B"),
}

A2_PROMPT = "A man is holding a teddy bear in the forest."
R2V_PROMPT = ("A man in a green jacket sits at a wooden table in a cosy cafe, lifts a blue ceramic mug with a "
              "white stripe and takes a slow sip, steam rising, warm morning light through the window.")


def _note(title: str, dit: str, dit_where: str, extra: str) -> str:
    where = {
        "text": "umT5-XXL: Comfy-Org/Wan_2.1_ComfyUI_repackaged (split_files/text_encoders), or the pipeline "
                "folder's text_encoder/ (type its path into 'path')",
        "vae": "Wan2.1 VAE: Comfy-Org/Wan_2.1_ComfyUI_repackaged (split_files/vae), or the pipeline folder's vae/",
        "clip": "CLIP ViT-H: Comfy-Org/Wan_2.1_ComfyUI_repackaged (split_files/clip_vision), or the A2 folder's "
                "image_encoder/",
    }
    keys = ["text", "vae"] + (["clip"] if dit == "a2" else [])
    lines = [title, "", "Model files (pick them in the loaders):", "",
             "- ComfyUI/models/%s/%s\n  %s" % (MODELS[dit][0], MODELS[dit][1], dit_where)]
    for k in keys:
        folder, name = WAN_MODELS[k]
        lines.append("- ComfyUI/models/%s/%s\n  %s" % (folder, name, where[k]))
    lines += ["", "The DiT loader says in its log which model it found (A2 / R2V). Low on VRAM? Set "
              "vram_budget_gb on the DiT loader (e.g. 8 on a 12 GB card) and/or weight_dtype fp8_e4m3fn or int8; "
              "set tile_size 256 on the VAE loader.", "", extra, "",
              "Example references: copy workflows/inputs/* into ComfyUI/input.",
              "Headless: python . run workflows/<this file> --models ComfyUI/models"]
    return "\n".join(lines)


def _loaders(dit: str, clip: bool):
    nodes = [
        Node(1, "SkyReelsDiTLoader", (40, 40), {"model": MODELS[dit][1]}),
        Node(2, "SkyReelsTextEncoderLoader", (40, 300), {"model": WAN_MODELS["text"][1]}),
        Node(3, "SkyReelsVAELoader", (40, 480), {"model": WAN_MODELS["vae"][1]}),
    ]
    if clip:
        nodes.append(Node(4, "SkyReelsCLIPVisionLoader", (40, 680), {"model": WAN_MODELS["clip"][1]}))
    return nodes


def a2_elements() -> list:
    return _loaders("a2", clip=True) + [
        # the three images side by side with the loaders, in a column of their own
        Node(5, "SkyReelsLoadImage", (420, 40), {"image": refs_inputs.SUBJECT}, title="Subject"),
        Node(6, "SkyReelsLoadImage", (420, 420), {"image": refs_inputs.OBJECT}, title="Object"),
        Node(7, "SkyReelsLoadImage", (420, 800), {"image": refs_inputs.BACKGROUND}, title="Background"),
        Node(10, "SkyReelsTextEncode", (800, 40), {"prompt": A2_PROMPT}, {"text_encoder": (2, 0)}),
        Node(11, "SkyReelsA2Elements", (800, 320),
             {"width": a2.WIDTH, "height": a2.HEIGHT, "num_frames": a2.FRAMES, "seed": 42},
             {"positive": (10, 0), "negative": (10, 1), "vae": (3, 0), "clip_vision": (4, 0),
              "subject_image": (5, 0), "object_image": (6, 0), "background_image": (7, 0)}),
        Node(12, "SkyReelsSampler", (1180, 40), {"steps": a2.STEPS, "cfg": a2.CFG, "shift": a2.SHIFT, "seed": 42},
             {"model": (1, 0), "positive": (11, 0), "negative": (11, 1), "latent": (11, 2)}),
        Node(13, "SkyReelsVAEDecode", (1560, 40), {}, {"vae": (3, 0), "latent": (12, 0)}),
        Node(14, "SkyReelsSkipFrames", (1560, 140), {"skip_first_frames": a2.DROP_FIRST_FRAMES},
             {"images": (13, 0)}),
        Node(15, "SkyReelsSaveVideo", (1560, 280), {"fps": a2.FPS, "filename_prefix": "SkyReels/a2"},
             {"images": (14, 0)}),
        Note(90, (1180, 380), _note(
            "SkyReels-A2 elements to video, official defaults: a subject, an object and a background, 832x480, "
            "81 frames, 50 steps, cfg 5, shift 8; the first 12 frames (where the references show) are dropped and "
            "the video is written at 15 fps, as the official demo does.",
            "a2", "the whole Skywork/SkyReels-A2 folder (diffusers: model_index.json, transformer/, vae/, "
                  "image_encoder/ ...), or its transformer/ folder",
            "Elements: subject and object are padded with white to the video's aspect, the background is "
            "centre-cropped. One or two elements work too (disconnect the others); one element gives the "
            "image-to-video layout (the official code fails there)."), size=(360, 620)),
    ]


def v3_reference() -> list:
    return _loaders("r2v", clip=False) + [
        Node(5, "SkyReelsLoadImage", (40, 680), {"image": refs_inputs.SUBJECT}, title="Reference 1"),
        Node(6, "SkyReelsLoadImage", (40, 1020), {"image": refs_inputs.PRODUCT}, title="Reference 2"),
        Node(10, "SkyReelsTextEncode", (420, 40), {"prompt": R2V_PROMPT, "negative_prompt": ""},
             {"text_encoder": (2, 0)}),
        Node(11, "SkyReelsV3References", (420, 420),
             {"resolution": r2v.DEFAULT_RESOLUTION, "num_frames": r2v.FRAMES, "image_cfg": r2v.IMAGE_CFG, "seed": 42},
             {"positive": (10, 0), "negative": (10, 1), "vae": (3, 0), "reference_1": (5, 0),
              "reference_2": (6, 0)}),
        Node(12, "SkyReelsSampler", (800, 40), {"steps": r2v.STEPS, "cfg": r2v.CFG, "shift": r2v.SHIFT, "seed": 42},
             {"model": (1, 0), "positive": (11, 0), "negative": (11, 1), "latent": (11, 2)}),
        Node(13, "SkyReelsVAEDecode", (1180, 40), {}, {"vae": (3, 0), "latent": (12, 0)}),
        Node(14, "SkyReelsSaveVideo", (1180, 200), {"fps": r2v.FPS, "filename_prefix": "SkyReels/r2v"},
             {"images": (13, 0)}),
        Note(90, (800, 560), _note(
            "SkyReels-V3 reference to video, official defaults of the shipped (CFG-distilled) model: 2 references, "
            "the 720P bucket nearest the first reference's aspect, 121 frames (5 s at 24 fps), 8 steps, cfg 1, "
            "shift 5, empty negative prompt.",
            "r2v", "the whole Skywork/SkyReels-V3-R2V-14B folder (diffusers: model_index.json, transformer/, vae/ "
                   "...), or its transformer/ folder",
            "Up to 4 references (people, objects, places). 540P or 480P for GPUs under 24 GB. Guidance: cfg above 1 "
            "turns on the three-pass guidance with image_cfg (the pipeline's own defaults were 7.5 and 5)."),
             size=(360, 620)),
    ]


SHIPPED = {
    "skyreels_a2_elements.json": a2_elements,
    "skyreels_v3_reference.json": v3_reference,
}

# CPU-sized smoke runs (besides width=128, height=96, steps=3): A2 keeps 17 - 12 frames; the
# tests read videos at 24 fps; R2V takes the custom size instead of a bucket.
SMOKE = {
    "skyreels_a2_elements.json": (["num_frames=17", "fps=24"], 17 - a2.DROP_FIRST_FRAMES),
    "skyreels_v3_reference.json": (["resolution=custom", "num_frames=9"], 9),
}
