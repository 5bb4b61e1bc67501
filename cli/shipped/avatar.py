"""The SkyReels-V3 talking-avatar workflow shipped in ``workflows/``.

Official settings: the released (distilled) preset, 4 steps, shift 11, no guidance; windows of
81 frames, 5 motion frames, 12 dropped; 25 fps; 720P buckets; the connection prompt "a person
is talking" for the windows after the keyframe pass.
"""
from __future__ import annotations

from ...sampling.avatar_video import CONNECTION_PROMPT as CONNECTION
from ...sampling.avatar_video import NEGATIVE_PROMPT
from ..workflow_builder import Node, Note
from . import avatar_inputs
from .wan_v2 import MODELS as WAN_MODELS

MODELS = {
    "a2v": ("diffusion_models", "SkyReels-V3-A2V-19B"),
    "wav2vec2": ("audio_encoders", "chinese-wav2vec2-base"),
}
PROMPT = ("A young woman with short dark hair, wearing a navy top, talks to the camera in a bright room, with "
          "natural facial expressions and small head movements.")


def _note() -> str:
    lines = [
        "SkyReels-V3 talking avatar: a portrait and a voice in, a lip-synced 25 fps video as long as the audio out.",
        "",
        "Inputs (copy workflows/inputs/* into ComfyUI/input): %s (a drawn portrait) and %s (8 s of synthetic "
        "speech-like sound: the keyframe pass and 3 windows of 81 frames). Use your own portrait and voice "
        "(wav, mp3, flac, m4a; up to 200 s; core Load Audio works too)."
        % (avatar_inputs.PORTRAIT, avatar_inputs.VOICE),
        "",
        "Model files (pick them in the loaders):",
        "- ComfyUI/models/diffusion_models/%s\n  the whole Skywork SkyReels-V3 talking-avatar (A2V, 19B) folder: "
        "config.json + shards, or a single file (fp8 works)" % MODELS["a2v"][1],
        "- ComfyUI/models/audio_encoders/%s\n  the TencentGameMate/chinese-wav2vec2-base folder (config.json, "
        "preprocessor_config.json, pytorch_model.bin)" % MODELS["wav2vec2"][1],
        "- ComfyUI/models/text_encoders/%s (umT5-XXL)" % WAN_MODELS["text"][1],
        "- ComfyUI/models/clip_vision/%s (CLIP ViT-H)" % WAN_MODELS["clip"][1],
        "- ComfyUI/models/vae/%s (Wan2.1 VAE)" % WAN_MODELS["vae"][1],
        "",
        "Preset distilled = the released setting (4 steps, 1 model call per step); full = 40 steps with text and "
        "audio guidance. Later windows use the connection prompt ('%s') and CLIP of their first frame, as the "
        "official pipeline (later_windows = official)." % CONNECTION,
        "Low on VRAM? resolution 480P, vram_budget_gb on the DiT loader, weight_dtype fp8_e4m3fn, tile_size 256 on "
        "the VAE loader. Long audio: set chunk_folder in the options to resume after a cancel.",
        "Headless: python . run workflows/skyreels_v3_talking_avatar.json --models ComfyUI/models",
    ]
    return "\n".join(lines)


def talking_avatar() -> list:
    return [
        Node(1, "SkyReelsDiTLoader", (40, 40), {"model": MODELS["a2v"][1]}),
        Node(2, "SkyReelsTextEncoderLoader", (40, 300), {"model": WAN_MODELS["text"][1]}),
        Node(3, "SkyReelsVAELoader", (40, 480), {"model": WAN_MODELS["vae"][1]}),
        Node(4, "SkyReelsCLIPVisionLoader", (40, 680), {"model": WAN_MODELS["clip"][1]}),
        Node(5, "SkyReelsAudioEncoderLoader", (40, 820), {"model": MODELS["wav2vec2"][1]}),
        Node(6, "SkyReelsLoadImage", (40, 980), {"image": avatar_inputs.PORTRAIT}, title="Portrait"),
        Node(7, "SkyReelsLoadAudio", (420, 820), {"audio": avatar_inputs.VOICE}, title="Voice"),
        Node(8, "SkyReelsAudioEncode", (420, 1000), {}, {"audio_encoder": (5, 0), "audio": (7, 0)}),
        Node(10, "SkyReelsTextEncode", (420, 40), {"prompt": PROMPT, "negative_prompt": NEGATIVE_PROMPT},
             {"text_encoder": (2, 0)}),
        Node(11, "SkyReelsTextEncode", (420, 420), {"prompt": CONNECTION}, {"text_encoder": (2, 0)},
             title="Connection prompt (later windows)"),
        Node(12, "SkyReelsTalkingAvatarOptions", (800, 520), {}),
        Node(13, "SkyReelsTalkingAvatarSampler", (800, 40), {"preset": "distilled", "resolution": "720P"},
             {"model": (1, 0), "vae": (3, 0), "clip_vision": (4, 0), "positive": (10, 0), "negative": (10, 1),
              "portrait": (6, 0), "audio_features": (8, 0), "connection": (11, 0), "options": (12, 0)}),
        Node(14, "SkyReelsSaveVideo", (1180, 40), {"fps": 25.0, "filename_prefix": "SkyReels/avatar"},
             {"images": (13, 0), "audio": (13, 1), "fps": (13, 2)}),
        Note(90, (1540, 40), _note(), size=(520, 520)),
    ]


# the CPU-sized smoke run (besides width=128, height=96, steps=3 on the options node): windows of
# 17 frames (5 motion, 4 dropped: stride 8) over the first 33 frames of the example voice, i.e. the
# keyframe pass and 3 windows; 25 fps.  (The shipped 81-frame windows over the whole 8 s voice are
# also 3 windows, at about 5x the VAE work.)
SMOKE = {"skyreels_v3_talking_avatar.json": (
    ["frames_per_window=17", "motion_frames=5", "drop_frames=4", "max_frames=33"], 33, 25.0)}

SHIPPED = {"skyreels_v3_talking_avatar.json": talking_avatar}
