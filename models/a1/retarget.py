"""The geometry of SkyReels-A1's landmark retargeting (``pre_process_lmk3d.py`` and
``renderer.py``), as plain functions.

* :func:`crop_face`: the similarity that maps a square of 1.4x the landmarks' extent onto the
  224 x 224 crop SMIRK reads (the official ``crop_face``, a skimage similarity).
* :func:`project_points`: FLAME points in the crop's orthographic NDC back to face-crop
  pixels (``_create_landmark_list``).
* :func:`place_pupils`: the pupils of the driving frame carried onto the drawn eyes by a RANSAC
  affine of the 16 eye-contour points (``Renderer.render``).
* FLAME parameter retargeting (``preprocess_lmk3d``): :func:`rodrigues_to_matrix`,
  :func:`matrix_to_rodrigues`, :func:`smooth_poses`, :func:`compose_flame_params`: the source
  keeps its shape and camera, takes the driving expression, jaw, eyelids and eye pose, and
  turns its head by the driving head's rotation relative to the first driving frame
  (R_src R(s_0)^-1 R(s_i), the driving poses smoothed s_i = 0.7 d_i + 0.3 s_{i-1}).

The torch functions run in float32 like the official ones; the pixel geometry in float64.
"""
from __future__ import annotations

import math
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from . import landmark_style as style

CROP_SIZE = 224
CROP_SCALE = 1.4
POSE_ALPHA = 0.7            # weight of the new pose in the official smoothing

SOURCE_FIELDS = ("shape_params", "cam")
DRIVING_FIELDS = ("expression_params", "jaw_params", "eye_pose_params", "eyelid_params")
FLAME_FIELDS = ("pose_params", "cam", "shape_params", "expression_params", "jaw_params", "eyelid_params",
                "eye_pose_params")


# --------------------------------------------------------------------------- crops and pixels


def crop_face(landmarks: np.ndarray, scale: float = CROP_SCALE, image_size: int = CROP_SIZE) -> np.ndarray:
    """[3, 3] float64: the similarity from image pixels to the image_size crop around ``landmarks``
    [N, >=2] (the square of side int(scale x mean extent) around the extent's centre goes to
    [0, image_size - 1]^2)."""
    p = np.asarray(landmarks, dtype=np.float64)
    left, right = np.min(p[:, 0]), np.max(p[:, 0])
    top, bottom = np.min(p[:, 1]), np.max(p[:, 1])
    old_size = (right - left + bottom - top) / 2
    cx, cy = right - (right - left) / 2.0, bottom - (bottom - top) / 2.0
    size = int(old_size * scale)
    if size <= 0:
        raise ValueError("the face landmarks have no extent")
    s = (image_size - 1) / size
    x0, y0 = cx - size / 2, cy - size / 2
    return np.array([[s, 0.0, -s * x0], [0.0, s, -s * y0], [0.0, 0.0, 1.0]], dtype=np.float64)


def warp_crop(image: np.ndarray, tform: np.ndarray, size: int = CROP_SIZE) -> np.ndarray:
    """The size x size crop (bilinear, black outside) of an [H, W, 3] uint8 image under ``tform``
    (skimage ``warp(image, tform.inverse, preserve_range=True).astype(uint8)``, which truncates)."""
    import cv2

    m = np.asarray(tform, dtype=np.float64)[:2]
    img = np.ascontiguousarray(np.asarray(image)[..., :3]).astype(np.float32)
    out = cv2.warpAffine(img, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                         borderValue=(0, 0, 0))
    return np.clip(out, 0, 255).astype(np.uint8)


def project_points(v_selected, tform: np.ndarray, face_hw: Tuple[int, int],
                   image_size: int = CROP_SIZE) -> Tuple[np.ndarray, np.ndarray]:
    """FLAME points [N, >=2] in the crop's NDC -> (pixels of the face crop [N, 2] float64,
    normalised float32 [N, 2]).  u = (v + 1) / 2 x 224 in float32, p = tform^-1 [u, 1]."""
    v = torch.as_tensor(v_selected, dtype=torch.float32)[:, :2]
    u = ((v + 1) * 0.5 * image_size).numpy().astype(np.float64)
    inv = np.linalg.inv(np.asarray(tform, dtype=np.float64))
    pix = u @ inv[:2, :2].T + inv[:2, 2]
    h, w = int(face_hw[0]), int(face_hw[1])
    norm = np.stack([pix[:, 0] / w, pix[:, 1] / h], axis=1).astype(np.float32)
    return pix, norm


def pupil_points(driving_kpt: np.ndarray, drawn_pix: np.ndarray,
                 threshold: float = style.PUPIL_RANSAC_THRESHOLD) -> Tuple[Optional[np.ndarray], Optional[np.ndarray]]:
    """(pupil of 468, pupil of 473) as float pixels on the drawn face, or None where the fit fails.

    ``driving_kpt``: the driving frame's 478 landmark pixels (any frame of reference: the affine
    absorbs it); ``drawn_pix``: the drawn points [>=105, 2] in :data:`INDEX_MAPPING` order."""
    import cv2

    pos = {mp: i for i, mp in enumerate(style.INDEX_MAPPING)}
    drv = np.asarray(driving_kpt, dtype=np.float64)
    out = []
    for target, contour in ((468, style.EYE_CONTOUR_468), (473, style.EYE_CONTOUR_473)):
        src = np.array(drv[list(contour)], dtype=np.float32)
        dst = np.array([drawn_pix[pos[i]] for i in contour], dtype=np.float32)
        m, _ = cv2.estimateAffine2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=threshold)
        if m is None or not np.isfinite(m).all():
            out.append(None)
            continue
        p = cv2.transform(drv[target].reshape(1, 1, 2), m).reshape(-1)
        out.append(p if np.isfinite(p).all() else None)
    return out[0], out[1]


def place_pupils(driving_kpt: np.ndarray, drawn_pix: np.ndarray,
                 threshold: float = style.PUPIL_RANSAC_THRESHOLD) -> Tuple[Optional[np.ndarray], Optional[np.ndarray]]:
    """:func:`pupil_points` truncated to int32 pixels, as the renderer draws them."""
    return tuple(None if p is None else np.array(p, dtype=np.int32) for p in pupil_points(driving_kpt, drawn_pix,
                                                                                           threshold))


def landmark_relation(kpt: np.ndarray, target: int = 473,
                      contour: Sequence[int] = style.EYE_CONTOUR_473) -> np.ndarray:
    """The pupil in eye-corner coordinates (``compute_landmark_relation``; the official renderer
    computes it and does not use it): [along the corner line, across it] in half eye widths."""
    p = np.asarray(kpt, dtype=np.float64)
    ref = p[list(contour)]
    a, b = ref[0], ref[8]
    centre = (a + b) / 2
    width_vec = b - a
    width = np.linalg.norm(width_vec)
    d = width_vec / width
    perp = np.array([-d[1], d[0]])
    t = p[target] - centre
    return np.array([np.dot(t, d) / (width / 2), np.dot(t, perp) / (width / 2)])


# --------------------------------------------------------------------------- FLAME parameters


def rodrigues_to_matrix(r: torch.Tensor) -> torch.Tensor:
    """[B, 3] axis-angle -> [B, 3, 3] (float32; correct per vector, as the official one-vector calls)."""
    r = r.float()
    theta = torch.norm(r, dim=-1, keepdim=True)
    k = r / (theta + 1e-8)
    kx = torch.zeros((r.shape[0], 3, 3), dtype=r.dtype, device=r.device)
    kx[:, 0, 1] = -k[:, 2]
    kx[:, 0, 2] = k[:, 1]
    kx[:, 1, 0] = k[:, 2]
    kx[:, 1, 2] = -k[:, 0]
    kx[:, 2, 0] = -k[:, 1]
    kx[:, 2, 1] = k[:, 0]
    c, s = torch.cos(theta), torch.sin(theta)
    eye = torch.eye(3, dtype=r.dtype, device=r.device).unsqueeze(0)
    return c * eye + s * kx + (1 - c) * k.unsqueeze(-1) @ k.unsqueeze(-2)


def matrix_to_rodrigues(R: torch.Tensor) -> torch.Tensor:
    """[B, 3, 3] -> [1, 3] axis-angle of the FIRST matrix (as the official function)."""
    R = R.float()
    cos_theta = torch.clamp((torch.trace(R[0]) - 1) / 2, -1, 1)
    theta = torch.acos(cos_theta)
    if abs(theta) < 1e-4:
        return torch.zeros(1, 3, dtype=R.dtype, device=R.device)
    if abs(theta - math.pi) < 1e-4:
        rpi = R[0] + torch.eye(3, dtype=R.dtype, device=R.device)
        col = rpi[:, torch.argmax(torch.norm(rpi, dim=0))]
        return (col / torch.norm(col) * math.pi).unsqueeze(0)
    r = torch.zeros(1, 3, dtype=R.dtype, device=R.device)
    r[0, 0] = R[0, 2, 1] - R[0, 1, 2]
    r[0, 1] = R[0, 0, 2] - R[0, 2, 0]
    r[0, 2] = R[0, 1, 0] - R[0, 0, 1]
    r = r / (2 * torch.sin(theta))
    return r * theta


def smooth_poses(poses: Sequence[torch.Tensor], alpha: float = POSE_ALPHA) -> List[torch.Tensor]:
    """s_0 = d_0, s_i = alpha d_i + (1 - alpha) s_{i-1}."""
    out = [poses[0]] if len(poses) else []
    for i in range(1, len(poses)):
        out.append(alpha * poses[i] + (1 - alpha) * out[i - 1])
    return out


def compose_flame_params(source: Dict[str, torch.Tensor], driving: Sequence[Dict[str, torch.Tensor]],
                         alpha: float = POSE_ALPHA, expression_strength: float = 1.0,
                         pose_strength: float = 1.0) -> List[Dict[str, torch.Tensor]]:
    """The FLAME inputs of each driving frame: the source's shape and camera; the driving frame's
    expression, jaw, eye pose and eyelids; the head pose R_src R(s_0)^-1 R(s_i).

    ``expression_strength`` / ``pose_strength`` (1 = official) blend the driving expression
    (expression, jaw, eyelids) with the source's own, and scale the relative head rotation's
    angle."""
    if not driving:
        return []
    poses = smooth_poses([d["pose_params"] for d in driving], alpha)
    src_rot = rodrigues_to_matrix(source["pose_params"])
    first = rodrigues_to_matrix(poses[0])
    out = []
    for i, d in enumerate(driving):
        rel = torch.inverse(first) @ rodrigues_to_matrix(poses[i])
        if pose_strength != 1.0:
            rel = rodrigues_to_matrix(matrix_to_rodrigues(rel) * pose_strength)
        frame = {k: source[k] for k in SOURCE_FIELDS}
        for k in DRIVING_FIELDS:
            v = d[k]
            if expression_strength != 1.0 and k != "eye_pose_params" and k in source:
                v = source[k] + expression_strength * (v - source[k])
            frame[k] = v
        frame["pose_params"] = matrix_to_rodrigues(src_rot @ rel)
        out.append(frame)
    return out
