"""The SkyReels-A1 landmark-driver workflow shipped in ``workflows/``: a portrait and a driving video
of a face -> the landmark driver -> the A1 sampler -> an mp4 with the driving video's sound."""
from __future__ import annotations

A1_ROOT = "SkyReels-A1"
LANDMARKER = A1_ROOT + "/mediapipe/face_landmarker_v2_with_blendshapes.task"

MODELS = {
    "a1_landmarker": ("diffusion_models", LANDMARKER),
    "a1_smirk": ("diffusion_models", A1_ROOT + "/smirk/SMIRK_em1.pt"),
    "a1_flame": ("diffusion_models", A1_ROOT + "/FLAME/generic_model.pkl"),
}
SHIPPED = {}
SMOKE = {}
