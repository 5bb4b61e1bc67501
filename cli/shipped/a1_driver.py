"""The SkyReels-A1 landmark-driver workflow shipped in ``workflows/``: a portrait and a driving video
of a face -> the landmark driver -> the A1 sampler -> an mp4 with the driving video's sound.

Defaults are the official ones: 720x480, 10 steps, cfg 3, seed 43, 12 fps, head-pose smoothing
0.3; the retargeting is the official 3D one when the A1 folder has smirk/ and FLAME/, else 2D.
"""
from __future__ import annotations

from ..workflow_builder import Node, Note
from .a1 import A1_DIR, DETECTOR
from .a1 import MODELS as A1_MODELS
from .a1_driver_inputs import DRIVING, PORTRAIT

A1_ROOT = "SkyReels-A1"
LANDMARKER = DETECTOR

MODELS = {
    "a1_landmarker": ("diffusion_models", LANDMARKER),
    "a1_smirk": ("diffusion_models", A1_ROOT + "/smirk/SMIRK_em1.pt"),
    "a1_flame": ("diffusion_models", A1_ROOT + "/FLAME/generic_model.pkl"),
}

NOTE = """SkyReels-A1 driven by a video: the portrait performs what the face in the driving video does (expression, eyes, lips, head).

Model files: the Skywork/SkyReels-A1 release in ComfyUI/models/diffusion_models/SkyReels-A1/ (as for the A1 portrait-animation workflow):
- ComfyUI/models/diffusion_models/%(a1)s/{transformer, vae, pose_guider, siglip-so400m-patch14-384}
- ComfyUI/models/diffusion_models/%(det)s   (the face landmarker; the release's mediapipe/ folder)
For the official 3D retargeting also (the release's extra models; FLAME needs a free licence from flame.is.tue.mpg.de):
- ComfyUI/models/diffusion_models/%(root)s/smirk/   SMIRK_em1.pt, l_eyelid.npy, r_eyelid.npy, mediapipe_landmark_embedding.npz
- ComfyUI/models/diffusion_models/%(root)s/FLAME/   generic_model.pkl (head_template.obj optional)
Without smirk/ and FLAME/ the driver uses its 2D retargeting (retarget auto). Nothing is downloaded at run time.

The driver resamples the driving video to 12 fps (the official rule), draws frame 0 from the portrait's own landmarks and one frame per
driving frame; check its preview output. The sampler makes one frame per driving frame (49-frame windows with overlap 8 for long videos),
and Save Video keeps the driving video's sound. Example inputs: NASA's astronaut portrait (public domain, from scikit-image) and a
clip made from it.

Official settings: 720x480 (the released model runs only at this size), 10 steps, cfg 3, seed 43.
Headless: python . run workflows/skyreels_a1_drive_from_video.json --models ComfyUI/models""" % {
    "a1": A1_DIR, "det": DETECTOR, "root": A1_ROOT}


def drive_from_video() -> list:
    # the loaders; the portrait and the driving video side by side with them; face encode, the
    # landmark driver (and the Note); the sampler; save
    # (columns 400 apart: the editor draws the face encoder loader about 380 wide; the driver loader, ~460
    # wide, sits below the media column's end)
    return [
        Node(1, "SkyReelsA1Loader", (40, 40), {"model": A1_MODELS["a1_transformer"][1]}),
        Node(2, "SkyReelsCogVideoXVAELoader", (40, 300), {"model": A1_MODELS["a1_vae"][1], "tiled": True},
             title="A1 VAE"),
        Node(3, "SkyReelsCogVideoXVAELoader", (40, 490), {"model": A1_MODELS["a1_pose_guider"][1], "tiled": False},
             title="A1 pose guider"),
        Node(4, "SkyReelsA1FaceEncoderLoader", (40, 680),
             {"siglip": A1_MODELS["a1_siglip"][1], "face_detector": DETECTOR}),
        Node(5, "SkyReelsLoadImage", (460, 40), {"image": PORTRAIT}, title="Portrait"),
        Node(6, "SkyReelsLoadVideo", (460, 430), {"video": DRIVING}, title="Driving video"),
        Node(7, "SkyReelsA1DriverLoader", (40, 930), {"face_landmarker": LANDMARKER, "models_3d": "auto"}),
        Node(8, "SkyReelsA1LandmarkDriver", (860, 160),
             {"retarget": "auto", "pose_smoothing": 0.3, "expression_strength": 1.0, "head_pose_strength": 1.0,
              "hold_frames": 3, "width": 720, "height": 480},
             {"driver": (7, 0), "portrait": (5, 0), "driving_video": (6, 0), "driving_fps": (6, 1)}),
        Node(10, "SkyReelsA1FaceEncode", (860, 40), {}, {"face_encoder": (4, 0), "portrait": (5, 0)}),
        Node(11, "SkyReelsA1Sampler", (1260, 40),
             {"width": 720, "height": 480, "seed": 43, "steps": 10, "cfg": 3.0},
             {"model": (1, 0), "vae": (2, 0), "pose_guider": (3, 0), "portrait": (5, 0), "control_video": (8, 0),
              "face_embedding": (10, 0)}),
        Node(12, "SkyReelsSaveVideo", (1660, 40), {"fps": 12.0, "filename_prefix": "SkyReels/a1_driven"},
             {"images": (11, 0), "audio": (6, 2)}),
        Note(90, (860, 500), NOTE),
    ]


# The CPU-sized smoke run (besides width=128, height=96, steps=3): the demo models hold a real
# face landmarker (copied from the shared test models) and SMIRK / FLAME stand-ins; the smoke
# run takes the 2D path (the 3D path through SMIRK costs more CPU and has its own test); the
# VAE runs untiled.  The 3 s clip at 24 fps gives 36 driving frames at 12 fps: one window, 36
# output frames.
SMOKE = {
    "skyreels_a1_drive_from_video.json": (["tiled=false", 'retarget="2d"'], 36, 12.0),
}

SHIPPED = {
    "skyreels_a1_drive_from_video.json": drive_from_video,
}
