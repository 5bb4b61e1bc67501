"""Hostile and broken model files and media: pickles, nonsense config.json values, scaled fp8
without scales, a component given to the wrong loader, damaged or audio-only videos, and the
library's own arguments.  One plain message each (CheckpointError for model files, naming the
file), nothing executed, nothing silently wrong.  Table-driven; every case failed before."""
import json
import os
import pickle
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from skyreels_pack import api
from skyreels_pack.models.loading.checkpoint import CheckpointError
from skyreels_pack.nodes.base import NodeError
from skyreels_pack.nodes.registry import NODE_CLASS_MAPPINGS as N

DF_DIR = ("diffusion_models", "SkyReels-V2-DF-1.3B-540P")
TEXT = ("text_encoders", "umt5_xxl_fp8_e4m3fn_scaled.safetensors")
VAE = ("vae", "wan_2.1_vae.safetensors")


class Evil:
    def __reduce__(self):
        return (os.system, ("touch %s" % os.environ.get("HOSTILE_MARKER", "/nonexistent/x"),))


# --------------------------------------------------------------------------- pickles


def _pickle(tmp_path, kind):
    p = tmp_path / "model.pth"
    payload = {"blocks.0.self_attn.q.weight": torch.zeros(2), "evil": Evil()}
    if kind == "zip":
        torch.save(payload, p)
    else:
        with open(p, "wb") as f:
            pickle.dump(payload, f)
    return str(p)


@pytest.mark.parametrize("kind,component", [("zip", None), ("legacy", None), ("legacy", "dit"), ("zip", "umt5"),
                                            ("legacy", "vae")])
def test_pickle_files_are_refused_without_running_them(tmp_path, monkeypatch, kind, component):
    marker = tmp_path / "ran"
    monkeypatch.setenv("HOSTILE_MARKER", str(marker))
    p = _pickle(tmp_path, kind)
    with pytest.raises(CheckpointError) as e:
        api.load(p, kind=component)
    msg = str(e.value)
    assert "Python objects" in msg and "False" not in msg and "weights_only" not in msg
    assert not marker.exists()


# --------------------------------------------------------------------------- config.json

DIT_CONFIGS = {
    "dim_text": {"dim": "abc"},
    "dim_null": {"dim": None},
    "dim_negative": {"dim": -5},
    "num_heads_zero": {"num_heads": 0},
    "num_layers_huge": {"num_layers": 1e9},
    "in_dim_fraction": {"in_dim": 3.5},
    "text_len_negative": {"text_len": -1},
    "patch_size_text": {"patch_size": "x"},
    "eps_nan_text": {"eps": "nan"},
    "not_an_object": [1, 2],
    "not_json": "{ this is not json",
}


@pytest.mark.parametrize("case", sorted(DIT_CONFIGS))
def test_nonsense_dit_config_is_refused_naming_the_file(demo_models, tmp_path, case):
    folder = tmp_path / "dit"
    shutil.copytree(os.path.join(demo_models, *DF_DIR), folder)
    bad = DIT_CONFIGS[case]
    cfg_path = folder / "config.json"
    if isinstance(bad, dict):
        cfg = json.loads(cfg_path.read_text())
        cfg.update(bad)
        cfg_path.write_text(json.dumps(cfg))
    else:
        cfg_path.write_text(bad if isinstance(bad, str) else json.dumps(bad))
    with pytest.raises(CheckpointError, match=str(cfg_path)):
        api.load_wan_dit(str(folder))


def test_nonsense_vae_statistics_are_refused_naming_the_file(demo_models, tmp_path):
    shutil.copy(os.path.join(demo_models, *VAE), tmp_path / "vae.safetensors")
    (tmp_path / "config.json").write_text(json.dumps({"latents_mean": ["a"] * 16, "latents_std": [1.0] * 16}))
    with pytest.raises(CheckpointError, match=str(tmp_path / "config.json")):
        api.load_wan_vae(str(tmp_path / "vae.safetensors"))


def test_nonsense_text_encoder_config_is_refused_naming_the_file(demo_models, tmp_path):
    shutil.copy(os.path.join(demo_models, *TEXT), tmp_path / "umt5.safetensors")
    (tmp_path / "config.json").write_text(json.dumps({"d_model": "x", "relative_attention_max_distance": 128}))
    with pytest.raises(CheckpointError, match=str(tmp_path / "config.json")):
        api.load_umt5(str(tmp_path / "umt5.safetensors"))


# --------------------------------------------------------------------------- scaled fp8


def _scaled(demo_models, tmp_path, change):
    sd = load_file(os.path.join(demo_models, *TEXT))
    change(sd)
    p = tmp_path / "umt5_scaled.safetensors"
    save_file(sd, str(p))
    return str(p)


def _drop_scales(sd):
    for k in [k for k in sd if k.endswith(".scale_weight")]:
        del sd[k]


def _drop_one_scale(sd):
    del sd[next(k for k in sorted(sd) if k.endswith(".scale_weight"))]


def _scale_to(value):
    def change(sd):
        k = next(k for k in sorted(sd) if k.endswith(".scale_weight"))
        sd[k] = torch.full_like(sd[k], value)
    return change


SCALED = {
    "all_scales_missing": (_drop_scales, "have no scale"),
    "one_scale_missing": (_drop_one_scale, "1 of its fp8 weights have no scale"),
    "scale_nan": (_scale_to(float("nan")), "finite number above 0"),
    "scale_zero": (_scale_to(0.0), "finite number above 0"),
}


@pytest.mark.parametrize("case", sorted(SCALED))
def test_scaled_fp8_with_missing_or_broken_scales_is_refused(demo_models, tmp_path, case):
    change, words = SCALED[case]
    with pytest.raises(CheckpointError, match=words):
        api.load_umt5(_scaled(demo_models, tmp_path, change))


# --------------------------------------------------------------------------- the wrong loader

WRONG = {
    "dit_folder_to_text_encoder": (DF_DIR, api.load_umt5, "is a Wan / SkyReels DiT"),
    "dit_file_to_text_encoder": (DF_DIR + ("model.safetensors",), api.load_umt5, "is a Wan / SkyReels DiT"),
    "vae_to_text_encoder": (VAE, api.load_umt5, "is the Wan2.1 video VAE"),
    "dit_to_clip_vision": (DF_DIR, api.load_clip_vision, "is a Wan / SkyReels DiT"),
    "text_encoder_to_dit": (TEXT, api.load_wan_dit, "is a umT5 text encoder"),
}


@pytest.mark.parametrize("case", sorted(WRONG))
def test_a_component_given_to_another_loader_is_named(demo_models, case):
    parts, loader, words = WRONG[case]
    with pytest.raises(CheckpointError, match=words):
        loader(os.path.join(demo_models, *parts))


# --------------------------------------------------------------------------- library arguments


@pytest.mark.parametrize("block", [-1, 0, 2.5])
def test_dit_causal_block_size_must_be_a_positive_whole_number(demo_models, block):
    dit, cfg = api.load_wan_dit(os.path.join(demo_models, *DF_DIR))
    x, t = torch.randn(1, 16, 2, 4, 4), torch.tensor([500.0])
    with pytest.raises(ValueError, match="causal_block_size"):
        dit(x, t, torch.randn(1, 8, cfg.text_dim), causal_block_size=block)


# --------------------------------------------------------------------------- videos


def _audio_only(path):
    import av
    import numpy as np

    with av.open(str(path), "w", format="mp4") as c:
        s = c.add_stream("aac", rate=44100)
        for i in range(10):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate = 44100
            frame.pts = i * 1024
            for p in s.encode(frame):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)


def _bad_video(folder, case):
    p = folder / ("%s.mp4" % case)
    if case == "random_bytes":
        p.write_bytes(os.urandom(4096))
    elif case == "empty":
        p.write_bytes(b"")
    elif case == "audio_only":
        _audio_only(p)
    elif case == "text":
        p.write_text("not a video at all\n" * 50)
    return p.name


@pytest.mark.parametrize("case", ["random_bytes", "empty", "audio_only", "text"])
def test_broken_or_audio_only_video_gets_no_frame_selection_hint(folders, case):
    name = _bad_video(folders["input"], case)
    with pytest.raises(NodeError) as e:
        N["SkyReelsLoadVideo"]().load(name, 0, 0, 1)
    msg = str(e.value)
    assert "skip_first_frames" not in msg and name in msg
    if case == "audio_only":
        assert "no video stream" in msg
