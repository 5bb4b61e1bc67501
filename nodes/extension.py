"""SkyReels-V3 video extension: continue a video as one shot, or cut to a new shot, and the
cut tag of shot-switching prompts.  The engine is :mod:`sampling.extension_video`."""
from __future__ import annotations

import torch

from .. import host
from ..media.aspect_buckets import RESOLUTIONS
from ..models.text.cut_tags import CUT_TAGS, NO_TAG, with_cut_tag
from ..sampling import conditioning as cond
from ..sampling.chunk_store import CollectFrames
from ..sampling.extension_plan import SHOT_CONDITION_FRAMES, SHOT_SWITCH, SINGLE_SHOT
from ..sampling.extension_video import ExtensionConditioning, ExtensionSettings, extend_video, plan_and_input
from ..sampling.video_codec import VideoCodec
from . import handles
from .base import CONDITIONING, MAX_RESOLUTION, SAMPLING, NodeError, seed_input
from .model_session import dit_session

_EXPECTED = {SINGLE_SHOT: ("v3_extend", "transformer/"), SHOT_SWITCH: ("v3_shot", "shot_transformer/")}


def _common_inputs(model_tip: str, duration) -> dict:
    return {
        "model": (handles.DIT, {"tooltip": model_tip}),
        "vae": (handles.VAE, {"tooltip": "The Wan2.1 VAE (encodes the last frames of the video, decodes the new "
                                         "ones)."}),
        "positive": ("CONDITIONING", {"tooltip": "What happens next."}),
        "video": ("IMAGE", {"tooltip": "The video to continue (any size; it is resized to the working size)."}),
        "duration": duration,
        "resolution": (list(RESOLUTIONS), {
            "default": "720P",
            "tooltip": "Size class. The working size is the official bucket of the video's aspect at this "
                       "resolution (720P 16:9 = 1280x720, 480P 16:9 = 848x480), unless width and height are set."}),
        "width": ("INT", {"default": 0, "min": 0, "max": MAX_RESOLUTION, "step": 16,
                          "tooltip": "Working width, a multiple of 16; 0 = the official bucket (see resolution)."}),
        "height": ("INT", {"default": 0, "min": 0, "max": MAX_RESOLUTION, "step": 16,
                           "tooltip": "Working height, a multiple of 16; 0 = the official bucket."}),
        "seed": seed_input(),
        "steps": ("INT", {"default": 8, "min": 1, "max": 200,
                          "tooltip": "Denoising steps per piece (official 8; the model is step-distilled)."}),
        "shift": ("FLOAT", {"default": 8.0, "min": 0.0, "max": 100.0, "step": 0.1,
                            "tooltip": "Sigma shift (official 8)."}),
        "cfg": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 30.0, "step": 0.1,
                          "tooltip": "Guidance scale. The released model is guidance-distilled: 1 (official) runs one "
                                     "pass and ignores the negative prompt; above 1 runs two passes."}),
    }


_OPTIONAL = {
    "negative": ("CONDITIONING", {"tooltip": "Negative prompt, used only with cfg above 1 (official: empty)."}),
    "chunk_folder": ("STRING", {
        "default": "",
        "tooltip": "Folder where each finished piece is saved as it is made. After a crash or a cancel, running again "
                   "with the same settings resumes from the saved pieces. Relative paths are inside ComfyUI's output "
                   "folder. Empty = off."}),
}


class _V3Extension:
    MODE = SINGLE_SHOT
    CATEGORY = SAMPLING
    RETURN_TYPES = ("IMAGE", "IMAGE")
    RETURN_NAMES = ("new_frames", "video")
    OUTPUT_TOOLTIPS = ("Only the new frames, at the working size.",
                       "The input video (at the working size) followed by the new frames: connect it to the next "
                       "extension to chain shots.")
    FUNCTION = "extend"

    @classmethod
    def VALIDATE_INPUTS(cls, width=None, height=None, chunk_folder=None, **_):
        if (chunk_folder or "").strip():
            try:
                host.check_output_dir(chunk_folder, "chunk_folder")
            except host.PathError as e:
                return str(e)
        if width is None or height is None:
            return True
        if bool(width) != bool(height):
            return "set both width and height, or leave both at 0 (the official bucket)"
        bad = [("width", width), ("height", height)] if width else []
        bad = ["%s %d is not a multiple of 16" % (n, v) for n, v in bad if v % 16]
        return "; ".join(bad) if bad else True

    def extend(self, model, vae, positive, video, duration, resolution, width, height, seed, steps, shift, cfg,
               negative=None, chunk_folder=""):
        settings = ExtensionSettings(mode=self.MODE, duration=int(duration), resolution=resolution, width=int(width),
                                     height=int(height), steps=int(steps), shift=float(shift), guidance=float(cfg),
                                     seed=int(seed))
        config = model.config
        _check_model(model, self.MODE)
        try:
            plan, inp = plan_and_input(settings, video)
        except ValueError as e:
            raise NodeError(str(e)) from e
        host.log("%s at %dx%d" % (plan.describe(), inp.width, inp.height))
        prompts = cond.model_inputs(positive, config.text_dim, config.text_len, "positive")
        neg = cond.model_inputs(negative, config.text_dim, config.text_len, "negative")[0] if negative else None
        if settings.guidance > 1 and neg is None:
            host.log("cfg %g needs a negative prompt (connect one; official: an empty prompt); running one pass"
                     % settings.guidance)
        folder = (chunk_folder or "").strip()
        if folder:  # inside the output folder only (host.resolve_output_dir refuses '..', paths elsewhere, links out)
            try:
                folder = host.resolve_output_dir(folder, create=True, what="chunk_folder")
            except host.PathError as e:
                raise NodeError(str(e)) from e
        sink = CollectFrames()
        with dit_session(model, (plan.max_model_frames, inp.height // 8, inp.width // 8)) as dit:
            device = dit.device
            vae.vae.to(device)
            try:
                res = extend_video(dit, VideoCodec(vae.vae, device, vae.tile), settings,
                                   ExtensionConditioning(video, prompts, neg), sink, chunk_dir=folder or None)
            finally:
                vae.vae.to(host.offload_device())
        new = sink.images()
        return (new, torch.cat([res.input.video, new], dim=0))


def _check_model(handle, mode: str) -> None:
    cfg = handle.config
    if cfg.image_dim or cfg.in_dim != 16:
        raise NodeError("%s is an image-to-video model; V3 extension needs the SkyReels-V3-V2V-14B transformers"
                        % handle.name)
    variant, folder = _EXPECTED[mode]
    if cfg.variant != variant:
        host.log("%s is not marked as %s; this node expects SkyReels-V3-V2V-14B/%s (or set variant %s on the loader)"
                 % (handle.name, variant, folder, variant))


class V3ExtendVideo(_V3Extension):
    DESCRIPTION = ("SkyReels-V3 single-shot video extension: continues a video as one continuous shot (5-30 s, "
                   "longer works), in pieces of up to 5 s, each from the last 25 frames of the one before. Official "
                   "defaults: 8 steps, shift 8, guidance 1. Durations are approximate: 3 s and 4 s both give 100 "
                   "frames (see the README).")
    MODE = SINGLE_SHOT

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": _common_inputs(
                "The single-shot transformer: SkyReels-V3-V2V-14B/transformer.",
                ("INT", {"default": 5, "min": 1, "max": 600,
                         "tooltip": "Seconds to add (official 5-30). Made in pieces of 5 s; each piece is rounded so "
                                    "that the latent length suits the model, so the result is close to, not exactly, "
                                    "24 frames per second asked (5 s = 132 frames, 10 s = 264)."})),
            "optional": dict(_OPTIONAL),
        }


class V3ShotSwitch(_V3Extension):
    DESCRIPTION = ("SkyReels-V3 shot switching: continues a video with a cut to a new shot of the same scene "
                   "(cut-in, cut-out, reverse shot, ...), 2-5 s = 24 d + 1 frames. Start the prompt with a cut tag "
                   "(SkyReels V3 Cut Prompt). Official defaults: 8 steps, shift 8, guidance 1.")
    MODE = SHOT_SWITCH

    @classmethod
    def INPUT_TYPES(cls):
        frames = ", ".join("%d s: %d" % kv for kv in SHOT_CONDITION_FRAMES.items())
        return {
            "required": _common_inputs(
                "The shot-switching transformer: SkyReels-V3-V2V-14B/shot_transformer.",
                ("INT", {"default": 5, "min": 2, "max": 5,
                         "tooltip": "Seconds of the new shot: 2-5 (24 d + 1 frames). Longer shots see more of the "
                                    "video: the last frames used are %s." % frames})),
            "optional": dict(_OPTIONAL),
        }


class V3CutPrompt:
    DESCRIPTION = ("Starts a SkyReels-V3 shot-switching prompt with its cut tag ([ZOOM_IN_CUT], [ZOOM_OUT_CUT], ...). "
                   "Connect the text to the prompt input of SkyReels Text Encode.")
    CATEGORY = CONDITIONING
    RETURN_TYPES = ("STRING",)
    RETURN_NAMES = ("prompt",)
    OUTPUT_TOOLTIPS = ("The prompt with the cut tag in front.",)
    FUNCTION = "make"

    @classmethod
    def INPUT_TYPES(cls):
        kinds = "; ".join("%s %s" % kv for kv in CUT_TAGS.items())
        return {
            "required": {
                "cut_type": (list(CUT_TAGS) + [NO_TAG], {
                    "default": "[ZOOM_IN_CUT]",
                    "tooltip": "The kind of cut: %s. none leaves the prompt as written." % kinds}),
                "prompt": ("STRING", {
                    "multiline": True, "default": "",
                    "tooltip": "The new shot: what the camera now shows and what happens (a tag already at the start "
                               "is replaced)."}),
            },
        }

    def make(self, cut_type, prompt):
        try:
            return (with_cut_tag(prompt, cut_type),)
        except ValueError as e:
            raise NodeError(str(e)) from e


NODES = [
    ("SkyReelsV3ExtendVideo", V3ExtendVideo, "SkyReels V3 Extend Video (single shot)"),
    ("SkyReelsV3ShotSwitch", V3ShotSwitch, "SkyReels V3 Shot Switch (cut to a new shot)"),
    ("SkyReelsV3CutPrompt", V3CutPrompt, "SkyReels V3 Cut Prompt"),
]
