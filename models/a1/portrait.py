"""The SkyReels-A1 reference portrait: framing to the video size and the face embedding.

* :func:`frame_portrait`: the official ``crop_and_resize``: an image wider than the target
  aspect is cut to it (centred), a taller one gets black bars left and right; then a PIL
  bicubic resize to width x height.  The A1 release works at 720 x 480.
* :func:`face_embedding`: 5 points from the face detector (or, without one, the centre
  square of the framed portrait), the 512 x 512 aligned face, SigLIP tokens.
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np
import torch

from .face_align import align_face

A1_WIDTH, A1_HEIGHT = 720, 480


def image_to_uint8(image: torch.Tensor) -> np.ndarray:
    """The first frame of an IMAGE [B, H, W, C] in [0, 1] -> [H, W, 3] uint8 (rounded)."""
    if not isinstance(image, torch.Tensor) or image.dim() != 4 or image.shape[-1] < 3:
        raise ValueError("expected an IMAGE [frames, height, width, 3], got %s"
                         % (list(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__))
    return (image[0, :, :, :3].float().clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()


def uint8_to_image(arr: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(arr, dtype=np.uint8)).float().div(255.0).unsqueeze(0)


def frame_portrait(image: np.ndarray, width: int = A1_WIDTH, height: int = A1_HEIGHT) -> np.ndarray:
    """[H, W, 3] uint8 -> [height, width, 3] uint8, cropped or padded to the aspect, then resized."""
    from PIL import Image

    img = np.asarray(image, dtype=np.uint8)[..., :3]
    ih, iw = img.shape[:2]
    if ih / iw < height / width:
        cw = int(ih / height * width)
        left = (iw - cw) // 2
        img = img[:, left:left + cw]
    else:
        pad = int(((width / height) * ih - iw) / 2.0)
        padded = np.zeros((ih, iw + 2 * pad, 3), dtype=np.uint8)
        padded[:, pad:pad + iw] = img
        img = padded
    return np.array(Image.fromarray(np.ascontiguousarray(img)).resize((width, height), Image.BICUBIC))


def center_face(image: np.ndarray, size: int = 512) -> np.ndarray:
    """The centre square of ``image`` resized to ``size`` (for portraits already cropped to the face)."""
    from PIL import Image

    h, w = image.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    crop = np.ascontiguousarray(image[top:top + s, left:left + s])
    return np.array(Image.fromarray(crop).resize((size, size), Image.BICUBIC))


def face_embedding(encoder, framed: np.ndarray, detector=None) -> Tuple[torch.Tensor, np.ndarray, Optional[np.ndarray]]:
    """(SigLIP tokens [1, L, C], the 512 x 512 face crop, the 5 points or None) of a framed portrait.

    ``detector``: a :class:`face_detect.FaceLandmarks` (raises ``NoFaceError`` when there is no
    face), or None to use the centre square."""
    if detector is not None:
        points = detector.five_points(framed)
        face, _ = align_face(framed, points, 512)
    else:
        points, face = None, center_face(framed, 512)
    return encoder.encode(face), face, points
