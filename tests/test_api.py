"""The library door: detect and load each component from the demo files."""
import os

import numpy as np
import pytest
import torch

from skyreels_pack import api
from skyreels_pack.cli.demo import write_demo_models
from skyreels_pack.cli.shipped import MODELS


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return write_demo_models(str(tmp_path_factory.mktemp("m")))


@pytest.mark.parametrize("key,kind", [("t2v", "dit"), ("i2v", "dit"), ("df", "dit"), ("vae", "vae"),
                                      ("text", "umt5"), ("clip", "clip_vision"),
                                      ("v1_t2v", "v1_dit"), ("v1_i2v", "v1_dit"), ("v1_vae", "v1_vae"),
                                      ("v1_llama", "v1_llama"), ("v1_clip", "v1_clip_l")])
def test_detect_and_load(models, key, kind):
    path = os.path.join(models, *MODELS[key])
    assert api.detect_component(path) == kind
    module, cfg = api.load(path)
    assert cfg is not None and module is not None


def test_dit_forward_signature_and_variants(models):
    dit, cfg = api.load_wan_dit(os.path.join(models, *MODELS["df"]))
    assert cfg.variant == "df" and cfg.inject_sample_info
    x = torch.randn(1, 16, 3, 4, 4)
    ctx = torch.randn(1, 512, cfg.text_dim)
    out = dit(x, torch.tensor([500.0]), ctx, fps=1)
    assert out.shape == x.shape and out.dtype == torch.float32
    per_frame = dit(x, torch.tensor([[999.0, 500.0, 0.0]]), ctx, fps=torch.tensor([0]))
    assert per_frame.shape == x.shape and not torch.allclose(per_frame, out)
    i2v, icfg = api.load_wan_dit(os.path.join(models, *MODELS["i2v"]))
    assert icfg.variant == "i2v" and icfg.in_dim == 36
    y = torch.randn(1, 20, 3, 4, 4)
    two_refs = torch.randn(1, 2 * 17, icfg.image_dim)  # several reference images: any number of tokens
    assert i2v(x, torch.tensor([10.0]), ctx, clip_fea=two_refs, y=y).shape == x.shape
    with pytest.raises(ValueError, match="need clip_fea"):
        i2v(x, torch.tensor([10.0]), ctx, y=y)


def test_not_a_model(tmp_path):
    from safetensors.torch import save_file

    p = tmp_path / "x.safetensors"
    save_file({"foo.weight": torch.zeros(2, 2)}, str(p))
    with pytest.raises(api.CheckpointError, match="none of"):
        api.detect_component(str(p))


def test_a1_landmark_driver_through_the_library_door():
    """The A1 driver and face pieces are reachable from api: the example portrait driven by the
    first frames of the example clip gives a control video of 1 + driving frames."""
    pytest.importorskip("mediapipe")
    from PIL import Image

    from skyreels_pack.cli.shipped import a1_driver_inputs as inputs
    from skyreels_pack.media.video_io import read_video

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    task = os.path.join(root, "..", "shared", "models", "mediapipe", "face_landmarker_v2_with_blendshapes.task")
    if not os.path.isfile(task):
        pytest.skip("the test FaceLandmarker is not here: %s" % task)
    examples = os.path.join(root, "workflows", "inputs")
    portrait = np.array(Image.open(os.path.join(examples, inputs.PORTRAIT)).convert("RGB"))
    frames, _, _ = read_video(os.path.join(examples, inputs.DRIVING))
    landmarker = api.FaceLandmarks(task, min_confidence=0.1, blendshapes=True)
    try:
        res = api.drive_landmarks(portrait, frames[:6], landmarker, api.DriverSettings(retarget="2d"),
                                  width=240, height=160, fps=0)
        assert isinstance(res, api.DriverResult)
        assert tuple(res.control.shape) == (7, 160, 240, 3)
        assert float(res.control[1:].std()) > 0.0        # landmarks were drawn
        with pytest.raises(api.NoFaceError):
            landmarker.five_points(np.zeros((200, 200, 3), np.uint8))
    finally:
        landmarker.close()
    framed = api.frame_portrait(portrait, 720, 480)
    assert framed.shape == (480, 720, 3)
