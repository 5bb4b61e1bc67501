"""Conditioning nodes: text, CLIP image tokens, image-to-video channels, empty latents."""
from __future__ import annotations

import torch

from ..models.placement import on_device
from ..models.wan import latent_space
from ..sampling import conditioning as cond
from . import handles
from .base import CONDITIONING, NodeError, size_inputs
from .validation import check_size

DEFAULT_NEGATIVE_HINT = "(the official SkyReels-V2 negative prompt)"


def _default_negative() -> str:
    from ..models.text.prompt import NEGATIVE_PROMPT_V2

    return NEGATIVE_PROMPT_V2


class TextEncode:
    DESCRIPTION = ("Encodes a prompt and a negative prompt with umT5. Separate prompts for successive "
                   "diffusion-forcing chunks with '|'.")
    CATEGORY = CONDITIONING
    RETURN_TYPES = ("CONDITIONING", "CONDITIONING")
    RETURN_NAMES = ("positive", "negative")
    OUTPUT_TOOLTIPS = ("The prompt (one entry per chunk when split with '|').", "The negative prompt.")
    FUNCTION = "encode"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "text_encoder": (handles.TEXT_ENCODER, {"tooltip": "From the SkyReels text encoder loader."}),
                "prompt": ("STRING", {
                    "multiline": True, "default": "",
                    "tooltip": "What the video shows. For long diffusion-forcing videos, 'first part | second part | ...' "
                               "gives each chunk its own prompt (the last one repeats)."}),
                "negative_prompt": ("STRING", {
                    "multiline": True, "default": _default_negative(),
                    "tooltip": "What to avoid. The default is the official SkyReels-V2 negative prompt."}),
            },
        }

    def encode(self, text_encoder, prompt, negative_prompt):
        parts = [p.strip() for p in prompt.split("|")] if "|" in prompt else [prompt]
        if any(not p for p in parts) and len(parts) > 1:
            raise NodeError("an empty prompt between '|' separators; write a prompt for every chunk")
        enc = text_encoder.encoder

        def encode(texts):
            with on_device(enc.model):
                return enc.encode(list(texts)).float().cpu()

        # The first part and the negative now; the later parts only when a sampler needs them
        # (a diffusion-forcing video uses one part per chunk, and may have fewer chunks).
        ctx = encode([parts[0], negative_prompt])
        more = cond.PromptParts(encode, parts[1:]) if len(parts) > 1 else None
        positive = cond.make_conditioning([ctx[:1]], more)
        negative = cond.make_conditioning([ctx[1:]])
        return (positive, negative)


class CLIPVisionEncode:
    DESCRIPTION = ("CLIP ViT-H image tokens (penultimate layer, 257 per image) for image-to-video. Several images "
                   "give several token sets one after the other (SkyReels-A2 references).")
    CATEGORY = CONDITIONING
    RETURN_TYPES = ("CLIP_VISION_OUTPUT",)
    RETURN_NAMES = ("clip_vision_output",)
    OUTPUT_TOOLTIPS = ("Image tokens; also accepted by ComfyUI's own Wan nodes.",)
    FUNCTION = "encode"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "clip_vision": (handles.CLIP_VISION, {"tooltip": "From the SkyReels CLIP vision loader."}),
                "image": ("IMAGE", {"tooltip": "The start image (or several reference images)."}),
            },
        }

    def encode(self, clip_vision, image):
        enc = clip_vision.encoder
        with on_device(enc.model):
            tokens = enc.encode(image)
        tokens = tokens.float().cpu()
        joined = tokens.reshape(1, -1, tokens.shape[-1])  # several images -> one sequence of 257 k tokens
        return (cond.ClipVisionOutput(joined),)


class ImageToVideo:
    DESCRIPTION = ("Image-to-video conditioning for SkyReels-V2-I2V: the start image is cropped to the video's "
                   "aspect, resized, encoded with the VAE and attached to the conditioning with its CLIP tokens.")
    CATEGORY = CONDITIONING
    RETURN_TYPES = ("CONDITIONING", "CONDITIONING", "LATENT")
    RETURN_NAMES = ("positive", "negative", "latent")
    OUTPUT_TOOLTIPS = ("Positive with the image channels.", "Negative with the image channels.",
                       "An empty latent of the video's size for the sampler.")
    FUNCTION = "encode"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "positive": ("CONDITIONING", {"tooltip": "From a text encode node."}),
                "negative": ("CONDITIONING", {"tooltip": "From a text encode node."}),
                "vae": (handles.VAE, {"tooltip": "The Wan2.1 VAE."}),
                "start_image": ("IMAGE", {"tooltip": "The first frame of the video."}),
                **size_inputs(960, 544, 97),
                "auto_orient": ("BOOLEAN", {
                    "default": True,
                    "tooltip": "Swap width and height when the image is portrait and the size landscape (official rule)."}),
            },
            "optional": {
                "clip_vision_output": ("CLIP_VISION_OUTPUT", {
                    "tooltip": "CLIP tokens of the start image (needed by the I2V models)."}),
            },
        }

    @classmethod
    def VALIDATE_INPUTS(cls, width=None, height=None, num_frames=None, **_):
        return check_size(width, height, num_frames)

    def encode(self, positive, negative, vae, start_image, width, height, num_frames, auto_orient,
               clip_vision_output=None):
        from ..media.frames import center_crop_resize, orient_like

        if auto_orient:
            width, height = orient_like(width, height, start_image)
        image = center_crop_resize(start_image[:1], width, height)
        # [image, grey (0 in [-1, 1]) frames] through the VAE, as the official pipeline does
        video = torch.full((num_frames, height, width, 3), 0.5)
        video[0] = image[0, :, :, :3]
        from ..sampling.video_codec import VideoCodec

        with on_device(vae.vae) as dev:
            z = VideoCodec(vae.vae, dev, vae.tile).encode(video)
        raw = latent_space.denormalize(z).cpu()
        F, h, w = raw.shape[2:]
        mask = torch.ones(1, 1, F, h, w)
        mask[:, :, 0] = 0.0
        values = {"concat_latent_image": raw, "concat_mask": mask}
        if clip_vision_output is not None:
            values["clip_vision_output"] = clip_vision_output
        latent = {"samples": torch.zeros(latent_space.latent_shape(width, height, num_frames))}
        return (cond.set_values(positive, values), cond.set_values(negative, values), latent)


class EmptyLatent:
    DESCRIPTION = "An empty Wan latent of a video size, for text-to-video."
    CATEGORY = CONDITIONING
    RETURN_TYPES = ("LATENT",)
    RETURN_NAMES = ("latent",)
    OUTPUT_TOOLTIPS = ("Zeros of shape [batch, 16, (frames-1)/4+1, height/8, width/8].",)
    FUNCTION = "make"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                **size_inputs(960, 544, 97),
                "batch_size": ("INT", {"default": 1, "min": 1, "max": 64, "tooltip": "Videos made at once."}),
            },
        }

    @classmethod
    def VALIDATE_INPUTS(cls, width=None, height=None, num_frames=None, **_):
        return check_size(width, height, num_frames)

    def make(self, width, height, num_frames, batch_size):
        return ({"samples": torch.zeros(latent_space.latent_shape(width, height, num_frames, batch_size))},)


NODES = [
    ("SkyReelsTextEncode", TextEncode, "SkyReels Text Encode"),
    ("SkyReelsCLIPVisionEncode", CLIPVisionEncode, "SkyReels CLIP Vision Encode"),
    ("SkyReelsImageToVideo", ImageToVideo, "SkyReels Image to Video"),
    ("SkyReelsEmptyLatent", EmptyLatent, "SkyReels Empty Video Latent"),
]
