"""The 2D landmark retargeting (ours; needs no SMIRK or FLAME): the relative motion of the driving
face's 478 landmarks carried onto the portrait's own landmarks.

Per driving frame i, with D_i its landmarks and S the portrait's:

* head motion: the similarity A_i (scale, in-plane rotation, translation) that best maps the
  first driving frame's rigid points (forehead, temples, nose bridge, eye corners) onto frame
  i's; smoothed like the official head pose (p_i = alpha a_i + (1 - alpha) p_{i-1} on log
  scale, angle and translation, alpha 0.7);
* expression: what is left, E_i = A_i^-1(D_i) - D_0: lips, eyes, brows and the parts of a head
  turn that a similarity cannot express (yaw, pitch);
* the similarity B from the first driving face onto the portrait's (its scale k is the ratio of
  the face sizes) carries both: P_i = B A~_i B^-1 (S + e k R_B E_i), with A~_i the smoothed
  head motion raised to the head-pose strength and e the expression strength.

So the portrait starts from its own expression and position, and moves as the driving face
moves relative to its first frame.  The official 3D path differs: it takes the driving
expression as it is (not relative), only the head's rotation (the portrait keeps its place and
size) and works through a 3D head model.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Tuple

import numpy as np

# Points that move with the skull, not with the expression.
RIGID_POINTS = (10, 338, 297, 332, 284, 251, 389, 356, 454, 234, 127, 162, 21, 54, 103, 67, 109,
                168, 6, 197, 195, 5, 4, 1, 33, 133, 362, 263)


@dataclass(frozen=True)
class Similarity:
    """x -> scale R(angle) x + shift."""
    scale: float = 1.0
    angle: float = 0.0
    shift: Tuple[float, float] = (0.0, 0.0)

    def matrix(self) -> np.ndarray:
        c, s = math.cos(self.angle) * self.scale, math.sin(self.angle) * self.scale
        return np.array([[c, -s, self.shift[0]], [s, c, self.shift[1]]], dtype=np.float64)

    def apply(self, pts: np.ndarray) -> np.ndarray:
        m = self.matrix()
        return pts @ m[:, :2].T + m[:, 2]

    def inverse(self) -> "Similarity":
        inv = Similarity(1.0 / self.scale, -self.angle)
        t = inv.apply(np.asarray(self.shift, dtype=np.float64)[None])[0]
        return Similarity(inv.scale, inv.angle, (-t[0], -t[1]))

    def rotate(self, vecs: np.ndarray) -> np.ndarray:
        """The linear part only (for displacements)."""
        return vecs @ self.matrix()[:, :2].T

    def power(self, h: float) -> "Similarity":
        """The motion scaled by strength h (scale^h, h angle, h shift)."""
        return Similarity(self.scale ** h, self.angle * h, (self.shift[0] * h, self.shift[1] * h))


def fit_similarity(src: np.ndarray, dst: np.ndarray) -> Similarity:
    """Least-squares similarity with dst ~ scale R src + shift (Umeyama, 2D)."""
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    ms, md = src.mean(0), dst.mean(0)
    a, b = src - ms, dst - md
    var = (a ** 2).sum()
    if var <= 0:
        raise ValueError("degenerate landmarks (all points equal)")
    # complex-number form: b ~ z a with z = scale e^{i angle}
    za = a[:, 0] + 1j * a[:, 1]
    zb = b[:, 0] + 1j * b[:, 1]
    z = (np.conj(za) * zb).sum() / var
    scale, angle = abs(z), math.atan2(z.imag, z.real)
    rot = Similarity(scale, angle)
    t = md - rot.apply(ms[None])[0]
    return Similarity(scale, angle, (float(t[0]), float(t[1])))


class Retarget2D:
    """Maps each driving frame's landmarks onto the portrait (call in frame order).

    Args:
        source: the portrait's landmarks [478, 2] in face-crop pixels.
        first: the first driving frame's landmarks [478, 2] (any pixel frame).
        expression_strength: e (1 = the driving face's full expression change).
        pose_strength: h (1 = the full head motion, 0 = the portrait keeps its pose).
        smoothing: weight of the previous head pose (official 0.3; 0 = none).
    """

    def __init__(self, source: np.ndarray, first: np.ndarray, expression_strength: float = 1.0,
                 pose_strength: float = 1.0, smoothing: float = 0.3):
        self.source = np.asarray(source, dtype=np.float64)[:, :2]
        self.first = np.asarray(first, dtype=np.float64)[:, :2]
        rigid = list(RIGID_POINTS)
        self.to_source = fit_similarity(self.first[rigid], self.source[rigid])
        self.expression = float(expression_strength)
        self.pose = float(pose_strength)
        self.alpha = 1.0 - float(smoothing)
        self._state = None  # (log scale, angle, tx, ty)

    def head_motion(self, driving: np.ndarray) -> Similarity:
        rigid = list(RIGID_POINTS)
        return fit_similarity(self.first[rigid], np.asarray(driving, dtype=np.float64)[rigid])

    def _smooth(self, a: Similarity) -> Similarity:
        v = np.array([math.log(a.scale), a.angle, a.shift[0], a.shift[1]])
        if self._state is not None:
            prev = self._state
            v[1] = prev[1] + math.remainder(v[1] - prev[1], 2 * math.pi)  # no jump across +-pi
            v = self.alpha * v + (1 - self.alpha) * prev
        self._state = v
        return Similarity(math.exp(v[0]), float(v[1]), (float(v[2]), float(v[3])))

    def __call__(self, driving: np.ndarray) -> np.ndarray:
        d = np.asarray(driving, dtype=np.float64)[:, :2]
        a = self.head_motion(d)
        residual = a.inverse().apply(d) - self.first
        moved = self.source + self.expression * self.to_source.rotate(residual)
        head = self._smooth(a).power(self.pose)
        b, b_inv = self.to_source, self.to_source.inverse()
        return b.apply(head.apply(b_inv.apply(moved)))
