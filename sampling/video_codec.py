"""Between pixels and the DiT's latent space: the Wan VAE seen from the samplers.

Pixels are ComfyUI IMAGE tensors [T, H, W, 3] in [0, 1] on the CPU; latents are the DiT's
normalised latents [1, 16, F, H/8, W/8].  (ComfyUI's LATENT holds the raw VAE mean; the
conversion is ``vae.normalize`` / ``vae.denormalize``.)
"""
from __future__ import annotations

from typing import Optional

import torch

from ..media.image_io import image_to_video_tensor, video_tensor_to_image


class VideoCodec:
    def __init__(self, vae, device: Optional[torch.device] = None, tile=None):
        self.vae = vae
        self.device = torch.device(device) if device is not None else _module_device(vae)
        self.tile = tile

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """IMAGE [T, H, W, 3] (T = 4k+1) -> normalised latent [1, 16, (T-1)/4+1, H/8, W/8], float32."""
        video = image_to_video_tensor(images, device=self.device)
        with torch.no_grad():
            mu = self.vae.encode(video, tile=self.tile)
        return self.vae.normalize(mu).float()

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Normalised latent [1, 16, F, h, w] -> IMAGE [4F-3, 8h, 8w, 3] in [0, 1] on the CPU."""
        with torch.no_grad():
            video = self.vae.decode(self.vae.denormalize(z.to(self.device, torch.float32)), tile=self.tile)
        return video_tensor_to_image(video)

    def stream(self) -> Optional["FrameStream"]:
        """A decoder that continues across chunks (exact), or None when tiled or unsupported."""
        if self.tile is not None or not hasattr(self.vae, "decoder"):
            return None
        from ..models.wan.vae import StreamDecoder

        return FrameStream(self, StreamDecoder(self.vae))

    def to_raw(self, z: torch.Tensor) -> torch.Tensor:
        return self.vae.denormalize(z.float()).cpu()

    def from_raw(self, mu: torch.Tensor) -> torch.Tensor:
        return self.vae.normalize(mu.float())


def _module_device(m) -> torch.device:
    for p in m.parameters():
        return p.device
    return torch.device("cpu")


class FrameStream:
    """Pixel frames of successive latent pieces of one video, decoded with a shared causal state."""

    def __init__(self, codec: VideoCodec, decoder):
        self.codec = codec
        self.decoder = decoder

    def feed(self, z: torch.Tensor) -> torch.Tensor:
        """Normalised latents [1, 16, F, h, w] -> IMAGE frames [T, H, W, 3] on the CPU."""
        raw = self.codec.vae.denormalize(z.to(self.codec.device, torch.float32))
        return video_tensor_to_image(self.decoder.feed(raw))

    def warm(self, z: torch.Tensor) -> None:
        """Resume: the state after decoding the normalised latents ``z`` (the whole video so far,
        from its first latent); only the decoder's causal reach is actually decoded."""
        keep = self.decoder.reach()
        if z.shape[2] > keep + 1:  # only what warm() decodes goes to the device
            z = z[:, :, -(keep + 1):]
        self.decoder.warm(self.codec.vae.denormalize(z.to(self.codec.device, torch.float32)))
