"""SkyReels-V1 conditioning pieces that are not networks: the image latent of image-to-video.

The official I2V pipeline VAE-encodes the start image (one frame, sampled from the posterior),
scales it by 0.476986 and puts it on latent frame 0, zeros on the other frames; this
16-channel tensor is concatenated after the noisy latent (32 channels), the same for both CFG
branches.  There is no mask channel.
"""
from __future__ import annotations

import torch

from .vae import SCALING_FACTOR


def image_latents_for(raw_image_latent: torch.Tensor, num_latent_frames: int,
                      scaling_factor: float = SCALING_FACTOR) -> torch.Tensor:
    """Raw image latent [B, 16, k, h, w] (k >= 1 given frames) -> the DiT's ``image_latents``
    [B, 16, F, h, w]: scaled on the first k frames, exact zeros after."""
    if raw_image_latent.dim() != 5:
        raise ValueError("the image latent must be [B, 16, frames, h, w], got %s" % list(raw_image_latent.shape))
    B, C, k, h, w = raw_image_latent.shape
    k = min(k, num_latent_frames)
    out = torch.zeros(B, C, num_latent_frames, h, w, dtype=torch.float32, device=raw_image_latent.device)
    out[:, :, :k] = raw_image_latent[:, :, :k].float() * scaling_factor
    return out


# --------------------------------------------------------------------------- CONDITIONING

def make_conditioning(text: torch.Tensor, pooled: torch.Tensor) -> list:
    """ComfyUI CONDITIONING in the layout of ComfyUI's own HunyuanVideo text encoder: the valid
    Llama rows [1, n, 4096] and ``pooled_output`` [1, 768] (no mask: nothing is padded)."""
    return [[text, {"pooled_output": pooled}]]


def _first(conditioning, what: str):
    if not isinstance(conditioning, (list, tuple)) or not conditioning:
        raise ValueError("%s conditioning is empty; connect a SkyReels V1 text encode node" % what)
    item = conditioning[0]
    if not (isinstance(item, (list, tuple)) and len(item) == 2 and isinstance(item[0], torch.Tensor)):
        raise ValueError("%s is not CONDITIONING (a list of [tensor, dict] pairs)" % what)
    return item[0], dict(item[1] or {})


def text_inputs(conditioning, what: str, text_dim: int, pooled_dim: int):
    """(text [1, L, D], mask [1, L] or None, pooled [1, P]) from our CONDITIONING or ComfyUI's
    (CLIPTextEncode with the hunyuan_video CLIP, TextEncodeHunyuanVideo_ImageToVideo).

    Only the first entry is used; ComfyUI's text encoder gives exactly one."""
    text, extra = _first(conditioning, what)
    if text.dim() == 2:
        text = text.unsqueeze(0)
    if text.shape[-1] != text_dim:
        raise ValueError("the %s text conditioning has width %d, SkyReels-V1 expects %d (llava-llama-3): use the "
                         "SkyReels V1 Text Encode node or ComfyUI's text encode with the hunyuan_video CLIP"
                         % (what, text.shape[-1], text_dim))
    pooled = extra.get("pooled_output")
    if pooled is None:
        raise ValueError("the %s conditioning has no CLIP-L pooled vector ('pooled_output'); encode it with the "
                         "SkyReels V1 Text Encode node or ComfyUI's text encode with the hunyuan_video CLIP" % what)
    pooled = pooled.reshape(1, -1).float()
    if pooled.shape[-1] != pooled_dim:
        raise ValueError("the %s pooled vector has width %d, expected %d (CLIP-L)" % (what, pooled.shape[-1], pooled_dim))
    mask = extra.get("attention_mask")
    if mask is not None:
        mask = mask.reshape(1, -1)[:, : text.shape[1]]
    return text[:1].float(), mask, pooled


def raw_image_latent(conditioning):
    """The raw image latent ``concat_latent_image`` [1, 16, k, h, w] (ours or ComfyUI's
    HunyuanImageToVideo "v1 (concat)"), or None."""
    for _, extra in conditioning or ():
        img = (extra or {}).get("concat_latent_image")
        if img is not None:
            return img if img.dim() == 5 else img.unsqueeze(2)
    return None
