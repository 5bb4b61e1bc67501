"""Still images: load and save with Pillow, and convert between ComfyUI IMAGE and model video tensors.

* IMAGE: float [B, H, W, 3] in [0, 1], channels last; video frames are the batch.
* MASK:  float [B, H, W] in [0, 1].  Like ComfyUI's LoadImage, the mask loaded from an alpha
  channel is ``1 - alpha`` (transparent pixels = 1 = masked); no alpha gives zeros.
* Model video tensor: float [B, 3, T, H, W] in [-1, 1] (what the VAE encodes / decodes).
"""
from __future__ import annotations

import os
from typing import Dict, Optional, Tuple

import numpy as np
import torch
from PIL import Image, ImageOps, PngImagePlugin

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif")


# --------------------------------------------------------------------------- loading


def _to_float_array(img: Image.Image) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """(rgb [H, W, 3] float32 0..1, alpha [H, W] float32 0..1 or None) of any Pillow mode."""
    mode = img.mode
    if mode.startswith("I;16") or mode in ("I", "F"):
        # 16-bit / 32-bit single channel (16-bit grayscale PNG, some TIFFs)
        arr = np.asarray(img).astype(np.float32)
        if mode == "F":
            peak = 1.0 if arr.max(initial=0.0) <= 1.0 else 255.0
        elif mode.startswith("I;16") or arr.max(initial=0) > 255:
            peak = 65535.0
        else:
            peak = 255.0
        gray = np.clip(arr / peak, 0.0, 1.0)
        return np.repeat(gray[..., None], 3, axis=2), None
    has_alpha = mode in ("RGBA", "LA", "PA", "La", "RGBa") or (mode == "P" and "transparency" in img.info)
    if has_alpha:
        rgba = np.asarray(img.convert("RGBA"), dtype=np.float32) / 255.0
        return rgba[..., :3], rgba[..., 3]
    rgb = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
    return rgb, None


def load_image(path: str) -> Tuple[torch.Tensor, torch.Tensor]:
    """Load an image file as ``(IMAGE [1, H, W, 3], MASK [1, H, W])`` float32 on the CPU.

    EXIF orientation is applied; RGBA / LA / palette / grayscale / CMYK / 16-bit PNG all load as
    RGB in [0, 1].  MASK is ``1 - alpha`` when the image has transparency (ComfyUI's convention:
    1 = masked), else zeros of the same H, W.  Animated files give their first frame.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError("image file not found: %s" % path)
    try:
        with Image.open(path) as img:
            img.seek(0)
            img = ImageOps.exif_transpose(img)
            rgb, alpha = _to_float_array(img)
    except (OSError, SyntaxError) as exc:  # Pillow's "cannot identify image file" etc.
        raise ValueError("cannot read %s as an image: %s" % (path, exc)) from exc
    image = torch.from_numpy(np.ascontiguousarray(rgb))[None]
    if alpha is None:
        mask = torch.zeros((1, rgb.shape[0], rgb.shape[1]), dtype=torch.float32)
    else:
        mask = 1.0 - torch.from_numpy(np.ascontiguousarray(alpha))[None]
    return image, mask


# --------------------------------------------------------------------------- saving


def image_to_uint8(image: torch.Tensor) -> np.ndarray:
    """One frame [H, W, C] (C = 1, 3 or 4) float 0..1 -> uint8 numpy [H, W, C], rounded."""
    arr = (image.detach().float().cpu().clamp(0.0, 1.0) * 255.0).round().to(torch.uint8)
    return arr.numpy()


def save_image(image: torch.Tensor, path: str, index: int = 0, quality: int = 95,
               compress_level: int = 4, text: Optional[Dict[str, str]] = None) -> str:
    """Save one frame of an IMAGE to ``path`` (format from the extension: png, jpg/jpeg, webp,
    bmp, tif/tiff); returns ``path``.

    image: IMAGE [B, H, W, C] (frame ``index`` is saved) or a single frame [H, W, C]; C = 3 gives
    RGB, C = 4 RGBA (png / webp / tiff only), C = 1 grayscale.  ``quality`` is for jpg / webp,
    ``compress_level`` (0-9) for png, ``text`` adds PNG text chunks (e.g. ComfyUI's "prompt" /
    "workflow").  Parent folders are created.
    """
    if image.dim() == 4:
        if not -image.shape[0] <= index < image.shape[0]:
            raise IndexError("frame index %d out of range for a batch of %d" % (index, image.shape[0]))
        image = image[index]
    if image.dim() != 3 or image.shape[-1] not in (1, 3, 4):
        raise ValueError("save_image expects IMAGE [B, H, W, C] or [H, W, C] with C in (1, 3, 4), got %s"
                         % (tuple(image.shape),))
    ext = os.path.splitext(path)[1].lower()
    formats = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".bmp": "BMP",
               ".tif": "TIFF", ".tiff": "TIFF"}
    if ext not in formats:
        raise ValueError("cannot save an image as %r: use one of %s" % (ext or path, ", ".join(sorted(formats))))
    arr = image_to_uint8(image)
    if arr.shape[-1] == 1:
        pil = Image.fromarray(arr[..., 0], mode="L")
    elif arr.shape[-1] == 4:
        pil = Image.fromarray(arr, mode="RGBA")
        if formats[ext] in ("JPEG", "BMP"):
            pil = pil.convert("RGB")
    else:
        pil = Image.fromarray(arr, mode="RGB")
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    kwargs = {}
    if formats[ext] == "PNG":
        kwargs["compress_level"] = int(compress_level)
        if text:
            info = PngImagePlugin.PngInfo()
            for key, value in text.items():
                info.add_text(str(key), str(value))
            kwargs["pnginfo"] = info
    elif formats[ext] in ("JPEG", "WEBP"):
        kwargs["quality"] = int(quality)
    pil.save(path, format=formats[ext], **kwargs)
    return path


# --------------------------------------------------------------------------- IMAGE <-> model video tensor


def as_rgb(images: torch.Tensor) -> torch.Tensor:
    """IMAGE [T, H, W, C] (or one frame [H, W, C]) with C in 1, 3, 4 -> [T, H, W, 3]: alpha
    dropped, grey repeated to RGB."""
    if images.dim() == 3:
        images = images[None]
    if images.dim() != 4 or images.shape[-1] not in (1, 3, 4):
        raise ValueError("expected IMAGE [T, H, W, C] with C in (1, 3, 4), got %s" % (tuple(images.shape),))
    if images.shape[-1] == 4:
        return images[..., :3]
    if images.shape[-1] == 1:
        return images.expand(-1, -1, -1, 3)
    return images


def image_to_video_tensor(images: torch.Tensor, dtype: torch.dtype = torch.float32,
                          device: Optional[torch.device] = None) -> torch.Tensor:
    """IMAGE [T, H, W, C] in [0, 1] (frames = batch) -> video tensor [1, 3, T, H, W] in [-1, 1].

    A single frame [H, W, C] becomes T = 1.  C = 4 drops alpha, C = 1 is repeated to RGB.
    """
    images = as_rgb(images)
    video = images.to(device=device, dtype=torch.float32).permute(3, 0, 1, 2)[None]
    return (video * 2.0 - 1.0).to(dtype).contiguous()


def video_tensor_to_image(video: torch.Tensor) -> torch.Tensor:
    """Video tensor [B, 3, T, H, W] (or [3, T, H, W]) in [-1, 1] -> IMAGE [B*T, H, W, 3] float32
    on the CPU, clamped to [0, 1].  Batches follow each other in time order."""
    if video.dim() == 4:
        video = video[None]
    if video.dim() != 5 or video.shape[1] != 3:
        raise ValueError("expected a video tensor [B, 3, T, H, W], got %s" % (tuple(video.shape),))
    frames = video.detach().float().cpu().permute(0, 2, 3, 4, 1)  # B, T, H, W, 3
    frames = frames.reshape(-1, *frames.shape[2:])
    return ((frames + 1.0) * 0.5).clamp_(0.0, 1.0).contiguous()


__all__ = ["IMAGE_EXTENSIONS", "load_image", "save_image", "image_to_uint8", "as_rgb",
           "image_to_video_tensor", "video_tensor_to_image"]
