"""VAE decode and encode nodes (LATENT in raw Wan VAE space <-> IMAGE)."""
from __future__ import annotations

import torch

from ..models.placement import on_device
from ..models.wan import latent_space
from ..sampling.video_codec import VideoCodec
from . import handles
from .base import LATENT, NodeError


class VideoDecode:
    """Base of the VAE decode nodes: LATENT in (a batch of videos), IMAGE frames out, one video
    after another with the VAE on the compute device meanwhile.  A family sets the VAE socket
    and the tooltips and decodes one video in ``decode_one``."""

    CATEGORY = LATENT
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("images",)
    OUTPUT_TOOLTIPS = ("Frames [frames, height, width, 3] in 0..1.",)
    FUNCTION = "decode"
    VAE = handles.VAE
    VAE_TIP = "The Wan2.1 VAE."
    LATENT_TIP = "A Wan video latent (raw VAE space, as the samplers output it)."
    LATENT_WORDS = "Wan video latent"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "vae": (cls.VAE, {"tooltip": cls.VAE_TIP}),
            "latent": ("LATENT", {"tooltip": cls.LATENT_TIP}),
        }}

    def decode(self, vae, latent):
        z = latent["samples"]
        channels = self.channels(vae)
        if z.dim() != 5 or z.shape[1] != channels:
            raise NodeError("expected a %s [batch, %d, frames, h, w], got %s" % (self.LATENT_WORDS, channels,
                                                                                list(z.shape)))
        frames = []
        with on_device(vae.vae) as dev:
            for b in range(z.shape[0]):
                frames.append(self.decode_one(vae, z[b:b + 1], dev))
        return (torch.cat(frames, dim=0),)

    def channels(self, vae) -> int:
        return latent_space.CHANNELS

    def decode_one(self, vae, z: torch.Tensor, device) -> torch.Tensor:
        raise NotImplementedError


class VAEDecode(VideoDecode):
    DESCRIPTION = "Decodes a Wan video latent into frames (tiled when the VAE loader says so)."

    def decode_one(self, vae, z, device):
        return VideoCodec(vae.vae, device, vae.tile).decode(latent_space.normalize(z))


class VAEEncode:
    DESCRIPTION = "Encodes frames (4k+1 of them) into a Wan video latent."
    CATEGORY = LATENT
    RETURN_TYPES = ("LATENT",)
    RETURN_NAMES = ("latent",)
    OUTPUT_TOOLTIPS = ("Raw Wan VAE latent [1, 16, (frames-1)/4+1, h/8, w/8].",)
    FUNCTION = "encode"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "vae": (handles.VAE, {"tooltip": "The Wan2.1 VAE."}),
            "images": ("IMAGE", {"tooltip": "Frames; their count must be 4k+1 and their size a multiple of 8."}),
        }}

    def encode(self, vae, images):
        n, h, w = images.shape[0], images.shape[1], images.shape[2]
        if (n - 1) % 4:
            raise NodeError("%d frames cannot be encoded: the count must be 4k+1 (e.g. %d)" % (n, n - (n - 1) % 4))
        if h % 8 or w % 8:
            raise NodeError("frame size %dx%d must be a multiple of 8" % (w, h))
        with on_device(vae.vae) as dev:
            z = VideoCodec(vae.vae, dev, vae.tile).encode(images[..., :3])
        return ({"samples": latent_space.denormalize(z).cpu()},)


NODES = [
    ("SkyReelsVAEDecode", VAEDecode, "SkyReels VAE Decode"),
    ("SkyReelsVAEEncode", VAEEncode, "SkyReels VAE Encode"),
]
