"""FLAME, the head model SkyReels-A1's 3D landmark driver poses (own torch code; the official
driver uses SMIRK's copy of FLAME_PyTorch).

Files (the official ``pretrained_models/`` layout, i.e. the A1 folder's ``FLAME/`` and ``smirk/``):

* ``FLAME/generic_model.pkl``: the FLAME 2020 model, a Python 2 pickle holding NumPy arrays,
  ``chumpy`` arrays and a ``scipy.sparse`` joint regressor.  It is read with a restricted
  unpickler (:mod:`..loading.safe_pickle`) that admits only those types, through stand-ins that
  keep the stored data; neither chumpy nor anything else named by the file is imported or run.
* ``FLAME/head_template.obj`` (optional): the renderer takes the triangles from it; without it
  the pickle's ``f`` (the same FLAME topology) is used.
* ``smirk/l_eyelid.npy``, ``smirk/r_eyelid.npy``: per-vertex eyelid-closing offsets.
* ``smirk/mediapipe_landmark_embedding.npz``: the 105 mediapipe points on the FLAME surface
  (a triangle and barycentric weights each).

The model: shape (300) and expression (50) blend shapes, pose blend shapes, and linear blend
skinning over 5 joints (global, neck, jaw, two eyes) with axis-angle rotations; then the eyelid
offsets.  :meth:`Flame.project` applies SMIRK's orthographic camera ``[s, tx, ty]`` (y and z
flipped) and returns the 105 embedded points plus the 8 eye vertices the renderer appends, in
the 224 crop's NDC.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Dict, Optional

import numpy as np
import torch

from ..loading.safe_pickle import RefusedPickle, StateRecord, as_array, load_restricted
from . import landmark_style as style

N_SHAPE = 300
N_EXP = 50
FLAME_FILE = "generic_model.pkl"
TEMPLATE_OBJ = "head_template.obj"
EYELIDS = ("l_eyelid.npy", "r_eyelid.npy")
MP_EMBEDDING = "mediapipe_landmark_embedding.npz"


class ChumpyArray(StateRecord):
    """Stand-in for ``chumpy.ch.Ch``: its pickled state holds the array as ``x``."""


class SparseMatrix(StateRecord):
    """Stand-in for ``scipy.sparse`` csc / csr matrices: rebuilt dense from the stored arrays."""

    def to_dense(self) -> np.ndarray:
        s = self.state
        shape = s.get("_shape") or s.get("shape")
        fmt = s.get("format") or self._format
        data, indices, indptr = (np.asarray(s[k]) for k in ("data", "indices", "indptr"))
        rows, cols = int(shape[0]), int(shape[1])
        out = np.zeros((rows, cols), dtype=np.float64)
        major = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
        if fmt == "csc":
            np.add.at(out, (indices, major), data)
        else:
            np.add.at(out, (major, indices), data)
        return out


class CscMatrix(SparseMatrix):
    _format = "csc"


class CsrMatrix(SparseMatrix):
    _format = "csr"


FLAME_GLOBALS = {("chumpy.ch", "Ch"): ChumpyArray}
for _mod in ("scipy.sparse.csc", "scipy.sparse._csc"):
    FLAME_GLOBALS[(_mod, "csc_matrix")] = CscMatrix
for _mod in ("scipy.sparse.csr", "scipy.sparse._csr"):
    FLAME_GLOBALS[(_mod, "csr_matrix")] = CsrMatrix


def read_flame_pickle(path: str) -> Dict[str, object]:
    data = load_restricted(path, FLAME_GLOBALS, what="FLAME model file")
    if not isinstance(data, dict):
        raise RefusedPickle("%s is not a FLAME model (a dict of arrays)" % os.path.basename(path))
    need = ("v_template", "shapedirs", "posedirs", "J_regressor", "kintree_table", "weights", "f")
    missing = [k for k in need if k not in data]
    if missing:
        raise RefusedPickle("%s is not a FLAME model: %s missing" % (os.path.basename(path), ", ".join(missing)))
    return data


def read_obj_faces(path: str) -> np.ndarray:
    """The triangles [F, 3] (0-based vertex indices) of a Wavefront .obj."""
    faces = []
    with open(path, "r", encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith("f "):
                idx = [int(tok.split("/")[0]) for tok in line.split()[1:4]]
                faces.append([i - 1 for i in idx])
    if not faces:
        raise ValueError("%s has no triangles" % path)
    return np.asarray(faces, dtype=np.int64)


def batch_rodrigues(rot_vecs: torch.Tensor) -> torch.Tensor:
    """[N, 3] axis-angle -> [N, 3, 3] (FLAME's convention: angle = |r + 1e-8|)."""
    angle = torch.norm(rot_vecs + 1e-8, dim=1, keepdim=True)
    d = rot_vecs / angle
    cos, sin = torch.cos(angle)[:, :, None], torch.sin(angle)[:, :, None]
    rx, ry, rz = d[:, 0:1], d[:, 1:2], d[:, 2:3]
    z = torch.zeros_like(rx)
    K = torch.cat([z, -rz, ry, rz, z, -rx, -ry, rx, z], dim=1).view(-1, 3, 3)
    eye = torch.eye(3, dtype=rot_vecs.dtype, device=rot_vecs.device)[None]
    return eye + sin * K + (1 - cos) * torch.bmm(K, K)


def rigid_transforms(rot_mats: torch.Tensor, joints: torch.Tensor, parents: torch.Tensor) -> torch.Tensor:
    """[B, J, 4, 4] skinning transforms (world transform of each joint, rest joint removed)."""
    B, J = joints.shape[:2]
    rel = joints.clone()
    rel[:, 1:] = joints[:, 1:] - joints[:, parents[1:]]
    local = torch.zeros(B, J, 4, 4, dtype=joints.dtype, device=joints.device)
    local[:, :, :3, :3] = rot_mats
    local[:, :, :3, 3] = rel
    local[:, :, 3, 3] = 1
    world = [local[:, 0]]
    for j in range(1, J):
        world.append(world[int(parents[j])] @ local[:, j])
    world = torch.stack(world, dim=1)
    rest = torch.einsum("bjik,bjk->bji", world[:, :, :3, :3], joints)
    out = world.clone()
    out[:, :, :3, 3] = world[:, :, :3, 3] - rest
    return out


@dataclass
class FlameFiles:
    flame_dir: str
    smirk_dir: str

    @property
    def model(self) -> str:
        return os.path.join(self.flame_dir, FLAME_FILE)

    def missing(self):
        need = [self.model] + [os.path.join(self.smirk_dir, n) for n in EYELIDS + (MP_EMBEDDING,)]
        return [p for p in need if not os.path.isfile(p)]


class Flame(torch.nn.Module):
    def __init__(self, data: Dict[str, object], eyelids, embedding, faces: Optional[np.ndarray] = None,
                 n_shape: int = N_SHAPE, n_exp: int = N_EXP):
        super().__init__()
        arr = {k: as_array(data[k], k) for k in ("v_template", "shapedirs", "posedirs", "J_regressor",
                                                  "kintree_table", "weights", "f")}
        v = torch.as_tensor(np.asarray(arr["v_template"], dtype=np.float32))
        V = v.shape[0]
        sd = torch.as_tensor(np.asarray(arr["shapedirs"], dtype=np.float32))
        if sd.dim() != 3 or sd.shape[0] != V or sd.shape[2] < N_SHAPE + 1:
            raise ValueError("FLAME shapedirs %s do not fit %d vertices with %d shape components and expressions"
                             % (list(sd.shape), V, N_SHAPE))
        # shape components first, expression components from column 300 (as FLAME_PyTorch slices them)
        self.n_shape, self.n_exp = n_shape, min(n_exp, sd.shape[2] - N_SHAPE)
        self.register_buffer("v_template", v)
        self.register_buffer("shapedirs", torch.cat([sd[:, :, :n_shape], sd[:, :, N_SHAPE:N_SHAPE + self.n_exp]], 2))
        pd = np.asarray(arr["posedirs"], dtype=np.float32)
        self.register_buffer("posedirs", torch.as_tensor(np.ascontiguousarray(pd.reshape(-1, pd.shape[-1]).T)))
        self.register_buffer("J_regressor", torch.as_tensor(np.asarray(arr["J_regressor"], dtype=np.float32)))
        parents = np.asarray(arr["kintree_table"])[0].astype(np.int64)
        parents[0] = -1
        self.register_buffer("parents", torch.as_tensor(parents))
        self.register_buffer("lbs_weights", torch.as_tensor(np.asarray(arr["weights"], dtype=np.float32)))
        tri = faces if faces is not None else np.asarray(arr["f"]).astype(np.int64)
        self.register_buffer("faces", torch.as_tensor(np.asarray(tri, dtype=np.int64)))
        l_eyelid, r_eyelid = (torch.as_tensor(np.asarray(e, dtype=np.float32)).reshape(1, V, 3) for e in eyelids)
        self.register_buffer("l_eyelid", l_eyelid)
        self.register_buffer("r_eyelid", r_eyelid)
        self.register_buffer("mp_faces", torch.as_tensor(np.asarray(embedding["lmk_face_idx"]).astype(np.int64)))
        self.register_buffer("mp_bary", torch.as_tensor(np.asarray(embedding["lmk_b_coords"], dtype=np.float64)))
        joints = self.J_regressor.shape[0]
        if self.lbs_weights.shape != (V, joints) or self.posedirs.shape[0] != (joints - 1) * 9:
            raise ValueError("FLAME skinning arrays do not match: weights %s, posedirs %s for %d joints"
                             % (list(self.lbs_weights.shape), list(self.posedirs.shape), joints))
        if self.mp_faces.shape[0] != len(style.INDEX_MAPPING):
            raise ValueError("the mediapipe landmark embedding has %d points, expected %d"
                             % (self.mp_faces.shape[0], len(style.INDEX_MAPPING)))
        if V <= max(style.EYE_VERTICES_RIGHT + style.EYE_VERTICES_LEFT):
            raise ValueError("the FLAME mesh has %d vertices; the renderer's eye vertices need the FLAME "
                             "topology (5023)" % V)

    @classmethod
    def from_files(cls, files: FlameFiles) -> "Flame":
        missing = files.missing()
        if missing:
            raise FileNotFoundError("the 3D landmark driver needs " + ", ".join(missing))
        data = read_flame_pickle(files.model)
        eyelids = [np.load(os.path.join(files.smirk_dir, n), allow_pickle=False) for n in EYELIDS]
        with np.load(os.path.join(files.smirk_dir, MP_EMBEDDING), allow_pickle=False) as z:
            embedding = {k: z[k] for k in ("lmk_face_idx", "lmk_b_coords")}
        obj = os.path.join(files.flame_dir, TEMPLATE_OBJ)
        faces = read_obj_faces(obj) if os.path.isfile(obj) else None
        return cls(data, eyelids, embedding, faces)

    def forward(self, params: Dict[str, torch.Tensor]) -> torch.Tensor:
        """Vertices [B, V, 3] from SMIRK/FLAME parameters (``shape_params``, ``expression_params``,
        ``pose_params``, ``jaw_params``, ``eye_pose_params``, ``eyelid_params``)."""
        B = params["shape_params"].reshape(-1, params["shape_params"].shape[-1]).shape[0]
        dev = self.v_template.device

        def get(name, width):
            v = params.get(name)
            v = torch.zeros(B, width, device=dev) if v is None else v.reshape(B, -1).float().to(dev)
            if v.shape[1] < width:
                v = torch.cat([v, torch.zeros(B, width - v.shape[1], device=dev)], 1)
            return v[:, :width]

        betas = torch.cat([get("shape_params", self.n_shape), get("expression_params", self.n_exp)], 1)
        pose = torch.cat([get("pose_params", 3), get("neck_pose_params", 3), get("jaw_params", 3),
                          get("eye_pose_params", 6)], 1)
        v_shaped = self.v_template[None] + torch.einsum("bl,mkl->bmk", betas, self.shapedirs)
        joints = torch.einsum("bik,ji->bjk", v_shaped, self.J_regressor)
        rot = batch_rodrigues(pose.view(-1, 3)).view(B, -1, 3, 3)
        eye = torch.eye(3, dtype=rot.dtype, device=rot.device)
        v_posed = v_shaped + (torch.matmul((rot[:, 1:] - eye).reshape(B, -1), self.posedirs)).view(B, -1, 3)
        A = rigid_transforms(rot, joints, self.parents)
        T = torch.matmul(self.lbs_weights[None], A.view(B, A.shape[1], 16)).view(B, -1, 4, 4)
        verts = torch.einsum("bvij,bvj->bvi", T[:, :, :3, :3], v_posed) + T[:, :, :3, 3]
        if "eyelid_params" in params and params["eyelid_params"] is not None:
            lid = get("eyelid_params", 2)
            verts = verts + self.r_eyelid * lid[:, 1:2, None] + self.l_eyelid * lid[:, 0:1, None]
        return verts

    def project(self, vertices: torch.Tensor, cam: torch.Tensor) -> torch.Tensor:
        """The renderer's 113 points [B, 113, 3] in the crop's NDC: the 105 embedded mediapipe
        points then the 8 eye vertices, after the orthographic camera [s, tx, ty] (y, z flipped)."""
        cam = cam.reshape(-1, 3).float().to(vertices.device)
        xy = (vertices[:, :, :2] + cam[:, None, 1:]) * cam[:, None, :1]
        z = vertices[:, :, 2:] * cam[:, None, :1]
        tv = torch.cat([xy[:, :, :1], -xy[:, :, 1:2], -z], 2)
        tri = self.faces[self.mp_faces]                                  # [105, 3]
        pts = (tv.double()[:, tri] * self.mp_bary[None, :, :, None]).sum(2).float()
        eyes = tv[:, list(style.EYE_VERTICES_RIGHT + style.EYE_VERTICES_LEFT)]
        return torch.cat([pts, eyes], 1)
