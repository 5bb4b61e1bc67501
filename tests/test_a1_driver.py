"""The SkyReels-A1 landmark driver: the real FaceLandmarker on the example portrait and clip (2D
path, motion measured on the drawn pixels), the 3D path on the demo SMIRK / FLAME stand-ins,
FLAME's skinning, the restricted unpickler, SMIRK's loader, dropouts and the nodes."""
import math
import os
import pickle

import numpy as np
import pytest
import torch

from skyreels_pack.cli.shipped import a1_driver_inputs as inputs
from skyreels_pack.models.a1 import landmark_style as style
from skyreels_pack.models.a1.driver import DriverSettings, drive, face_box, fill_dropouts
from skyreels_pack.models.a1.face_detect import FaceLandmarks, FaceResult, NoFaceError
from skyreels_pack.models.a1.retarget_2d import Retarget2D, Similarity, fit_similarity
from skyreels_pack.models.loading.safe_pickle import RefusedPickle, load_restricted

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "workflows", "inputs")
TASK = os.path.join(ROOT, "..", "shared", "models", "mediapipe", "face_landmarker_v2_with_blendshapes.task")
SCALE = 720 / 330          # the example portrait (330 x 220) framed at 720 x 480


def _need_task():
    if not os.path.isfile(TASK):
        pytest.skip("the test FaceLandmarker is not here: %s" % TASK)
    pytest.importorskip("mediapipe")


@pytest.fixture(scope="module")
def portrait():
    from PIL import Image

    return np.array(Image.open(os.path.join(EXAMPLES, inputs.PORTRAIT)).convert("RGB"))


@pytest.fixture(scope="module")
def clip():
    from skyreels_pack.media.video_io import read_video

    frames, fps, audio = read_video(os.path.join(EXAMPLES, inputs.DRIVING))
    return frames, fps, audio


@pytest.fixture(scope="module")
def landmarker():
    _need_task()
    lm = FaceLandmarks(TASK, min_confidence=0.1, blendshapes=True)
    yield lm
    lm.close()


@pytest.fixture(scope="module")
def driven(portrait, clip, landmarker):
    frames, fps, _ = clip
    return drive(portrait, frames, landmarker, DriverSettings(retarget="2d"), fps=fps)


def _colour_centroid(frame: np.ndarray, colours) -> np.ndarray:
    mask = np.zeros(frame.shape[:2], dtype=bool)
    for c in colours:
        mask |= (frame == np.array(c, dtype=np.uint8)).all(axis=2)
    ys, xs = np.nonzero(mask)
    assert len(xs) > 5, "no pixels of %s drawn" % (colours,)
    return np.array([xs.mean(), ys.mean()])


def _measure(control: torch.Tensor):
    """Per control frame: the centroid of all drawn pixels and the eye line's angle (degrees,
    counter-clockwise on screen)."""
    frames = (control * 255).round().to(torch.uint8).numpy()
    cents, angles = [], []
    for f in frames[1:]:
        ys, xs = np.nonzero(f.any(axis=2))
        cents.append((xs.mean(), ys.mean()))
        right = _colour_centroid(f, [style.RIGHT_EYE_COLOUR])     # the person's right eye: image left
        left = _colour_centroid(f, [style.LEFT_EYE_COLOUR])
        d = left - right
        angles.append(-math.degrees(math.atan2(d[1], d[0])))
    return np.array(cents), np.array(angles)


def _fit(expected: np.ndarray, measured: np.ndarray):
    """(correlation, least-squares slope) of measured against expected motion."""
    e, m = expected - expected.mean(), measured - measured.mean()
    return float((e * m).sum() / math.sqrt((e * e).sum() * (m * m).sum())), float((e * m).sum() / (e * e).sum())


def _expected(indices, fps):
    motion = [inputs.head_motion(i / fps) for i in indices]
    return (np.array([m["dx"] for m in motion]) * SCALE, np.array([m["dy"] for m in motion]) * SCALE,
            np.array([m["roll"] for m in motion]))


# --------------------------------------------------------------------------- the real landmarker


def test_real_landmarker_finds_the_example_face(portrait, landmarker):
    face = landmarker.detect(portrait)
    assert face is not None
    assert face.points.shape == (478, 3) and face.blendshapes.shape == (52,)
    px = face.pixels()
    # inside the picture, eyes above the nose above the mouth, the person's right eye on the image left
    assert (px[:, 0] > 0).all() and (px[:, 0] < portrait.shape[1]).all()
    assert px[468, 1] < px[4, 1] < px[13, 1] and px[468, 0] < px[4, 0] < px[473, 0]


def test_driver_control_video_moves_with_the_head(driven, clip):
    frames, fps, _ = clip
    control = driven.control
    assert control.shape == (1 + len(driven.driving_indices), 480, 720, 3)
    assert len(driven.driving_indices) == 36 and driven.held == []
    cents, angles = _measure(control)
    ex, ey, roll = _expected(driven.driving_indices, fps)
    for name, exp, got in (("x shift", ex, cents[:, 0]), ("y shift", ey, cents[:, 1]), ("roll", roll, angles)):
        corr, slope = _fit(exp, got)
        assert corr > 0.9, "%s: the drawn landmarks do not follow the head (correlation %.2f)" % (name, corr)
        assert 0.7 < slope < 1.3, "%s: the drawn motion is %.2f x the head's" % (name, slope)
    # the swing is real: tens of pixels and degrees, not jitter
    assert np.ptp(cents[:, 0]) > 40 and np.ptp(angles) > 15


def test_driver_frame0_is_the_portraits_own_landmarks_and_frame1_matches_it(driven):
    f0 = (driven.control[0] * 255).round().to(torch.uint8).numpy()
    f1 = (driven.control[1] * 255).round().to(torch.uint8).numpy()
    # the reference style: 4x4 grey nose, 2x2 pupils; the retarget style: 5x5 white nose, 3x3 pupils
    assert (f0 == 200).all(axis=2).sum() == 16 and (f0 == 255).all(axis=2).sum() == 0
    assert (f1 == 255).all(axis=2).sum() == 25
    assert (f0 == np.array([10, 200, 250], np.uint8)).all(axis=2).sum() == 4
    assert (f1 == np.array([10, 200, 250], np.uint8)).all(axis=2).sum() == 9
    # the first driving frame is the portrait itself: the same face in the same place
    c0 = _colour_centroid(f0, [style.LEFT_EYE_COLOUR, style.RIGHT_EYE_COLOUR])
    c1 = _colour_centroid(f1, [style.LEFT_EYE_COLOUR, style.RIGHT_EYE_COLOUR])
    assert np.abs(c0 - c1).max() < 3
    x1, y1, x2, y2 = driven.face.out_box
    ys, xs = np.nonzero(f1.any(axis=2))
    assert xs.min() >= x1 and xs.max() < x2 and ys.min() >= y1 and ys.max() < y2


def test_head_pose_strength_zero_keeps_the_head_still(portrait, clip, landmarker, driven):
    frames, fps, _ = clip
    still = drive(portrait, frames[:24], landmarker, DriverSettings(retarget="2d", pose_strength=0.0), fps=fps)
    cents, angles = _measure(still.control)
    full, full_angles = _measure(driven.control[:still.control.shape[0]])
    assert np.ptp(cents[:, 0]) < 0.35 * np.ptp(full[:, 0])
    assert np.ptp(angles) < 0.35 * np.ptp(full_angles)


def test_driver_draws_at_other_sizes(portrait, clip, landmarker):
    frames, fps, _ = clip
    res = drive(portrait, frames[:6], landmarker, DriverSettings(retarget="2d"), width=128, height=96, fps=0)
    assert res.control.shape == (7, 96, 128, 3)
    x1, y1, x2, y2 = res.face.out_box
    assert 0 <= x1 < x2 <= 128 and 0 <= y1 < y2 <= 96
    assert (res.control[1:] > 0).any(dim=3).sum() > 6 * 50


def test_dropouts_are_held_or_named(portrait, clip, landmarker):
    frames, _, _ = clip
    clip8 = frames[:8].clone()
    clip8[3] = 0
    res = drive(portrait, clip8, landmarker, DriverSettings(retarget="2d", hold_frames=1), fps=0)
    assert res.held == [3] and res.control.shape[0] == 9
    clip8[4] = 0
    with pytest.raises(NoFaceError, match=r"driving frames 3 \(source frame 3\), 4 \(source frame 4\).*hold_frames to 2"):
        drive(portrait, clip8, landmarker, DriverSettings(retarget="2d", hold_frames=1), fps=0)
    with pytest.raises(NoFaceError, match="portrait"):
        drive(np.zeros((220, 330, 3), np.uint8), clip8, landmarker, DriverSettings(), fps=0)


def test_fill_dropouts_rules():
    a, b = (FaceResult(np.full((478, 3), v), None, (10, 10)) for v in (0.1, 0.2))
    faces = [None, a, None, None, b, None]
    assert fill_dropouts(faces, 2, list(range(6))) == [0, 2, 3, 5]
    assert faces == [a, a, a, a, b, b]
    with pytest.raises(NoFaceError, match="any of the 2"):
        fill_dropouts([None, None], 5, [0, 1])


# --------------------------------------------------------------------------- geometry


def test_face_box_is_the_official_face_crop_rule():
    pts = np.array([[100.0, 80.0], [160.0, 170.0]])
    # w 60, h 90: x 70..190 (twice as wide), y offset (120 - 90) / 2 = 15 -> 65..185
    assert face_box(pts, 720, 480) == (70, 65, 190, 185)
    # clipped at the border (x 0..92, y 0..86), then narrowed to a square: 3..89
    assert face_box(np.array([[2.0, 10.0], [62.0, 70.0]]), 720, 480) == (3, 0, 89, 86)


def test_similarity_fit_and_the_2d_retarget():
    g = np.random.default_rng(0)
    src = g.uniform(0, 100, (478, 2))
    true = Similarity(1.3, 0.2, (5.0, -3.0))
    got = fit_similarity(src, true.apply(src))
    assert abs(got.scale - 1.3) < 1e-9 and abs(got.angle - 0.2) < 1e-9
    assert np.allclose(got.inverse().apply(true.apply(src)), src)
    source = src * 2.0 + 7.0                     # the portrait: the same face twice as big
    r = Retarget2D(source, src, smoothing=0.0)
    assert np.allclose(r(src), source)           # no motion: the portrait's own landmarks
    assert np.allclose(r(src + [10.0, 0.0]), source + [20.0, 0.0])   # head moves 10 px -> 20 px
    moved = src.copy()
    moved[13] += [0.0, 4.0]                      # only the lip moves: an expression
    out = Retarget2D(source, src, smoothing=0.0, expression_strength=0.5)(moved)
    assert np.allclose(out[13] - source[13], [0.0, 4.0], atol=0.2)   # 4 px x 2 (size) x 0.5
    still = Retarget2D(source, src, smoothing=0.0, pose_strength=0.0)(src + [10.0, 0.0])
    assert np.allclose(still, source)


# --------------------------------------------------------------------------- FLAME, SMIRK, the pickle


@pytest.fixture(scope="module")
def demo3d(tmp_path_factory):
    from skyreels_pack.cli.demo import a1_driver as demo

    root = str(tmp_path_factory.mktemp("a1_driver_demo"))
    demo.write_smirk(root)
    demo.write_flame(root)
    return os.path.join(root, "diffusion_models", "SkyReels-A1")


@pytest.fixture(scope="module")
def flame(demo3d):
    from skyreels_pack.models.a1.flame import Flame, FlameFiles

    return Flame.from_files(FlameFiles(os.path.join(demo3d, "FLAME"), os.path.join(demo3d, "smirk")))


def test_flame_file_is_a_chumpy_pickle_read_without_chumpy(demo3d, flame):
    import sys

    raw = open(os.path.join(demo3d, "FLAME", "generic_model.pkl"), "rb").read()
    assert b"chumpy.ch" in raw and b"scipy.sparse.csc" in raw and b"csc_matrix" in raw
    assert "chumpy" not in sys.modules
    assert flame.v_template.shape == (5023, 3) and flame.shapedirs.shape == (5023, 3, 350)
    assert flame.J_regressor.shape == (5, 5023) and flame.J_regressor.sum(1).allclose(torch.ones(5))
    assert flame.parents.tolist() == [-1, 0, 1, 1, 1]


def test_flame_skinning(flame):
    zero = {"shape_params": torch.zeros(1, 300), "expression_params": torch.zeros(1, 50)}
    v0 = flame(zero)
    assert torch.allclose(v0, flame.v_template[None], atol=1e-6)
    # a global rotation turns the whole head about the root joint
    r = torch.tensor([[0.1, -0.4, 0.2]])
    v = flame(dict(zero, pose_params=r))
    from skyreels_pack.models.a1.flame import batch_rodrigues

    R = batch_rodrigues(r)[0]
    j0 = (flame.J_regressor @ flame.v_template)[0]
    assert torch.allclose(v[0], (v0[0] - j0) @ R.T + j0, atol=1e-5)
    # the jaw moves the lower lip, not the eyes; the eyelid closes the upper lid
    jaw = flame(dict(zero, jaw_params=torch.tensor([[0.3, 0.0, 0.0]])))[0]
    moved = (jaw - v0[0]).norm(dim=1) > 1e-4
    lower_lip = 3 * style.INDEX_MAPPING.index(14)
    upper_lid = 3 * style.INDEX_MAPPING.index(159)
    assert moved[lower_lip] and not moved[upper_lid]
    lid = flame(dict(zero, eyelid_params=torch.tensor([[0.0, 1.0]])))[0]
    assert lid[upper_lid, 1] < v0[0, upper_lid, 1] - 0.005


def test_restricted_unpickler_refuses_code(tmp_path):
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (os.system, ("touch %s" % marker,))

    bad = pickle.dumps({"v_template": Evil()}, protocol=2)
    with pytest.raises(RefusedPickle, match=r"asks for (posix|os|nt)\.system"):
        load_restricted(bad, {}, what="FLAME model file")
    assert not marker.exists()
    with pytest.raises(RefusedPickle, match="not a readable pickle"):
        load_restricted(b"not a pickle at all", {}, what="FLAME model file")
    assert load_restricted(pickle.dumps({"a": np.arange(3), "s": {1, 2}}), {})["a"].tolist() == [0, 1, 2]


def test_smirk_loader_and_outputs(demo3d, tmp_path):
    from skyreels_pack.models.a1.smirk import SmirkEncoder, load_smirk

    model = load_smirk(os.path.join(demo3d, "smirk"))
    out = model(torch.rand(2, 3, 224, 224))
    assert {k: tuple(v.shape) for k, v in out.items()} == {
        "pose_params": (2, 3), "cam": (2, 3), "shape_params": (2, 300), "expression_params": (2, 50),
        "eyelid_params": (2, 2), "jaw_params": (2, 3)}
    assert (out["eyelid_params"] >= 0).all() and (out["eyelid_params"] <= 1).all()
    assert out["jaw_params"][:, 1:].abs().max() <= 0.2 and (out["jaw_params"][:, 0] >= 0).all()
    assert abs(out["cam"][0, 0].item() - 8.0) < 0.5     # the demo's camera scale
    sd = {"smirk_encoder." + k: v for k, v in SmirkEncoder().state_dict().items()}
    del sd["smirk_encoder.pose_encoder.pose_cam_layers.0.bias"]
    torch.save(sd, tmp_path / "short.pt")
    with pytest.raises(ValueError, match="1 missing .*pose_cam_layers.0.bias"):
        load_smirk(str(tmp_path / "short.pt"))
    torch.save({"x": Similarity()}, tmp_path / "object.pt")
    with pytest.raises(ValueError, match="weights_only"):
        load_smirk(str(tmp_path / "object.pt"))


# --------------------------------------------------------------------------- nodes


def test_nodes_run_the_3d_path_on_the_demo_stand_ins(demo3d, portrait, clip, monkeypatch):
    _need_task()
    import shutil

    from skyreels_pack import host
    from skyreels_pack.nodes.a1_driver import A1DriverLoader, A1LandmarkDriver

    # node paths are read inside the model folders only: the demo root is one here
    monkeypatch.setattr(host, "_model_roots", [os.path.dirname(os.path.dirname(demo3d))])

    task = os.path.join(demo3d, "mediapipe", os.path.basename(TASK))
    os.makedirs(os.path.dirname(task), exist_ok=True)
    shutil.copyfile(TASK, task)
    (handle,) = A1DriverLoader().load(os.path.basename(TASK), "auto", landmarker_path=task)
    assert handle.has_3d and handle.folder == demo3d
    frames, _, _ = clip
    image = torch.from_numpy(portrait).float().div(255)[None]
    control, preview, fps = A1LandmarkDriver().drive(handle, image, frames[:5], 0.0, "auto", 0.3, 1.0, 1.0, 3,
                                                     720, 480)
    assert control.shape == preview.shape == (6, 480, 720, 3) and fps == 12.0
    c = (control * 255).round().to(torch.uint8).numpy()
    for f in c[1:]:  # the retarget style, drawn from the FLAME stand-in
        assert (f == 255).all(axis=2).sum() == 25
        assert (f == np.array(style.LEFT_EYE_COLOUR, np.uint8)).all(axis=2).sum() > 20
    # 2D on the same inputs: the same frame 0, other frames 1..
    control2, _, _ = A1LandmarkDriver().drive(handle, image, frames[:5], 0.0, "2d", 0.3, 1.0, 1.0, 3, 720, 480)
    assert torch.equal(control2[0], control[0]) and not torch.equal(control2[1], control[1])
    # the preview shows the driving frame in its corner and the landmarks over the portrait
    assert preview[1, :10, :10].std() > 0.01


def test_driver_nodes_explain_missing_files(tmp_path, clip, monkeypatch):
    from skyreels_pack import host
    from skyreels_pack.nodes.a1_driver import A1DriverLoader, A1LandmarkDriver
    from skyreels_pack.nodes.base import NodeError
    from skyreels_pack.nodes.handles import A1DriverHandle

    monkeypatch.setattr(host, "_model_roots", [str(tmp_path)])
    (tmp_path / "diffusion_models").mkdir()
    with pytest.raises(NodeError, match="'missing.task' was not found"):
        A1DriverLoader().load("x.task", "auto", landmarker_path="missing.task")
    with pytest.raises(NodeError, match="outside the diffusion_models folders"):
        A1DriverLoader().load("x.task", "auto", landmarker_path=str(tmp_path / "elsewhere" / "x.task"))
    handle = A1DriverHandle(str(tmp_path / "x.task"), folder=str(tmp_path))
    frames, _, _ = clip
    with pytest.raises(NodeError, match="smirk/SMIRK_em1.pt.*FLAME/generic_model.pkl.*retarget 2d"):
        A1LandmarkDriver().drive(handle, frames[:1], frames[:2], 0.0, "3d", 0.3, 1.0, 1.0, 3, 720, 480)


def test_workflow_keeps_the_driving_videos_sound():
    from skyreels_pack.cli.shipped.a1_driver import drive_from_video

    nodes = {n.id: n for n in drive_from_video() if hasattr(n, "links")}
    save = next(n for n in nodes.values() if n.type == "SkyReelsSaveVideo")
    src, slot = save.links["audio"]
    assert nodes[src].type == "SkyReelsLoadVideo" and slot == 2
    driver = next(n for n in nodes.values() if n.type == "SkyReelsA1LandmarkDriver")
    assert driver.links["driving_fps"] == (src, 1) and driver.links["driving_video"] == (src, 0)
    sampler = next(n for n in nodes.values() if n.type == "SkyReelsA1Sampler")
    assert sampler.links["control_video"] == (driver.id, 0)


def test_example_clip_has_sound_and_moves(clip):
    frames, fps, audio = clip
    assert frames.shape == (72, 220, 330, 3) and fps == 24.0
    assert audio is not None and audio["waveform"].abs().max() > 0.05
