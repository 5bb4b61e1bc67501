"""Wan2.1 VAE: key maps at the released config, loaders, input checks, streaming, tiling, dtypes."""
import json
import os

import pytest
import torch
from safetensors.torch import save_file

from golden_cases import DEFAULT_DIR, ROOT, load_case
from skyreels_pack import host
from skyreels_pack.models.loading.checkpoint import CheckpointError, TensorSource
from skyreels_pack.models.wan import vae_keys, vae_tiling
from skyreels_pack.models.wan.vae import LATENTS_MEAN, LATENTS_STD, WanVAE, WanVAEConfig
from skyreels_pack.models.wan.vae_loader import detect, load_wan_vae
from skyreels_pack.models.wan.vae_tiling import VAETiling, tile_spans

KEYS_DIR = os.path.normpath(os.path.join(ROOT, "..", "shared", "keys"))
TINY = WanVAEConfig(dim=4)  # the real structure at width 4 (widths 4, 8, 16, 16)


def _json(name):
    path = os.path.join(KEYS_DIR, name)
    if not os.path.exists(path):
        pytest.skip("shared key map %s is missing" % path)
    with open(path) as f:
        return json.load(f)


def _golden(name):
    path = os.path.join(DEFAULT_DIR, name)
    if not os.path.exists(path):
        pytest.skip("golden file %s is missing" % path)
    return load_case(path)


def _golden_vae(name="wan_vae_decode_b1.safetensors"):
    """The tiny golden VAE (base width 8, random weights) used by the golden cases."""
    return load_wan_vae(_golden(name).weights)[0]


def _tiny_state_dict(seed=0):
    torch.manual_seed(seed)
    return {k: v.clone() for k, v in WanVAE(TINY).state_dict().items()}


def _video(t=5, h=32, w=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    tt = torch.linspace(0, 1, t)[:, None, None]
    yy = torch.linspace(0, 1, h)[None, :, None]
    xx = torch.linspace(0, 1, w)[None, None, :]
    v = torch.stack([torch.sin(6 * xx + 3 * tt + 2 * yy), torch.cos(5 * yy - 2 * tt + xx),
                     torch.sin(4 * (xx + yy) + tt)]).unsqueeze(0) * 0.8
    return (v + 0.1 * torch.randn(v.shape, generator=g)).clamp(-1, 1)


def _same_weights(model, sd):
    got = model.state_dict()
    assert set(got) == set(sd)
    for k, v in sd.items():
        assert torch.equal(got[k].float(), v.float()), k


# --------------------------------------------------------------------------- keys


def test_released_keys_both_namings():
    official = {k: tuple(v) for k, v in _json("vae.official.json").items()}
    diffusers = {k: tuple(v) for k, v in _json("vae.diffusers.json").items()}
    mapping = _json("vae.mapping.json")
    assert vae_keys.expected_shapes(WanVAEConfig()) == official  # built on the meta device
    for o, d in mapping.items():
        assert vae_keys.official_to_diffusers(o) == d
        assert vae_keys.diffusers_to_official(d) == o
    # Both namings, through the loader's renaming, land on the model's keys: none missing or extra.
    for naming, shapes in (("official", official), ("diffusers", diffusers)):
        names = vae_keys.to_official_names(shapes, naming, "")
        assert {names[k]: s for k, s in shapes.items()} == official, naming
        assert vae_keys.infer_config({names[k]: s for k, s in shapes.items()}) == WanVAEConfig()
        assert vae_keys.detect_naming(shapes, shapes.get) == (naming, "")


def test_config_conversions():
    cfg = _json("configs.json")["vae"]["diffusers_config"]
    assert WanVAEConfig.from_diffusers(cfg) == WanVAEConfig()
    assert WanVAEConfig.from_official(WanVAEConfig(dim=8).to_official()) == WanVAEConfig(dim=8)
    with pytest.raises(ValueError, match="Wan2.2"):
        WanVAEConfig.from_diffusers(dict(cfg, is_residual=True))
    assert WanVAEConfig().temporal_factor == 4 and WanVAEConfig().spatial_factor == 8
    # The width is inferred from the tensors, never assumed.
    assert vae_keys.infer_config(vae_keys.expected_shapes(TINY)) == TINY


# --------------------------------------------------------------------------- loading


@pytest.mark.parametrize("prefix", ["", "first_stage_model.", "vae."])
def test_load_comfy_safetensors(tmp_path, prefix):
    sd = _tiny_state_dict()
    path = str(tmp_path / "wan_2.1_vae.safetensors")
    save_file({prefix + k: v.contiguous() for k, v in sd.items()}, path)
    assert detect(TensorSource([path])) == "official"
    model, cfg = load_wan_vae(path)
    assert cfg == TINY
    _same_weights(model, sd)
    assert torch.equal(model.latents_mean, torch.tensor(LATENTS_MEAN))


def test_load_pth(tmp_path):
    sd = _tiny_state_dict(1)
    torch.save(sd, str(tmp_path / "Wan2.1_VAE.pth"))
    for where in (str(tmp_path / "Wan2.1_VAE.pth"), str(tmp_path)):  # the file, or an official folder
        model, cfg = load_wan_vae(where)
        assert cfg == TINY
        _same_weights(model, sd)


def test_load_diffusers_folder(tmp_path):
    sd = _tiny_state_dict(2)
    folder = tmp_path / "vae"
    folder.mkdir()
    save_file({vae_keys.official_to_diffusers(k): v.contiguous() for k, v in sd.items()},
              str(folder / "diffusion_pytorch_model.safetensors"))
    mean = [m + 0.5 for m in LATENTS_MEAN]
    with open(folder / "config.json", "w") as f:
        json.dump({"_class_name": "AutoencoderKLWan", "base_dim": 4, "z_dim": 16, "latents_mean": mean,
                   "latents_std": list(LATENTS_STD)}, f)
    for where in (str(tmp_path), str(folder)):  # pipeline root or the vae folder
        model, cfg = load_wan_vae(where)
        assert cfg == TINY
        _same_weights(model, sd)
        assert torch.allclose(model.latents_mean, torch.tensor(mean))  # the folder's own statistics


def test_wrong_files_give_readable_errors(tmp_path):
    dit = str(tmp_path / "dit.safetensors")
    save_file({"patch_embedding.weight": torch.zeros(8, 16, 1, 2, 2), "blocks.0.self_attn.q.weight": torch.zeros(8, 8)},
              dit)
    with pytest.raises(CheckpointError, match=r"not a Wan2.1 VAE.*encoder\.conv1\.weight.*diffusion model"):
        load_wan_vae(dit)
    sd = _tiny_state_dict()
    del sd["decoder.head.2.bias"]
    with pytest.raises(CheckpointError, match=r"Missing 1 tensors: decoder\.head\.2\.bias"):
        load_wan_vae(sd)
    sd = _tiny_state_dict()
    sd["encoder.conv1.weight"] = torch.zeros(4, 12, 3, 3, 3)
    with pytest.raises(CheckpointError, match="Wan2.2"):
        load_wan_vae(sd)
    with pytest.raises(ValueError, match="float32, bfloat16 or float16"):
        load_wan_vae(_tiny_state_dict(), dtype=torch.int8)


def test_low_precision_storage_loads_and_runs():
    case = _golden("wan_vae_encode_b1.safetensors")  # its weights are bf16 values
    ref = load_wan_vae(case.weights)[0].encode(case.inputs["video"])
    bf16, _ = load_wan_vae(case.weights, dtype=torch.bfloat16)
    assert {p.dtype for p in bf16.parameters()} == {torch.bfloat16}
    mu = bf16.encode(case.inputs["video"])
    assert mu.dtype == torch.float32
    assert torch.allclose(mu, ref, atol=1e-5)  # bf16 storage of bf16 values, cast to fp32 at compute
    fp16, _ = load_wan_vae(case.weights, dtype="fp16")
    assert {p.dtype for p in fp16.parameters()} == {torch.float16}
    assert (fp16.encode(case.inputs["video"]) - ref).abs().max() < 2e-2
    video = bf16.decode(mu)
    assert video.dtype == torch.float32 and video.shape == (1, 3, 5, 32, 32)


# --------------------------------------------------------------------------- inputs and latents


def test_bad_inputs_raise_value_errors():
    model = WanVAE(TINY)
    with pytest.raises(ValueError, match=r"4k\+1.*found 4"):
        model.encode(torch.zeros(1, 3, 4, 16, 16))
    with pytest.raises(ValueError, match=r"multiples of 8, found 20x16"):
        model.encode(torch.zeros(1, 3, 5, 20, 16))
    with pytest.raises(ValueError, match="3 channels"):
        model.encode(torch.zeros(1, 4, 1, 16, 16))
    with pytest.raises(ValueError, match=r"\[B, 3, T, H, W\]"):
        model.encode(torch.zeros(3, 5, 16, 16))
    with pytest.raises(ValueError, match="16 latent channels, found 8"):
        model.decode(torch.zeros(1, 8, 2, 4, 4))
    with pytest.raises(ValueError, match="overlap_px"):
        model.decode(torch.zeros(1, 16, 1, 4, 4), tile=VAETiling(64, 64))


def test_raw_and_normalised_latents():
    model = _golden_vae()
    mean, std = torch.tensor(LATENTS_MEAN), torch.tensor(LATENTS_STD)
    z = torch.randn(2, 16, 2, 3, 4)
    raw = model.denormalize(z)
    assert torch.allclose(raw, z * std.view(1, -1, 1, 1, 1) + mean.view(1, -1, 1, 1, 1), atol=1e-6)
    assert torch.allclose(model.normalize(raw), z, atol=1e-5)
    # decode speaks raw latents: the normalised round trip gives the same video.
    assert torch.allclose(model.decode(model.denormalize(model.normalize(raw))), model.decode(raw), atol=1e-5)
    # ... and encode returns raw means that decode takes back to a video of the input's size.
    video = _video()
    mu = model.encode(video)
    assert mu.shape == (1, 16, 2, 4, 4) and mu.dtype == torch.float32
    assert model.decode(mu).shape == video.shape


def test_time_chunks_give_the_same_stream():
    model = _golden_vae()
    z = model.denormalize(torch.randn(1, 16, 3, 4, 4))
    ref = model.decode(z, clamp=False)
    for chunk in (2, 3):
        assert torch.allclose(model.decode(z, tile=VAETiling(0, 0, time_chunk=chunk), clamp=False), ref, atol=1e-5)
    video = _video(t=9)
    mu = model.encode(video)
    assert torch.allclose(model.encode(video, tile=VAETiling(0, 0, time_chunk=2)), mu, atol=1e-5)


def test_progress_and_interrupt(monkeypatch):
    seen = []

    class Recorder:
        def __init__(self, total, desc=""):
            self.total, self.value = total, 0
            seen.append(self)

        def update(self, n=1):
            self.value += n

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(vae_tiling, "Progress", Recorder)
    model = WanVAE(TINY)
    model.decode(torch.zeros(1, 16, 3, 4, 4))
    model.encode(torch.zeros(1, 3, 9, 16, 16))
    assert [(p.total, p.value) for p in seen] == [(9, 9), (9, 9)]  # frames done
    host.request_interrupt()
    with pytest.raises(host.Interrupted):
        model.decode(torch.zeros(1, 16, 3, 4, 4))


# --------------------------------------------------------------------------- tiling


def test_tile_spans_cover_and_overlap():
    for size, tile, overlap in ((90, 32, 8), (160, 32, 8), (33, 32, 8), (57, 32, 8), (16, 12, 4)):
        spans = tile_spans(size, tile, overlap)
        assert spans[0][0] == 0 and spans[-1][1] == size
        assert all(e - s == tile for s, e in spans)
        assert all(b[0] <= a[1] - overlap for a, b in zip(spans, spans[1:]))
    assert tile_spans(20, 32, 8) == [(0, 20)]


def _seam_score(out, ref, dim):
    """Largest change of the mean neighbour difference along ``dim`` caused by tiling,
    relative to its mean: a visible seam is a step there."""
    def grad(v):
        d = (v.narrow(dim, 1, v.shape[dim] - 1) - v.narrow(dim, 0, v.shape[dim] - 1)).abs()
        return d.mean(dim=[i for i in range(5) if i != dim])

    g_out, g_ref = grad(out), grad(ref)
    return ((g_out - g_ref).abs().max() / g_ref.mean()).item()


def test_single_tile_is_exactly_untiled():
    model = _golden_vae()
    z = model.denormalize(torch.randn(1, 16, 2, 4, 6))
    assert torch.equal(model.decode(z, tile=VAETiling(64, 16)), model.decode(z))
    video = _video(h=32, w=48)
    assert torch.equal(model.encode(video, tile=VAETiling(64, 16)), model.encode(video))


def test_tiled_decode_matches_untiled():
    model = _golden_vae()
    z = model.denormalize(torch.randn(1, 16, 2, 16, 16, generator=torch.Generator().manual_seed(0)))
    ref = model.decode(z, clamp=False)
    out = model.decode(z, tile=VAETiling(96, 32), clamp=False)  # 2 x 2 tiles of 12 latent pixels
    rel = ((out - ref).abs().mean() / ref.abs().mean()).item()
    assert rel < 0.15, rel  # measured 0.099 (docstring of vae_tiling)
    hard = model.decode(z, tile=VAETiling(64, 0), clamp=False)  # butt-joined tiles, no blending
    for dim in (3, 4):
        blended = _seam_score(out, ref, dim)
        assert blended < 0.15, blended  # measured 0.063 / 0.074
        assert blended < 0.3 * _seam_score(hard, ref, dim)  # the hard cut is a visible step (about 1.0)


def test_tiled_encode_matches_untiled():
    model = _golden_vae("wan_vae_encode_b1.safetensors")
    video = _video(t=5, h=128, w=128)
    ref = model.encode(video)
    out = model.encode(video, tile=VAETiling(96, 32))
    rel = ((out - ref).abs().mean() / ref.abs().mean()).item()
    assert rel < 0.15, rel  # measured 0.113
    for dim in (3, 4):
        assert _seam_score(out, ref, dim) < 0.15  # measured 0.095 / 0.071
