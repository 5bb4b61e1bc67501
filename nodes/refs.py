"""The reference injector family: reference images into the conditioning of SkyReels-A2 and V3 R2V.

Both nodes take the prompt's positive / negative CONDITIONING, the VAE and core IMAGE
references, and return the conditioning with the references attached plus an empty latent
of the video's size, for the SkyReels Sampler:

* A2 elements: the I2V channels and the CLIP tokens, under the names core Wan nodes use
  (``concat_latent_image``, ``concat_mask``, ``clip_vision_output``);
* V3 references: the reference latents on the time axis under core's Phantom name
  (``time_dim_concat``) and the image guidance of the three-pass R2V guidance.

The official code takes no masks with the references, so neither node does.
"""
from __future__ import annotations

from typing import List, Tuple

import torch

from .. import host
from ..models.placement import on_device
from ..models.refs import a2, encode, images, r2v
from ..models.wan import latent_space
from ..sampling import conditioning as cond
from . import handles
from .base import CONDITIONING, MEDIA, NodeError, seed_input, size_inputs
from .validation import check_size

_SEED_TIP = ("Seed of the VAE posterior samples the references are encoded as (the official pipelines encode "
             "samples, not means).")


def _frames(image, what: str) -> List:
    """The frames of an IMAGE input as uint8 arrays (each frame is one reference)."""
    if image is None:
        return []
    if not isinstance(image, torch.Tensor) or image.dim() not in (3, 4):
        raise NodeError("%s must be an IMAGE" % what)
    batch = image if image.dim() == 4 else image[None]
    return [images.to_uint8(batch[i]) for i in range(batch.shape[0])]


def _outputs(positive, negative, values: dict, width: int, height: int, num_frames: int):
    latent = {"samples": torch.zeros(latent_space.latent_shape(width, height, num_frames))}
    return (cond.set_values(positive, values), cond.set_values(negative, values), latent)


class A2Elements:
    DESCRIPTION = ("Reference injector for SkyReels-A2 (elements to video): a subject, an object and a background "
                   "become the first frames of the image-to-video conditioning and CLIP tokens, as the official "
                   "code builds them. One or two elements work too. Use a SkyReels-A2 model; the official video "
                   "starts with 12 frames showing the references, which the official demo drops.")
    CATEGORY = CONDITIONING
    RETURN_TYPES = ("CONDITIONING", "CONDITIONING", "LATENT")
    RETURN_NAMES = ("positive", "negative", "latent")
    OUTPUT_TOOLTIPS = ("Positive with the reference channels and CLIP tokens.",
                       "Negative with the same references (official: only the text differs).",
                       "An empty latent of the video's size for the sampler.")
    FUNCTION = "encode"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "positive": ("CONDITIONING", {"tooltip": "From a text encode node."}),
                "negative": ("CONDITIONING", {"tooltip": "From a text encode node."}),
                "vae": (handles.VAE, {"tooltip": "The Wan2.1 VAE."}),
                "clip_vision": (handles.CLIP_VISION, {"tooltip": "CLIP ViT-H (clip_vision_h, or the A2 folder's "
                                                                 "image_encoder)."}),
                **size_inputs(a2.WIDTH, a2.HEIGHT, a2.FRAMES,
                              "Number of frames, 4k+1 (official 81). The first 9 hold the references."),
                "seed": seed_input(_SEED_TIP),
            },
            "optional": {
                "subject_image": ("IMAGE", {"tooltip": "The main (human) subject; padded with white to the video's "
                                                       "aspect."}),
                "object_image": ("IMAGE", {"tooltip": "A second (non-human) subject or object; padded with white."}),
                "background_image": ("IMAGE", {"tooltip": "The scene; centre-cropped to the video's aspect."}),
            },
        }

    @classmethod
    def VALIDATE_INPUTS(cls, width=None, height=None, num_frames=None, **_):
        return check_size(width, height, num_frames)

    def encode(self, positive, negative, vae, clip_vision, width, height, num_frames, seed,
               subject_image=None, object_image=None, background_image=None):
        refs, roles = [], []
        for role, image in zip(a2.ROLES, (subject_image, object_image, background_image)):
            frames = _frames(image, role)
            if len(frames) > 1:
                raise NodeError("%s_image takes one image, got %d; use one image per element" % (role, len(frames)))
            refs += frames
            roles += [role] * len(frames)
        if not refs:
            raise NodeError("connect at least one element: a subject, an object or a background image")
        try:
            a2.layout(len(refs), num_frames)
        except ValueError as e:
            raise NodeError(str(e)) from None
        enc = clip_vision.encoder
        with on_device(enc.model):
            tokens = encode.a2_clip_tokens(enc, refs)
        with on_device(vae.vae):
            c = encode.a2_condition(vae.vae, refs, roles, width, height, num_frames, seed=seed, tile=vae.tile)
        host.log("SkyReels-A2: %s at %dx%d, %d frames (%d latent frames carry references), %d CLIP tokens"
                 % (" + ".join(roles), width, height, num_frames, len(refs), tokens.shape[1]))
        values = {"concat_latent_image": c.posterior.sample,          # raw VAE space, as core's
                  "concat_mask": 1.0 - c.mask[:, :1],                   # core: 0 where given
                  "clip_vision_output": cond.ClipVisionOutput(tokens)}
        return _outputs(positive, negative, values, width, height, num_frames)


class V3References:
    DESCRIPTION = ("Reference injector for SkyReels-V3 reference-to-video: 1 to 4 reference images (people, "
                   "objects, places) are letterboxed to the video size, encoded one by one and placed after the "
                   "video on the time axis, as the official pipeline does. The size comes from the first "
                   "reference's aspect (official buckets) unless resolution is 'custom'. Use the V3 R2V model.")
    CATEGORY = CONDITIONING
    RETURN_TYPES = ("CONDITIONING", "CONDITIONING", "LATENT")
    RETURN_NAMES = ("positive", "negative", "latent")
    OUTPUT_TOOLTIPS = ("Positive with the reference latents.",
                       "Negative with the same references (the sampler derives the no-reference pass itself).",
                       "An empty latent of the video's size for the sampler.")
    FUNCTION = "encode"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "positive": ("CONDITIONING", {"tooltip": "From a text encode node (official negative prompt: empty)."}),
                "negative": ("CONDITIONING", {"tooltip": "From a text encode node."}),
                "vae": (handles.VAE, {"tooltip": "The Wan2.1 VAE."}),
                "reference_1": ("IMAGE", {"tooltip": "The first reference; its aspect picks the video size. A batch "
                                                     "of images counts as several references."}),
                "resolution": (list(r2v.RESOLUTIONS[::-1]) + ["custom"], {
                    "default": r2v.DEFAULT_RESOLUTION,
                    "tooltip": "720P / 540P / 480P: the official bucket nearest the first reference's aspect "
                               "(540P or 480P for GPUs under 24 GB). custom: width and height below."}),
                **size_inputs(1280, 720, r2v.FRAMES, "Number of frames, 4k+1: 24 per second + 1 (official 121 = 5 s)."),
                "image_cfg": ("FLOAT", {
                    "default": r2v.IMAGE_CFG, "min": 0.0, "max": 30.0, "step": 0.1,
                    "tooltip": "Image guidance of the three-pass guidance, used when the sampler's cfg is above 1 "
                               "(the shipped model is distilled: cfg 1 and image_cfg 1, one pass; the pipeline's "
                               "own defaults were cfg 7.5, image_cfg 5)."}),
                "seed": seed_input(_SEED_TIP),
            },
            "optional": {
                "reference_2": ("IMAGE", {"tooltip": "Another reference."}),
                "reference_3": ("IMAGE", {"tooltip": "Another reference."}),
                "reference_4": ("IMAGE", {"tooltip": "Another reference (4 at most in all)."}),
            },
        }

    @classmethod
    def VALIDATE_INPUTS(cls, width=None, height=None, num_frames=None, **_):
        return check_size(width, height, num_frames)

    @staticmethod
    def video_size(resolution: str, width: int, height: int, first) -> Tuple[int, int]:
        """(width, height) of the video: the bucket of the first reference, or the custom size."""
        if resolution == "custom":
            return width, height
        h, w = r2v.bucket_size(resolution, first.shape[1], first.shape[0])
        return w, h

    def encode(self, positive, negative, vae, reference_1, resolution, width, height, num_frames, image_cfg, seed,
               reference_2=None, reference_3=None, reference_4=None):
        refs = []
        for i, image in enumerate((reference_1, reference_2, reference_3, reference_4)):
            refs += _frames(image, "reference_%d" % (i + 1))
        try:
            r2v.check_count(len(refs))
        except ValueError as e:
            raise NodeError(str(e)) from None
        width, height = self.video_size(resolution, width, height, refs[0])
        with on_device(vae.vae):
            got = encode.r2v_references(vae.vae, refs, width, height, seed=seed, tile=vae.tile)
        raw = latent_space.denormalize(got.latents)  # padding frames: the raw value of a normalised zero
        host.log("SkyReels-V3 R2V: %d reference(s), video %dx%d, %d frames" % (len(refs), width, height, num_frames))
        values = {cond.TIME_REFS: raw, cond.IMAGE_CFG: float(image_cfg)}
        return _outputs(positive, negative, values, width, height, num_frames)


class SkipFrames:
    DESCRIPTION = ("Drops the first frames of a video (and optionally keeps only a number of frames). SkyReels-A2's "
                   "official demo drops the first 12 decoded frames, where the references show.")
    CATEGORY = MEDIA
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("images",)
    OUTPUT_TOOLTIPS = ("The remaining frames.",)
    FUNCTION = "skip"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "images": ("IMAGE", {"tooltip": "The frames."}),
            "skip_first_frames": ("INT", {"default": a2.DROP_FIRST_FRAMES, "min": 0, "max": 1_000_000,
                                          "tooltip": "Frames dropped at the start (A2 official: 12)."}),
            "frame_count": ("INT", {"default": 0, "min": 0, "max": 1_000_000,
                                    "tooltip": "Frames kept after that; 0 keeps the rest."}),
        }}

    def skip(self, images, skip_first_frames, frame_count):
        if skip_first_frames >= images.shape[0]:
            raise NodeError("the video has %d frames; skipping %d leaves none" % (images.shape[0], skip_first_frames))
        end = skip_first_frames + frame_count if frame_count > 0 else images.shape[0]
        return (images[skip_first_frames:end],)


NODES = [
    ("SkyReelsA2Elements", A2Elements, "SkyReels A2 Elements (reference injector)"),
    ("SkyReelsV3References", V3References, "SkyReels V3 References (reference injector)"),
    ("SkyReelsSkipFrames", SkipFrames, "SkyReels Skip Frames"),
]
