"""The SkyReels-A1 nodes on the demo models (release layout): loaders, face encode, the sampler's
checks and clear messages, the 12 fps resample node."""
import os

import numpy as np
import pytest
import torch

from skyreels_pack import host
from skyreels_pack.cli.demo import a1 as demo
from skyreels_pack.cli.shipped import a1 as shipped
from skyreels_pack.cli.shipped import a1_inputs
from skyreels_pack.nodes import a1 as nodes
from skyreels_pack.nodes.base import NodeError
from test_a1_face import MEDIAPIPE_TASK


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("a1_models"))
    for writer in demo.WRITERS:
        writer(root)
    host.set_model_roots([root])
    yield root
    host.set_model_roots([])


def name(key):
    return shipped.MODELS[key][1]


def portrait():
    return torch.from_numpy(a1_inputs.draw_portrait().copy()).float().unsqueeze(0) / 255


def test_loaders_and_face_encode(models):
    model, = nodes.A1Loader().load(name("a1_transformer"), "auto", "auto", "sdpa", 0.0)
    assert model.config.use_learned_positional_embeddings and model.config.sample_width == 16
    assert name("a1_vae") in nodes.CogVideoXVAELoader.INPUT_TYPES()["required"]["model"][0]
    vae, = nodes.CogVideoXVAELoader().load(name("a1_vae"), "auto", True)
    pose, = nodes.CogVideoXVAELoader().load(name("a1_pose_guider"), "fp32", False)
    assert vae.tiling is not None and pose.tiling is None and vae.vae.config.scaling_factor == 0.7
    # the whole A1 folder as a path also finds its vae/ (the loader's component)
    from skyreels_pack.models.cogvideox.vae_loader import load_cogvideox_vae

    _, cfg = load_cogvideox_vae(os.path.join(models, "diffusion_models", shipped.A1_DIR), component="pose_guider")
    assert cfg.block_out_channels == demo.VAE["block_out_channels"]

    choices = nodes.A1FaceEncoderLoader.INPUT_TYPES()["required"]["face_detector"][0]
    assert choices[:2] == ["none", shipped.DETECTOR]
    with pytest.raises(NodeError, match="was not found"):
        nodes.A1FaceEncoderLoader().load(name("a1_siglip"), shipped.DETECTOR, "fp32")
    enc, = nodes.A1FaceEncoderLoader().load(name("a1_siglip"), "none", "fp32")
    out, face = nodes.A1FaceEncode().encode(enc, portrait())
    assert out.last_hidden_state.shape == (1, 729, demo.SIGLIP["hidden_size"]) and face.shape == (1, 512, 512, 3)
    assert out["last_hidden_state"] is out.last_hidden_state


def test_face_encode_with_the_mediapipe_detector(models, monkeypatch):
    pytest.importorskip("mediapipe")
    if not os.path.isfile(MEDIAPIPE_TASK):
        pytest.skip("no MediaPipe face landmarker")
    # node paths are read inside the model folders only: the shared models/ is one here (its mediapipe/)
    monkeypatch.setattr(host, "_model_roots", host._model_roots + [os.path.dirname(os.path.dirname(MEDIAPIPE_TASK))])
    enc, = nodes.A1FaceEncoderLoader().load(name("a1_siglip"), "none", "fp32", detector_path=MEDIAPIPE_TASK)
    out, face = nodes.A1FaceEncode().encode(enc, portrait())
    centre = face[0, 200:320, 200:320].mean(dim=(0, 1))
    assert out.last_hidden_state.shape[1] == 729 and centre[0] > centre[2]  # skin, not the blue background
    with pytest.raises(NodeError, match="no face was found"):
        nodes.A1FaceEncode().encode(enc, torch.full((1, 400, 600, 3), 0.3))


def test_sampler_refuses_what_cannot_work(models):
    model, = nodes.A1Loader().load(name("a1_transformer"), "auto", "auto", "sdpa", 0.0)
    vae, = nodes.CogVideoXVAELoader().load(name("a1_vae"), "auto", False)
    face = type("Out", (), {"last_hidden_state": torch.zeros(1, 729, demo.SIGLIP["hidden_size"])})()
    control = torch.zeros(5, 96, 128, 3)
    s = nodes.A1Sampler()
    with pytest.raises(NodeError, match="runs only at that size; set width 128 and height 96"):
        s.sample(model, vae, vae, portrait(), control, face, 720, 480, 0, 2, 3.0)
    bad = type("Out", (), {"last_hidden_state": torch.zeros(1, 257, 1280)})()
    with pytest.raises(NodeError, match="729 x 32"):
        s.sample(model, vae, vae, portrait(), control, bad, 128, 96, 0, 2, 3.0)
    with pytest.raises(NodeError, match="no last_hidden_state"):
        s.sample(model, vae, vae, portrait(), control, object(), 128, 96, 0, 2, 3.0)
    with pytest.raises(NodeError, match="reference-landmark frame"):
        s.sample(model, vae, vae, portrait(), control[:1], face, 128, 96, 0, 2, 3.0)
    assert nodes.A1Sampler.VALIDATE_INPUTS(width=130, height=96) != True  # noqa: E712
    # a short control video of another size is framed like the portrait: 4 driving frames -> 4 frames
    images, = s.sample(model, vae, vae, portrait(), torch.rand(5, 60, 200, 3), face, 128, 96, 0, 1, 1.0)
    assert images.shape == (4, 96, 128, 3)


def test_resample_node():
    frames = torch.arange(48).float().view(-1, 1, 1, 1).expand(-1, 2, 2, 3) / 47
    out, fps = nodes.A1Resample().resample(frames, 24.0, 12.0)
    idx = (out[:, 0, 0, 0] * 47).round().long().tolist()
    assert fps == 12.0 and len(idx) == 24 and idx[:8] == [0, 2, 4, 6, 8, 10, 12, 13]  # the official truncation
    assert np.all(np.diff(idx) >= 0)
