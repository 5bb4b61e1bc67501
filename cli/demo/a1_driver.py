"""Demo files of the A1 landmark driver, in the release's formats and places
(``diffusion_models/SkyReels-A1/``):

* ``smirk/SMIRK_em1.pt``: SMIRK's encoder with the real architecture and key names (a flat
  ``torch.save`` state dict, ``smirk_encoder.*`` plus a generator tensor the loader drops),
  random backbones and heads scaled like SMIRK's initialisation (pose ~ 0, camera scale 8);
* ``FLAME/generic_model.pkl``: a FLAME-format pickle (protocol 2, ``chumpy.ch.Ch`` arrays and a
  ``scipy.sparse.csc.csc_matrix`` joint regressor, as the real file; written without chumpy or
  scipy) of a stand-in head: 5023 vertices,
  5 joints, 300 + 50 blend shapes, with the 105 mediapipe points laid out as a simple face;
  ``FLAME/head_template.obj`` with its triangles;
* ``smirk/l_eyelid.npy``, ``smirk/r_eyelid.npy``, ``smirk/mediapipe_landmark_embedding.npz``;
* ``mediapipe/bs2eye.npy`` and the face landmarker ``mediapipe/face_landmarker_v2_with_blendshapes.task``:
  the real MediaPipe model (Apache-2.0), copied from ``$SKYREELS_MEDIAPIPE_DIR`` or the shared
  test models (``../shared/models/mediapipe``) when present: a landmark model cannot be faked
  with random weights.
"""
from __future__ import annotations

import math
import os
import pickle
import shutil
import sys
import types
from typing import Dict, Tuple

import numpy as np
import torch

from ...models.a1 import landmark_style as style
from ..shipped.a1_driver import A1_ROOT, LANDMARKER, MODELS

VERSION = 1
V = 5023
JOINTS = 5
LANDMARKER_FILE = os.path.basename(LANDMARKER)


def _root(root: str) -> str:
    return os.path.join(root, "diffusion_models", A1_ROOT)


# --------------------------------------------------------------------------- a stand-in face


def _chain(a: Tuple[float, float], b: Tuple[float, float], n: int, bulge: float) -> list:
    """n + 1 points from a to b along a gentle arc (bulge in y at the middle)."""
    out = []
    for j in range(n + 1):
        u = j / n
        out.append((a[0] + (b[0] - a[0]) * u, a[1] + (b[1] - a[1]) * u + bulge * math.sin(math.pi * u)))
    return out


def face_layout() -> Dict[int, Tuple[float, float, float]]:
    """Metre positions (x to the subject's left, y up, z forward) of the 105 embedded mediapipe
    points: eye rings, brow arcs, nose line and nostrils, lip rings."""
    pos: Dict[int, Tuple[float, float]] = {}
    for cx, ring in ((-0.032, style.EYE_CONTOUR_468), (0.032, style.EYE_CONTOUR_473)):
        for k, i in enumerate(ring):
            th = math.pi + 2 * math.pi * k / 16
            pos[i] = (cx + 0.014 * math.cos(th), 0.03 + 0.006 * math.sin(th))
    brows = {  # (outer -> inner) lower arc, upper arc, per side
        -1: ((46, 53, 52, 65, 55), (70, 63, 105, 66, 107)),
        1: ((276, 283, 282, 295, 285), (300, 293, 334, 296, 336)),
    }
    for side, (lower, upper) in brows.items():
        for ids, y, bulge in ((lower, 0.046, 0.004), (upper, 0.053, 0.005)):
            for i, (x, yy) in zip(ids, _chain((side * 0.056, y - 0.004), (side * 0.012, y), 4, bulge)):
                pos[i] = (x, yy)
    for i, y in zip((168, 6, 197, 195, 5, 4), (0.03, 0.018, 0.006, -0.004, -0.012, -0.018)):
        pos[i] = (0.0, y)
    for i, (x, y) in zip((129, 98, 97, 2, 326, 327, 358),
                         ((-0.014, -0.025), (-0.01, -0.029), (-0.005, -0.031), (0.0, -0.032), (0.005, -0.031),
                          (0.01, -0.029), (0.014, -0.025))):
        pos[i] = (x, y)
    lips = (  # chains of the lip rings: (ids from the corner to the middle, corner, middle, bulge)
        ((61, 146, 91, 181, 84, 17), (-0.025, -0.05), (0.0, -0.062), -0.002),
        ((291, 375, 321, 405, 314, 17), (0.025, -0.05), (0.0, -0.062), -0.002),
        ((61, 185, 40, 39, 37, 0), (-0.025, -0.05), (0.0, -0.043), 0.002),
        ((291, 409, 270, 269, 267, 0), (0.025, -0.05), (0.0, -0.043), 0.002),
        ((78, 95, 88, 178, 87, 14), (-0.02, -0.05), (0.0, -0.0525), -0.001),
        ((308, 324, 318, 402, 317, 14), (0.02, -0.05), (0.0, -0.0525), -0.001),
        ((78, 191, 80, 81, 82, 13), (-0.02, -0.05), (0.0, -0.0495), 0.001),
        ((308, 415, 310, 311, 312, 13), (0.02, -0.05), (0.0, -0.0495), 0.001),
    )
    for ids, a, b, bulge in lips:
        for i, p in zip(ids, _chain(a, b, 5, bulge)):
            pos[i] = p
    assert set(pos) == set(style.INDEX_MAPPING)
    return {i: (x, y, 0.05 - 6.0 * x * x - 3.0 * y * y + (0.015 if i == 4 else 0.0)) for i, (x, y) in pos.items()}


JAW_POINTS = (146, 91, 181, 84, 17, 314, 405, 321, 375, 95, 88, 178, 87, 14, 317, 402, 318, 324)
UPPER_LID_RIGHT = (173, 157, 158, 159, 160, 161, 246)
UPPER_LID_LEFT = (466, 388, 387, 386, 385, 384, 398)


def flame_arrays(seed: int = 31) -> Dict[str, np.ndarray]:
    g = np.random.default_rng(seed)
    layout = face_layout()
    v = np.zeros((V, 3), dtype=np.float64)
    # the rest of the head: an ellipsoid behind the face
    u = g.uniform(0, 2 * np.pi, V)
    w = g.uniform(-1, 1, V)
    r = np.sqrt(1 - w * w)
    v[:] = np.stack([0.08 * r * np.cos(u), 0.11 * w, -0.05 + 0.09 * r * np.sin(u)], 1)
    faces = []
    weights = np.zeros((V, JOINTS), dtype=np.float64)
    weights[:, 1] = 1.0
    tri = np.array([[-0.001, -0.0006, 0.0], [0.001, -0.0006, 0.0], [0.0, 0.0012, 0.0]])
    lid = {i: np.zeros((V, 3)) for i in ("l", "r")}
    for k, mp in enumerate(style.INDEX_MAPPING):
        ids = [3 * k, 3 * k + 1, 3 * k + 2]
        v[ids] = np.asarray(layout[mp]) + tri
        faces.append(ids)
        if mp in JAW_POINTS:
            weights[ids] = np.eye(JOINTS)[2]
        if mp in UPPER_LID_RIGHT:
            lid["r"][ids, 1] = -0.011
        if mp in UPPER_LID_LEFT:
            lid["l"][ids, 1] = -0.011
    for ids, (cx, joint) in ((style.EYE_VERTICES_RIGHT, (-0.032, 3)), (style.EYE_VERTICES_LEFT, (0.032, 4))):
        for j, i in enumerate(ids):
            v[i] = (cx + 0.004 * math.cos(j * math.pi / 2), 0.03 + 0.004 * math.sin(j * math.pi / 2), 0.04)
            weights[i] = np.eye(JOINTS)[joint]
    joint_pos = [(0, -0.12, -0.04), (0, -0.08, -0.04), (0, -0.03, -0.02), (-0.032, 0.03, 0.01), (0.032, 0.03, 0.01)]
    regressor = np.zeros((JOINTS, V))
    for j, p in enumerate(joint_pos):
        v[V - JOINTS + j] = p
        regressor[j, V - JOINTS + j] = 1.0
    rest = np.arange(3 * len(style.INDEX_MAPPING), V - JOINTS)
    rest = rest[~np.isin(rest, style.EYE_VERTICES_RIGHT + style.EYE_VERTICES_LEFT)]
    faces += [list(rest[i:i + 3]) for i in range(0, len(rest) - 2, 3)]
    shapedirs = g.standard_normal((V, 3, 350)) * 2e-4
    mouth = np.zeros(V, dtype=bool)
    for k, mp in enumerate(style.INDEX_MAPPING):
        if mp in JAW_POINTS:
            mouth[3 * k:3 * k + 3] = True
    shapedirs[mouth, 1, 300:310] -= 0.004 * g.uniform(0.5, 1.0, (mouth.sum(), 10))  # expressions open the mouth
    return {
        "v_template": v,
        "shapedirs": shapedirs.astype(np.float16),
        "posedirs": (g.standard_normal((V, 3, (JOINTS - 1) * 9)) * 1e-5).astype(np.float32),
        "J_regressor": regressor,
        "kintree_table": np.array([[2 ** 32 - 1, 0, 1, 1, 1], list(range(JOINTS))], dtype=np.int64),
        "weights": weights,
        "f": np.asarray(faces, dtype=np.uint32),
        "l_eyelid": lid["l"].astype(np.float32),
        "r_eyelid": lid["r"].astype(np.float32),
    }


class _Record:
    """Pickles as an instance of the class named by (module, name), holding its ``__dict__``."""


def _stand_in(module: str, name: str):
    cls = type(name, (_Record,), {})
    cls.__module__, cls.__qualname__ = module, name
    return cls


def chumpy_array(cls, a: np.ndarray):
    """What chumpy's ``Ch`` pickles: the array as ``x`` in its ``__dict__``."""
    c = cls()
    c.__dict__.update({"x": a, "_dirty_vars": set(), "_itr": None, "_depends_on_deps": {},
                       "_make_dense": False, "_make_sparse": False})
    return c


def csc_matrix(cls, dense: np.ndarray):
    """What a scipy csc_matrix pickles (its ``__dict__``), from a dense [rows, cols] array."""
    rows, cols = np.nonzero(dense.T)            # column-major: (column, row) pairs in column order
    m = cls()
    m.__dict__.update({"_shape": tuple(dense.shape), "maxprint": 50, "format": "csc",
                       "data": dense.T[rows, cols].astype(np.float64), "indices": cols.astype(np.int32),
                       "indptr": np.searchsorted(rows, np.arange(dense.shape[1] + 1)).astype(np.int32),
                       "_has_sorted_indices": True})
    return m


def _pickle_with_stand_ins(obj, path: str, classes) -> None:
    """Pickles ``obj`` with protocol 2 (like the Python 2 original) while throwaway modules make the
    stand-in ``classes`` importable under their real names (chumpy, scipy.sparse need not be
    installed); the previous modules are restored afterwards."""
    saved = {}
    try:
        for cls in classes:
            parts = cls.__module__.split(".")
            for i in range(1, len(parts) + 1):
                name = ".".join(parts[:i])
                if name not in sys.modules or i == len(parts):
                    saved.setdefault(name, sys.modules.get(name))
                    mod = types.ModuleType(name) if i == len(parts) or name not in sys.modules else sys.modules[name]
                    sys.modules[name] = mod
            setattr(sys.modules[cls.__module__], cls.__qualname__, cls)
        tmp = path + ".part"
        with open(tmp, "wb") as f:
            pickle.dump(obj, f, protocol=2)
        os.replace(tmp, path)
    finally:
        for name, mod in saved.items():
            if mod is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = mod


def write_flame(root: str) -> None:
    a = flame_arrays()
    flame_dir = os.path.join(_root(root), "FLAME")
    smirk_dir = os.path.join(_root(root), "smirk")
    os.makedirs(flame_dir, exist_ok=True)
    os.makedirs(smirk_dir, exist_ok=True)
    Ch, Csc = _stand_in("chumpy.ch", "Ch"), _stand_in("scipy.sparse.csc", "csc_matrix")
    model = {k: a[k] for k in ("posedirs", "kintree_table", "weights", "f")}
    model["v_template"] = chumpy_array(Ch, a["v_template"])
    model["shapedirs"] = chumpy_array(Ch, a["shapedirs"])
    model["J_regressor"] = csc_matrix(Csc, a["J_regressor"])
    model["J"] = a["J_regressor"] @ a["v_template"]
    model["bs_style"], model["bs_type"] = "lbs", "lrotmin"
    _pickle_with_stand_ins(model, os.path.join(*([root] + list(MODELS["a1_flame"]))), (Ch, Csc))
    with open(os.path.join(flame_dir, "head_template.obj"), "w") as f:
        f.write("# stand-in FLAME head (demo)\n")
        f.writelines("v %.6f %.6f %.6f\n" % tuple(p) for p in a["v_template"])
        f.writelines("f %d %d %d\n" % tuple(int(i) + 1 for i in t) for t in a["f"])
    np.save(os.path.join(smirk_dir, "l_eyelid.npy"), a["l_eyelid"])
    np.save(os.path.join(smirk_dir, "r_eyelid.npy"), a["r_eyelid"])
    n = len(style.INDEX_MAPPING)
    np.savez(os.path.join(smirk_dir, "mediapipe_landmark_embedding.npz"),
             lmk_face_idx=np.arange(n, dtype=np.int64), lmk_b_coords=np.full((n, 3), 1 / 3),
             landmark_indices=np.asarray(style.INDEX_MAPPING, dtype=np.int64))
    mp_dir = os.path.join(_root(root), "mediapipe")
    os.makedirs(mp_dir, exist_ok=True)
    np.save(os.path.join(mp_dir, "bs2eye.npy"),
            (np.random.default_rng(32).standard_normal((52, 6)) * 0.05).astype(np.float32))


def write_smirk(root: str) -> None:
    from ...models.a1.smirk import PREFIX, SmirkEncoder
    from .common import randomize

    model = SmirkEncoder()
    sd = randomize(model, 33)
    for k in list(sd):
        if k.endswith("running_mean"):
            sd[k] = torch.zeros_like(sd[k])
        elif k.endswith("running_var"):
            sd[k] = torch.ones_like(sd[k])
    head = "pose_encoder.pose_cam_layers.0."
    sd[head + "weight"] = sd[head + "weight"] * 1e-3
    sd[head + "weight"][3] = 0
    sd[head + "bias"] = torch.tensor([0.0, 0.0, 0.0, 8.0, 0.0, 0.0])
    sd["shape_encoder.shape_layers.0.weight"] *= 0.1
    sd["expression_encoder.expression_layers.0.weight"] *= 0.1
    out = {PREFIX + k: v for k, v in sd.items()}
    out["smirk_generator.stand_in.weight"] = torch.zeros(4, 4)   # the real file holds the generator too
    path = os.path.join(*([root] + list(MODELS["a1_smirk"])))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    torch.save(out, path + ".part")
    os.replace(path + ".part", path)


def landmarker_source() -> str:
    """Where a real FaceLandmarker .task is (for the demo folder), or ''."""
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    for folder in (os.environ.get("SKYREELS_MEDIAPIPE_DIR", ""),
                   os.path.join(here, "..", "shared", "models", "mediapipe")):
        p = os.path.join(folder, LANDMARKER_FILE) if folder else ""
        if p and os.path.isfile(p):
            return os.path.normpath(p)
    return ""


def write_landmarker(root: str) -> None:
    src = landmarker_source()
    if not src:
        return
    dst = os.path.join(*([root] + list(MODELS["a1_landmarker"])))
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    shutil.copyfile(src, dst + ".part")
    os.replace(dst + ".part", dst)


WRITERS = (write_smirk, write_flame, write_landmarker)
