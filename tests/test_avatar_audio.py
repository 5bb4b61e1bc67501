"""Talking avatar: released key maps, the wav2vec2 loader in every naming, resampling, loudness, fps contract."""
import json
import math
import os

import pytest
import torch

from skyreels_pack.models.loading.checkpoint import TensorSource
from skyreels_pack.models.loading.materialize import check_keys, plan_keys
from skyreels_pack.models.wan import dit_keys
from skyreels_pack.models.wan.dit import WanDiT
from skyreels_pack.models.wan.dit_config import WanDiTConfig
from skyreels_pack.models.wan.dit_loader import fp8_eligible

KEYS = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", "shared", "keys", "avatar"))
with open(os.path.join(KEYS, "configs.json")) as f:
    CONFIGS = json.load(f)


def _listed(name):
    with open(os.path.join(KEYS, name)) as f:
        return {k: tuple(v) for k, v in json.load(f).items()}


def _meta(shapes):
    return TensorSource.from_dict({k: torch.empty(v, device="meta") for k, v in shapes.items()})


@pytest.mark.parametrize("prefix", ["", "model.diffusion_model."])
def test_a2v_19b_keys_load_with_nothing_missing_or_unexpected(prefix):
    entry = CONFIGS["skyreels-v3-a2v-19b"]
    listed = _listed("skyreels-v3-a2v-19b.official.json")
    cfg = WanDiTConfig.from_official(entry["official_config"])
    assert cfg.audio is not None and (cfg.audio.output_dim, cfg.audio.context_tokens) == (768, 32)
    assert dit_keys.expected_shapes(cfg) == listed
    shapes = {prefix + k: v for k, v in listed.items()}
    assert dit_keys.detect_naming(shapes) == ("official", prefix)
    names = dit_keys.to_official_names(shapes, "official", prefix)
    inferred = dit_keys.infer_config({names[k]: v for k, v in shapes.items()}, {"num_heads": 40})
    assert inferred.audio == cfg.audio and inferred.image_dim == 1280 and inferred.in_dim == 36
    with torch.device("meta"):
        model = WanDiT(inferred)
    check_keys(model, plan_keys(shapes, names.get), _meta(shapes), "Wan DiT")
    n = sum(math.prod(v) for v in listed.values())
    assert n == entry["param_count"]
    audio = sum(math.prod(v) for k, v in listed.items() if "audio" in k or ".norm_x." in k)
    assert audio == entry["audio_adapter_param_count"]
    # fp8 storage covers the big audio attention matrices like the other block Linears
    assert fp8_eligible("blocks.3.audio_cross_attn.q_linear.weight") and not fp8_eligible("blocks.3.norm_x.weight")


def _wav2vec2_meta(config):
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    with torch.device("meta"):
        return Wav2Vec2Model(Wav2Vec2Config(**config))


@pytest.mark.parametrize("naming", ["transformers", "released"])
def test_wav2vec2_keys_load_in_both_namings(naming):
    from skyreels_pack.models.audio.wav2vec2 import config_from_shapes, detect_prefix, to_model_name

    entry = CONFIGS["chinese-wav2vec2-base"]
    listed = _listed("chinese-wav2vec2-base.transformers.json")
    assert len(listed) == entry["key_count"]
    shapes = dict(listed)
    if naming == "released":  # Wav2Vec2ForPreTraining's pytorch_model.bin
        shapes = {"wav2vec2." + k.replace("parametrizations.weight.original0", "weight_g")
                  .replace("parametrizations.weight.original1", "weight_v"): v for k, v in listed.items()}
        shapes.update({"quantizer.codevectors": (1, 640, 384), "quantizer.weight_proj.weight": (640, 512),
                       "project_q.weight": (256, 768), "project_hid.weight": (256, 768)})
    prefix = detect_prefix(shapes)
    assert prefix == ("wav2vec2." if naming == "released" else "")
    names = {k: n for k in shapes for n in [to_model_name(k, prefix)] if n is not None}
    model = _wav2vec2_meta(entry["transformers_config"])
    check_keys(model, plan_keys(shapes, names.get), _meta(shapes), "wav2vec2")
    assert sum(math.prod(v) for v in listed.values()) == entry["param_count"]
    # without a config.json, the shapes give the same architecture
    inferred = config_from_shapes({n: shapes[k] for k, n in names.items()})
    for k in ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "conv_dim", "conv_kernel",
              "conv_stride", "conv_bias", "feat_extract_norm", "num_conv_pos_embeddings",
              "num_conv_pos_embedding_groups"):
        assert inferred[k] == entry["transformers_config"][k], k


@pytest.fixture(scope="module")
def demo_wav2vec2(tmp_path_factory):
    from skyreels_pack.cli.demo.avatar import write_wav2vec2

    root = str(tmp_path_factory.mktemp("w2v"))
    write_wav2vec2(root)
    return os.path.join(root, "audio_encoders", "chinese-wav2vec2-base")


def _speech(seconds, rate=16000, seed=0):
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(int(seconds * rate)) / rate
    return (0.3 * torch.sin(2 * math.pi * 220 * t) * (0.5 + 0.5 * torch.sin(2 * math.pi * 3 * t))
            + 0.02 * torch.randn(t.shape, generator=g)).float()


def test_wav2vec2_loads_from_the_released_layout_and_from_a_bare_file(demo_wav2vec2, tmp_path):
    from safetensors.torch import save_file

    from skyreels_pack.models.audio.wav2vec2 import load_wav2vec2

    enc = load_wav2vec2(demo_wav2vec2)
    assert enc.do_normalize is False and enc.layers == 2 and enc.hidden_size == 32
    wave = _speech(1.12)
    feats = enc.features(wave)
    assert feats.shape == (29, 2, 32)  # ceil(1.12 * 25) in float64 is 29, as the official code computes it
    # the same weights as a bare Wav2Vec2Model file in fp16 without config.json: the shapes give the
    # architecture (the head count is hidden / 64, right for the released sizes; given here)
    sd = {k: v.half() for k, v in enc.model.state_dict().items()}
    save_file(sd, str(tmp_path / "w2v.safetensors"))
    bare = load_wav2vec2(str(tmp_path / "w2v.safetensors"))
    assert bare.model.config.hidden_size == 32 and bare.model.config.num_conv_pos_embeddings == 16
    assert bare.model.config.num_conv_pos_embedding_groups == 4 and bare.model.config.num_hidden_layers == 2
    config = dict(enc.model.config.to_dict())
    bare = load_wav2vec2(str(tmp_path / "w2v.safetensors"), config=config)
    assert bare.dtype == torch.float32
    assert torch.allclose(bare.features(wave), feats, atol=2e-2)
    with pytest.raises(Exception, match="not a wav2vec2"):
        load_wav2vec2({"foo.weight": torch.zeros(2)})


@pytest.mark.parametrize("samples,frames", [(16000, 25), (17920, 29), (8960, 15), (20000, 32), (6400, 10)])
def test_one_feature_per_video_frame_at_25_fps(demo_wav2vec2, samples, frames):
    from skyreels_pack.models.audio.wav2vec2 import load_wav2vec2

    enc = load_wav2vec2(demo_wav2vec2)
    assert enc.features(_speech(samples / 16000)).shape[0] == frames == math.ceil(samples / 16000 * 25)


def test_resampling_to_16k_mono_keeps_pitch_and_length():
    from skyreels_pack.models.audio.features import to_mono_16k

    rate = 44100
    t = torch.arange(rate * 2) / rate
    stereo = torch.stack([torch.sin(2 * math.pi * 440 * t), 0.5 * torch.sin(2 * math.pi * 440 * t)])
    mono = to_mono_16k(stereo, rate)
    assert abs(mono.shape[0] - 32000) <= 1
    spectrum = torch.fft.rfft(mono).abs()
    assert abs(int(spectrum.argmax()) * 16000 / mono.shape[0] - 440) < 2
    assert abs(float(mono.abs().max()) - 0.75) < 0.02  # the mean of the channels


def test_loudness_normalisation_and_its_skips():
    from skyreels_pack.models.audio.loudness import measure_loudness, normalize_loudness

    wave = _speech(2.0) * 0.05
    res = normalize_loudness(wave, 16000)
    assert not res.skipped and res.loudness < -30
    assert abs(measure_loudness(res.waveform, 16000) - (-23.0)) < 1e-3
    assert normalize_loudness(torch.zeros(16000), 16000).skipped  # silence: -inf
    quiet = normalize_loudness(_speech(1.0) * 1e-6, 16000)
    assert quiet.skipped and torch.equal(quiet.waveform, _speech(1.0) * 1e-6)
    assert normalize_loudness(_speech(0.3), 16000).skipped  # shorter than one 0.4 s block


def test_audio_encode_node_leaves_the_device_and_keeps_the_audio(demo_wav2vec2, monkeypatch):
    from skyreels_pack.memory import offload
    from skyreels_pack.models.audio.wav2vec2 import load_wav2vec2
    from skyreels_pack.nodes import handles
    from skyreels_pack.nodes.avatar import AudioEncode
    from skyreels_pack.nodes.base import NodeError

    released = []
    real = offload.release
    monkeypatch.setattr(offload, "release", lambda m: (released.append(m), real(m)))
    enc = load_wav2vec2(demo_wav2vec2)
    wave = _speech(1.5, rate=22050)
    audio = {"waveform": torch.stack([wave, wave])[None], "sample_rate": 22050}
    (feats,) = AudioEncode().encode(handles.AudioEncoderHandle(enc, demo_wav2vec2), audio, True)
    assert released == [enc.model]
    assert feats.fps == 25 and feats.frames == math.ceil(wave.shape[0] / 22050 * 25)
    assert feats.normalized and feats.audio["sample_rate"] == 22050 and feats.audio["waveform"].shape == (1, 2, 33075)
    with pytest.raises(NodeError, match="0.4 s"):
        AudioEncode().encode(handles.AudioEncoderHandle(enc, demo_wav2vec2),
                             {"waveform": torch.zeros(1, 1, 3000), "sample_rate": 16000}, True)
