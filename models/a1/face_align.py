"""The SkyReels-A1 face crop: 5 facial points -> a 512 x 512 face aligned to the FFHQ template.

The official code uses facexlib's ``FaceRestoreHelper.align_warp_face``, i.e. OpenCV's
``estimateAffinePartial2D(points, template, method=LMEDS)`` and ``warpAffine`` (bilinear,
constant grey border).  Both are reproduced here in NumPy, without OpenCV:

* :func:`estimate_similarity_lmeds`: OpenCV's least-median-of-squares estimator exactly
  (its RNG stream, 13 random point pairs, float32 residuals, the median rule, the inlier
  threshold), then the least-squares similarity on the inliers (the value OpenCV's
  Levenberg-Marquardt refinement converges to).  On real detections the mouth corners are
  often rejected, which a plain least-squares fit would not do;
* :func:`warp_affine_bilinear`: OpenCV's fixed-point ``warpAffine``: source coordinates in
  1/32 pixel, integer bilinear weights summing to 2^15, the border colour for neighbours
  outside the image.

Points are (x, y) pixels in the order of retinaface: the eye on the image's left, the other
eye, the nose tip, the mouth corner on the image's left, the other mouth corner.
"""
from __future__ import annotations

from typing import Tuple

import numpy as np

# facexlib's FFHQ template for 512 x 512 faces.
FFHQ_TEMPLATE_512 = np.array([
    [192.98138, 239.94708], [318.90277, 240.1936], [256.63416, 314.01935],
    [201.26117, 371.41043], [313.08905, 371.15118]], dtype=np.float64)
# facexlib's border value (135, 133, 132) is given in BGR: this is RGB.
BORDER_RGB = (132, 133, 135)

_MASK32 = 0xFFFFFFFF
_MASK64 = 0xFFFFFFFFFFFFFFFF


class _CvRNG:
    """OpenCV's multiply-with-carry ``cv::RNG`` (state 2^64 - 1, as LMeDS seeds it)."""

    def __init__(self, state: int = _MASK64):
        self.state = state

    def next(self) -> int:
        self.state = ((self.state & _MASK32) * 4164903690 + (self.state >> 32)) & _MASK64
        return self.state & _MASK32

    def uniform(self, a: int, b: int) -> int:
        return a if a == b else self.next() % (b - a) + a


def _two_point_similarity(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """The exact similarity through two point pairs (OpenCV's AffinePartial2D kernel)."""
    (x1, y1), (x2, y2) = p.astype(np.float64)
    (X1, Y1), (X2, Y2) = q.astype(np.float64)
    d = 1.0 / ((x1 - x2) * (x1 - x2) + (y1 - y2) * (y1 - y2))
    s0 = d * ((X1 - X2) * (x1 - x2) + (Y1 - Y2) * (y1 - y2))
    s1 = d * ((Y1 - Y2) * (x1 - x2) - (X1 - X2) * (y1 - y2))
    return np.array([[s0, -s1, X1 - s0 * x1 + s1 * y1], [s1, s0, Y1 - s1 * x1 - s0 * y1]])


def _residuals(M: np.ndarray, p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Squared transfer errors in float32, operation by operation as OpenCV computes them."""
    f = M.reshape(-1).astype(np.float32)
    px, py = p[:, 0].astype(np.float32), p[:, 1].astype(np.float32)
    a = ((f[0] * px + f[1] * py) + f[2]) - q[:, 0].astype(np.float32)
    b = ((f[3] * px + f[4] * py) + f[5]) - q[:, 1].astype(np.float32)
    return (a * a + b * b).astype(np.float32)


def least_squares_similarity(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """The similarity [[a, -b, tx], [b, a, ty]] minimising the squared transfer error."""
    p = p.astype(np.float64)
    q = q.astype(np.float64)
    mp, mq = p.mean(axis=0), q.mean(axis=0)
    P, Q = p - mp, q - mq
    den = (P * P).sum()
    a = (P[:, 0] * Q[:, 0] + P[:, 1] * Q[:, 1]).sum() / den
    b = (P[:, 0] * Q[:, 1] - P[:, 1] * Q[:, 0]).sum() / den
    tx = mq[0] - (a * mp[0] - b * mp[1])
    ty = mq[1] - (b * mp[0] + a * mp[1])
    return np.array([[a, -b, tx], [b, a, ty]])


def estimate_similarity_lmeds(points: np.ndarray, template: np.ndarray = FFHQ_TEMPLATE_512,
                              confidence: float = 0.99) -> np.ndarray:
    """``cv2.estimateAffinePartial2D(points, template, method=cv2.LMEDS)[0]`` as a [2, 3] float64."""
    p = np.asarray(points, dtype=np.float32).reshape(-1, 2)
    q = np.asarray(template, dtype=np.float32).reshape(-1, 2)
    count = p.shape[0]
    if count != q.shape[0] or count < 2:
        raise ValueError("need the same number (at least 2) of points and template points")
    if count == 2:
        return _two_point_similarity(p, q)
    model_points = 2
    outlier_ratio = 0.45
    iters = int(round(np.log(1 - confidence) / np.log(1 - (1 - outlier_ratio) ** model_points)))
    iters = max(iters, 3)
    rng = _CvRNG()
    best, best_median = None, np.inf
    for _ in range(iters):
        i0 = rng.uniform(0, count)
        i1 = rng.uniform(0, count)
        while i1 == i0:
            i1 = rng.uniform(0, count)
        idx = [i0, i1]
        if np.allclose(p[idx[0]], p[idx[1]]):
            continue
        M = _two_point_similarity(p[idx], q[idx])
        err = np.sort(_residuals(M, p, q))
        median = float(err[count // 2])
        if median < best_median:
            best, best_median = M, median
    if best is None:
        return least_squares_similarity(p, q)
    sigma = max(2.5 * 1.4826 * (1 + 5.0 / (count - model_points)) * np.sqrt(best_median), 0.001)
    inliers = _residuals(best, p, q) <= np.float32(sigma * sigma)
    if inliers.sum() < model_points:
        return best
    return least_squares_similarity(p[inliers], q[inliers])


def invert_affine(M: np.ndarray) -> np.ndarray:
    """OpenCV's inversion of a 2 x 3 affine map."""
    m = M.reshape(-1).astype(np.float64).copy()
    D = m[0] * m[4] - m[1] * m[3]
    D = 1.0 / D if D != 0 else 0.0
    a11, a22 = m[4] * D, m[0] * D
    m[0], m[1], m[3], m[4] = a11, m[1] * -D, m[3] * -D, a22
    b1 = -m[0] * m[2] - m[1] * m[5]
    b2 = -m[3] * m[2] - m[4] * m[5]
    m[2], m[5] = b1, b2
    return m.reshape(2, 3)


def warp_affine_bilinear(image: np.ndarray, M: np.ndarray, size: Tuple[int, int],
                         border: Tuple[int, ...] = BORDER_RGB) -> np.ndarray:
    """``cv2.warpAffine(image, M, size, INTER_LINEAR, BORDER_CONSTANT, border)`` for uint8 [H, W, C]
    images; ``size`` is (width, height)."""
    img = np.asarray(image)
    if img.dtype != np.uint8 or img.ndim != 3:
        raise ValueError("expected a uint8 image [height, width, channels]")
    H, W, C = img.shape
    out_w, out_h = size
    inv = invert_affine(M)
    xs = np.arange(out_w, dtype=np.float64)
    ys = np.arange(out_h, dtype=np.float64)
    adelta = np.rint(inv[0, 0] * xs * 1024).astype(np.int64)
    bdelta = np.rint(inv[1, 0] * xs * 1024).astype(np.int64)
    x0 = np.rint((inv[0, 1] * ys + inv[0, 2]) * 1024).astype(np.int64) + 16
    y0 = np.rint((inv[1, 1] * ys + inv[1, 2]) * 1024).astype(np.int64) + 16
    X = (x0[:, None] + adelta[None, :]) >> 5
    Y = (y0[:, None] + bdelta[None, :]) >> 5
    sx, fx = np.clip(X >> 5, -32768, 32767), X & 31
    sy, fy = np.clip(Y >> 5, -32768, 32767), Y & 31
    w00 = (32 - fx) * (32 - fy) * 32
    w01 = fx * (32 - fy) * 32
    w10 = (32 - fx) * fy * 32
    w11 = fx * fy * 32
    border_arr = np.asarray(border[:C], dtype=np.int64)
    src = img.astype(np.int64)

    def tap(yy, xx):
        inside = (xx >= 0) & (xx < W) & (yy >= 0) & (yy < H)
        v = src[np.clip(yy, 0, H - 1), np.clip(xx, 0, W - 1)]
        return np.where(inside[..., None], v, border_arr)

    acc = (tap(sy, sx) * w00[..., None] + tap(sy, sx + 1) * w01[..., None]
           + tap(sy + 1, sx) * w10[..., None] + tap(sy + 1, sx + 1) * w11[..., None])
    return np.clip((acc + (1 << 14)) >> 15, 0, 255).astype(np.uint8)


def align_face(image_rgb: np.ndarray, points: np.ndarray, size: int = 512) -> Tuple[np.ndarray, np.ndarray]:
    """(aligned face [size, size, 3] uint8 RGB, the affine map [2, 3]) from 5 points."""
    template = FFHQ_TEMPLATE_512 * (size / 512.0)
    M = estimate_similarity_lmeds(points, template)
    return warp_affine_bilinear(image_rgb, M, (size, size)), M
