"""The SkyReels-V3 video-extension workflows shipped in ``workflows/``: single-shot extension
(10 s), shot switching (5 s) and a chain of both (extend, cut, extend).

Defaults are the official ones (spec sections 8.3-8.4): 720P buckets, 8 steps, shift 8,
guidance 1, empty negative prompt, seed 42, 24 fps.
"""
from __future__ import annotations

from typing import List

from ..workflow_builder import Node, Note
from .wan_v2 import MODELS as V2_MODELS

# The video-extension repo (Skywork/SkyReels-V3-V2V-14B) holds both transformers side by side.
MODELS = {
    "v3_extend": ("diffusion_models", "SkyReels-V3-V2V-14B/transformer"),
    "v3_shot": ("diffusion_models", "SkyReels-V3-V2V-14B/shot_transformer"),
}
TEXT = V2_MODELS["text"]
VAE = V2_MODELS["vae"]
EXAMPLE_VIDEO = "skyreels_v3_example_clip.mp4"

EXTEND_PROMPT = ("A calm lake at dawn, mist drifting over the water. The small wooden boat drifts slowly to the right "
                 "while the sun climbs above the mountains and the light turns golden.")
CUT_PROMPT = ("The scene cuts from a wide shot of the lake to a close-up of the small wooden boat rocking on the "
              "water, ripples catching the golden morning light, the mountains soft and blurred behind it.")
AFTER_CUT_PROMPT = ("Close-up of the small wooden boat rocking gently on the water; the ripples glitter in the "
                    "morning sun and a light breeze moves the mist.")

SAMPLER = {"resolution": "720P", "width": 0, "height": 0, "seed": 42, "steps": 8, "shift": 8.0, "cfg": 1.0}


def _note(keys: List[str], text: str) -> str:
    lines = [text, "", "Model files (pick them in the loaders):", ""]
    where = {
        "v3_extend": "the transformer/ folder of Skywork/SkyReels-V3-V2V-14B (config.json + safetensors); keep the "
                     "repo folder whole, the loader lists SkyReels-V3-V2V-14B/transformer",
        "v3_shot": "the shot_transformer/ folder of the same repo (SkyReels-V3-V2V-14B/shot_transformer)",
    }
    for k in keys:
        folder, name = MODELS[k]
        lines.append("- ComfyUI/models/%s/%s\n  %s" % (folder, name, where[k]))
    lines.append("- ComfyUI/models/%s/%s (or the official models_t5_umt5-xxl-enc-bf16.pth)" % TEXT)
    lines.append("- ComfyUI/models/%s/%s (or the official Wan2.1_VAE.pth)" % VAE)
    lines += ["", "Low on VRAM? Set vram_budget_gb on the DiT loader (e.g. 10 on a 16 GB card) and weight_dtype "
                  "fp8_e4m3fn; set tile_size 256 on the VAE loader; or choose resolution 540P / 480P. Only one "
                  "transformer is on the GPU at a time.",
              "Put the example clip (workflows/inputs/%s) in ComfyUI/input." % EXAMPLE_VIDEO,
              "Headless: python . run workflows/<this file> --models ComfyUI/models"]
    return "\n".join(lines)


def _dit(nid: int, key: str, y: int, title: str) -> Node:
    return Node(nid, "SkyReelsDiTLoader", (40, y), {"model": MODELS[key][1], "variant": key}, title=title)


def _common(y: int = 0) -> list:
    return [
        Node(2, "SkyReelsTextEncoderLoader", (40, y + 300), {"model": TEXT[1]}),
        Node(3, "SkyReelsVAELoader", (40, y + 480), {"model": VAE[1]}),
        Node(5, "SkyReelsLoadVideo", (40, y + 680), {"video": EXAMPLE_VIDEO}),
    ]


def _encode(nid: int, pos, prompt: str = "", link=None, title=None) -> Node:
    links = {"text_encoder": (2, 0)}
    if link is not None:
        links["prompt"] = link
    return Node(nid, "SkyReelsTextEncode", pos, {"prompt": prompt, "negative_prompt": ""}, links, title=title)


def extend() -> list:
    return [_dit(1, "v3_extend", 40, "V3 single-shot transformer")] + _common() + [
        _encode(10, (420, 40), EXTEND_PROMPT),
        Node(12, "SkyReelsV3ExtendVideo", (800, 40), dict(SAMPLER, duration=10),
             {"model": (1, 0), "vae": (3, 0), "positive": (10, 0), "video": (5, 0)}, title="Extend 10 s"),
        Node(13, "SkyReelsSaveVideo", (1180, 40), {"fps": 24.0, "filename_prefix": "SkyReels/v3_extend"},
             {"images": (12, 1)}),
        Note(90, (1540, 40), _note(["v3_extend"], (
            "SkyReels-V3 single-shot extension: the clip goes on as one continuous shot for 10 s (two pieces of "
            "5 s, 264 new frames at 24 fps), each piece continuing from the last 25 frames made. Official defaults: "
            "720P bucket of the clip's aspect, 8 steps, shift 8, guidance 1, empty negative prompt. The saved "
            "video is the clip followed by the new frames; 'new_frames' has the new part alone. Durations are "
            "approximate (3 s and 4 s both give 100 frames; see the README)."))),
    ]


def shot_switch() -> list:
    return [_dit(1, "v3_shot", 40, "V3 shot-switching transformer")] + _common() + [
        Node(9, "SkyReelsV3CutPrompt", (420, 40), {"cut_type": "[ZOOM_IN_CUT]", "prompt": CUT_PROMPT}),
        _encode(10, (420, 380), link=(9, 0)),
        Node(12, "SkyReelsV3ShotSwitch", (800, 40), dict(SAMPLER, duration=5),
             {"model": (1, 0), "vae": (3, 0), "positive": (10, 0), "video": (5, 0)}, title="Cut to a close-up, 5 s"),
        Node(13, "SkyReelsSaveVideo", (1180, 40), {"fps": 24.0, "filename_prefix": "SkyReels/v3_shot_switch"},
             {"images": (12, 1)}),
        Note(90, (1540, 40), _note(["v3_shot"], (
            "SkyReels-V3 shot switching: the clip cuts to a new shot of the same scene, 5 s (121 frames). The cut "
            "tag in front of the prompt says which cut: [ZOOM_IN_CUT] cut-in, [ZOOM_OUT_CUT] cut-out, "
            "[SHOT_REVERSE_SHOT], [MULTI_ANGLE], [CUT_AWAY]. The model sees the last 33 frames of the clip (9 / 17 / "
            "25 for 2 / 3 / 4 s). Official defaults: 8 steps, shift 8, guidance 1."))),
    ]


def extend_cut_extend() -> list:
    # one column per step, left to right: the loaders; the clip and shot 1's prompt; extend, with the
    # cut's prompt below; cut, with shot 2's prompt below; extend the new shot, with the Note; save
    return [_dit(1, "v3_extend", 40, "V3 single-shot transformer"),
            _dit(4, "v3_shot", 320, "V3 shot-switching transformer"),
            Node(2, "SkyReelsTextEncoderLoader", (40, 600), {"model": TEXT[1]}),
            Node(3, "SkyReelsVAELoader", (40, 784), {"model": VAE[1]}),
            Node(5, "SkyReelsLoadVideo", (420, 40), {"video": EXAMPLE_VIDEO}),
            _encode(10, (420, 540), EXTEND_PROMPT, title="Shot 1 continues"),
            Node(9, "SkyReelsV3CutPrompt", (800, 460), {"cut_type": "[ZOOM_IN_CUT]", "prompt": CUT_PROMPT}),
            _encode(11, (800, 660), link=(9, 0), title="Shot 2"),
            _encode(14, (1180, 460), AFTER_CUT_PROMPT, title="Shot 2 continues"),
            Node(12, "SkyReelsV3ExtendVideo", (800, 40), dict(SAMPLER, duration=5),
                 {"model": (1, 0), "vae": (3, 0), "positive": (10, 0), "video": (5, 0)}, title="Extend 5 s"),
            Node(15, "SkyReelsV3ShotSwitch", (1180, 40), dict(SAMPLER, duration=5),
                 {"model": (4, 0), "vae": (3, 0), "positive": (11, 0), "video": (12, 1)}, title="Cut, 5 s"),
            Node(16, "SkyReelsV3ExtendVideo", (1560, 40), dict(SAMPLER, duration=5),
                 {"model": (1, 0), "vae": (3, 0), "positive": (14, 0), "video": (15, 1)},
                 title="Extend the new shot 5 s"),
            Node(17, "SkyReelsSaveVideo", (1940, 40), {"fps": 24.0, "filename_prefix": "SkyReels/v3_extend_cut_extend"},
                 {"images": (16, 1)}),
            Note(90, (1560, 460), _note(["v3_extend", "v3_shot"], (
                "A short sequence from one clip: the shot goes on for 5 s (132 frames), cuts to a close-up (5 s, 121 "
                "frames), and the close-up goes on for 5 s (132 frames). Each step takes the whole video so far and "
                "returns it with its new frames. The two 14B transformers take turns on the GPU: each is released "
                "when its step ends."))),
            ]


SHIPPED = {
    "skyreels_v3_extend.json": extend,
    "skyreels_v3_shot_switch.json": shot_switch,
    "skyreels_v3_extend_cut_extend.json": extend_cut_extend,
}

# The example clip has 49 frames.  Extension: 1 s = 36 new frames; shot switching: 2 s = 49.
SMOKE = {
    "skyreels_v3_extend.json": (["duration=1"], 49 + 36),
    "skyreels_v3_shot_switch.json": (["duration=2"], 49 + 49),
    "skyreels_v3_extend_cut_extend.json": (["SkyReelsV3ExtendVideo.duration=1", "SkyReelsV3ShotSwitch.duration=2"],
                                           49 + 36 + 49 + 36),
}
