"""The SkyReels-A1 workflow shipped in ``workflows/``: animate a portrait with a ready control video.

Defaults are the official ones (spec §5, golden a1 README): 720x480, 10 steps, cfg 3, seed
43, 12 fps, windows of 49 frames with overlap 8.
"""
from __future__ import annotations

from ..workflow_builder import Node, Note
from .a1_inputs import CONTROL, PORTRAIT

A1_DIR = "SkyReels-A1/SkyReels-A1-5B"
DETECTOR = "SkyReels-A1/mediapipe/face_landmarker_v2_with_blendshapes.task"

MODELS = {
    "a1_transformer": ("diffusion_models", A1_DIR + "/transformer"),
    "a1_vae": ("diffusion_models", A1_DIR + "/vae"),
    "a1_pose_guider": ("diffusion_models", A1_DIR + "/pose_guider"),
    "a1_siglip": ("diffusion_models", A1_DIR + "/siglip-so400m-patch14-384"),
}

NOTE = """SkyReels-A1 portrait animation: the portrait moves as the control video says.

Model files: download Skywork/SkyReels-A1 (its SkyReels-A1-5B/ folder, plus the mediapipe/ folder of the release's extra models) into
ComfyUI/models/diffusion_models/SkyReels-A1/, so that these exist:
- ComfyUI/models/diffusion_models/%(a1)s/transformer   (config.json + diffusion_pytorch_model.safetensors; or pick a single / fp8 file)
- ComfyUI/models/diffusion_models/%(a1)s/vae
- ComfyUI/models/diffusion_models/%(a1)s/pose_guider
- ComfyUI/models/diffusion_models/%(a1)s/siglip-so400m-patch14-384
- ComfyUI/models/diffusion_models/%(det)s
The text encoder, tokenizer and scheduler folders of the release are not needed. Nothing is downloaded at run time.

The control video: frame 0 is the portrait's own landmarks, frames 1.. the driving landmarks at 12 fps (a 24/30 fps video goes through
"SkyReels A1 Resample Frames" first). The output has one frame per driving frame, at 12 fps; videos longer than 48 frames are made in
49-frame windows (overlap 8) with the official latent fusion. The example control video has 100 driving frames: 3 windows.

Official settings: 720x480 (the released model runs only at this size), 10 steps, cfg 3, seed 43.
Low on VRAM? Set vram_budget_gb on the transformer loader (e.g. 8 on a 12 GB card) and/or weight_dtype fp8_e4m3fn.
Long videos: set chunk_folder on the sampler to save each window and resume after a crash or cancel.

Headless: python . run workflows/skyreels_a1_portrait_animation.json --models ComfyUI/models""" % {"a1": A1_DIR, "det": DETECTOR}


def portrait_animation() -> list:
    # the loaders; the portrait and the control video side by side with them; face encode (and the
    # Note); the sampler; save
    # (columns 400 apart: the editor draws the face encoder loader about 380 wide)
    return [
        Node(1, "SkyReelsA1Loader", (40, 40), {"model": MODELS["a1_transformer"][1]}),
        Node(2, "SkyReelsCogVideoXVAELoader", (40, 300), {"model": MODELS["a1_vae"][1], "tiled": True}, title="A1 VAE"),
        Node(3, "SkyReelsCogVideoXVAELoader", (40, 490), {"model": MODELS["a1_pose_guider"][1], "tiled": False},
             title="A1 pose guider"),
        Node(4, "SkyReelsA1FaceEncoderLoader", (40, 680), {"siglip": MODELS["a1_siglip"][1], "face_detector": DETECTOR}),
        Node(5, "SkyReelsLoadImage", (460, 40), {"image": PORTRAIT}, title="Portrait"),
        Node(6, "SkyReelsLoadVideo", (460, 430), {"video": CONTROL}, title="Control video (12 fps)"),
        Node(10, "SkyReelsA1FaceEncode", (860, 40), {}, {"face_encoder": (4, 0), "portrait": (5, 0)}),
        Node(11, "SkyReelsA1Sampler", (1260, 40),
             {"width": 720, "height": 480, "seed": 43, "steps": 10, "cfg": 3.0},
             {"model": (1, 0), "vae": (2, 0), "pose_guider": (3, 0), "portrait": (5, 0), "control_video": (6, 0),
              "face_embedding": (10, 0)}),
        Node(12, "SkyReelsSaveVideo", (1660, 40), {"fps": 12.0, "filename_prefix": "SkyReels/a1"}, {"images": (11, 0)}),
        Note(90, (860, 160), NOTE),
    ]


# the CPU-sized smoke run (besides width=128, height=96, steps=3): the demo detector is absent
# (no face landmarker among the demo models), so the face is the portrait's centre square; the
# VAE runs untiled (tiling is tested on its own); the example control video has 100 driving
# frames: 3 windows, 100 output frames at 12 fps.
SMOKE = {
    "skyreels_a1_portrait_animation.json": (['face_detector="none"', "tiled=false"], 100, 12.0),
}

SHIPPED = {
    "skyreels_a1_portrait_animation.json": portrait_animation,
}
