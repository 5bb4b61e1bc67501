"""Golden runners for the SkyReels-A1 landmark driver (../shared/golden/a1, README A1.6 / A1.7):
the control-frame drawing (frame 0 and the retargeted frames) and the FLAME-parameter
retargeting.  The engine kinds of the same folder are in ``a1.py``.

The cases store float64 landmark pixels; the shared loader upcasts floats to float32, so these
runners read the case file's tensors again in their stored dtype.
"""
import numpy as np
import torch

from golden_cases import assert_close

from skyreels_pack.models.a1 import landmark_style as style
from skyreels_pack.models.a1.landmark_draw import draw_reference_crop, draw_retarget_crop, paste
from skyreels_pack.models.a1.retarget import (compose_flame_params, crop_face, landmark_relation,
                                               matrix_to_rodrigues, place_pupils, project_points,
                                               rodrigues_to_matrix, smooth_poses)

FAMILY = "a1"



def _raw(case):
    """{'inputs.x': tensor, ...} in the stored dtypes."""
    from safetensors import safe_open

    with safe_open(case.path, framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}


def _style_matches(params_connections, ours):
    got = [[a, b, *colour, 1] for a, b, colour in ours]
    assert got == params_connections, "the connection list differs from the official visualizer's"


def _check_f64(case, raw, out):
    """Compares the float64 outputs in float64 (the shared loader hands them over as float32)."""
    for name, got in out.items():
        want = raw["outputs." + name]
        if want.dtype == torch.float64:
            assert_close("%s:%s(float64)" % (case.name, name), got, want, case.atol, case.rtol)
    return out


def run_draw_ref(case):
    raw = _raw(case)
    _style_matches(case.params["connections"], style.reference_connections())
    assert [[i, *c] for i, c in style.REFERENCE_PUPILS] == case.params["pupils"]
    assert [list((style.REFERENCE_NOSE[0],) + style.REFERENCE_NOSE[1])] == case.params["nose"]
    face_hw = raw["inputs.face_hw"].tolist()
    crop = draw_reference_crop(raw["inputs.lmks"].numpy(), face_hw)
    frame = paste(crop, raw["inputs.frame_hw"].tolist(), raw["inputs.y1x1"].tolist())
    return {"crop": torch.from_numpy(crop), "frame": torch.from_numpy(frame)}


def run_draw_retarget(case):
    raw = _raw(case)
    p = case.params
    _style_matches(p["connections"], style.retarget_connections())
    assert list(style.INDEX_MAPPING) == p["index_mapping"]
    assert list(style.EYE_CONTOUR_468) == p["ref_idx_468"] and list(style.EYE_CONTOUR_473) == p["ref_idx_473"]
    face_hw = raw["inputs.face_hw"].tolist()
    tform = crop_face(raw["inputs.source_kpt"].numpy(), p["crop_scale"], p["crop_size"])
    pix, norm = project_points(raw["inputs.v_selected"], tform, face_hw, p["crop_size"])
    left, right = place_pupils(raw["inputs.driving_kpt"].numpy(), pix, p["ransac_threshold"])
    crop = draw_retarget_crop(norm, left, right, face_hw)
    frame = paste(crop, raw["inputs.frame_hw"].tolist(), raw["inputs.y1x1"].tolist())
    return _check_f64(case, raw, {"tform": torch.from_numpy(tform), "lmk_pix": torch.from_numpy(pix), "lmk_norm": torch.from_numpy(norm),
            "pupil_left": torch.from_numpy(left.astype(np.int64)),
            "pupil_right": torch.from_numpy(right.astype(np.int64)),
            "crop": torch.from_numpy(crop), "frame": torch.from_numpy(frame)})


def run_retarget(case):
    raw = _raw(case)
    p = case.params
    names = list(p["flame_dims"])
    source = {k: raw["inputs.source_" + k] for k in names}
    frames = raw["inputs.driving_pose_params"].shape[0]
    driving = [{k: raw["inputs.driving_" + k][i] for k in names} for i in range(frames)]
    smoothed = torch.stack(smooth_poses([d["pose_params"] for d in driving], p["alpha"]))
    composed = compose_flame_params(source, driving, p["alpha"])
    out = {"smoothed_pose": smoothed}
    for k in names:
        out["flame_" + k] = torch.stack([c[k] for c in composed])
    out["rod_matrices"] = torch.cat([rodrigues_to_matrix(v[None]) for v in raw["inputs.rod_vectors"]])
    out["rod_back"] = torch.cat([matrix_to_rodrigues(m[None]) for m in raw["inputs.rot_matrices"]])
    kpt = raw["inputs.crop_kpt"].numpy()
    out["crop_tform"] = torch.from_numpy(crop_face(kpt))
    out["relation_468"] = torch.from_numpy(landmark_relation(kpt, 468, style.EYE_CONTOUR_468))
    out["relation_473"] = torch.from_numpy(landmark_relation(kpt, 473, style.EYE_CONTOUR_473))
    return _check_f64(case, raw, out)


RUNNERS = {
    "a1_landmark_draw_ref": run_draw_ref,
    "a1_landmark_draw_retarget": run_draw_retarget,
    "a1_retarget": run_retarget,
}
