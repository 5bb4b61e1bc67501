"""The SkyReels-A1 transformer beyond the golden cases: the files it loads (release folder, single
files with prefixes, fp8 and scaled fp8), the position rules, and the memory machinery (block
streaming, int8 / nf4, the activation estimate)."""
import json
import os

import pytest
import torch

from skyreels_pack.cli.demo.common import randomize
from skyreels_pack.memory import offload
from skyreels_pack.memory.quant import quantize_blocks
from skyreels_pack.models.cogvideox.config import CogVideoXConfig
from skyreels_pack.models.cogvideox.loader import fp8_eligible, load_cogvideox_transformer
from skyreels_pack.models.cogvideox.positions import crop_region, rope_table
from skyreels_pack.models.cogvideox.transformer import CogVideoXTransformer
from skyreels_pack.models.loading.checkpoint import CheckpointError
from skyreels_pack.models.loading.materialize import quantize_fp8

TINY = dict(num_heads=2, head_dim=16, num_layers=3, time_embed_dim=16, text_embed_dim=24, in_channels=48,
            sample_height=4, sample_width=6, sample_frames=9, face_embed_dim=8)


def tiny_state(seed=0, **kw):
    cfg = CogVideoXConfig(**dict(TINY, **kw))
    return cfg, randomize(CogVideoXTransformer(cfg), seed)


def inputs(frames=3, h=4, w=6, seed=1):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(1, frames, 48, h, w, generator=g), torch.tensor([500]),
            torch.randn(1, 729, 8, generator=g))


def run(model, x, t, face):
    with torch.no_grad():
        return model(x, t, face)


def save_file(path, tensors):
    from safetensors.torch import save_file as st

    os.makedirs(os.path.dirname(path), exist_ok=True)
    st({k: v.contiguous() for k, v in tensors.items()}, path)


def test_release_folder_single_files_and_fp8(tmp_path):
    cfg, sd = tiny_state()
    ref, _ = load_cogvideox_transformer(sd, config=cfg, weight_dtype="fp32")
    x, t, face = inputs()
    want = run(ref, x, t, face)

    # the release layout: SkyReels-A1-5B/transformer/{config.json, diffusion_pytorch_model.safetensors}
    release = tmp_path / "SkyReels-A1-5B"
    save_file(str(release / "transformer" / "diffusion_pytorch_model.safetensors"), sd)
    (release / "transformer" / "config.json").write_text(json.dumps(cfg.to_diffusers()))
    for path in (release, release / "transformer"):
        model, got_cfg = load_cogvideox_transformer(str(path), weight_dtype="fp32")
        assert got_cfg.face_embed_dim == 8 and got_cfg.sample_height == 4 and got_cfg.use_learned_positional_embeddings
        assert torch.allclose(run(model, x, t, face), want, atol=1e-5)

    # a ComfyUI-style single file (prefixed names) with its config.json beside it, bf16
    single = tmp_path / "single" / "skyreels_a1_bf16.safetensors"
    save_file(str(single), {"model.diffusion_model." + k: v.to(torch.bfloat16) for k, v in sd.items()})
    (tmp_path / "single" / "config.json").write_text(json.dumps(cfg.to_diffusers()))
    model, _ = load_cogvideox_transformer(str(single))
    assert model.transformer_blocks[0].attn1.to_q.weight.dtype == torch.bfloat16  # "auto" keeps bf16 files bf16
    err = (run(model, x, t, face) - want).abs().max() / want.abs().max()
    assert err < 0.05

    # fp8 (Kijai style: block Linear weights in e4m3fn) and scaled fp8 (ComfyUI style)
    fp8 = {k: (v.to(torch.float8_e4m3fn) if fp8_eligible(k) else v) for k, v in sd.items()}
    scaled = {}
    for k, v in sd.items():
        if fp8_eligible(k):
            q, s = quantize_fp8(v, torch.float8_e4m3fn)
            scaled[k], scaled[k[:-len(".weight")] + ".scale_weight"] = q, s.reshape(1)
        else:
            scaled[k] = v
    for name, tensors in (("fp8.safetensors", fp8), ("scaled_fp8.safetensors", scaled)):
        save_file(str(tmp_path / "single" / name), tensors)
        model, _ = load_cogvideox_transformer(str(tmp_path / "single" / name))
        assert model.transformer_blocks[1].ff.net[2].weight.dtype == torch.float8_e4m3fn
        assert model.patch_embed.pos_embedding.dtype == torch.float32
        err = (run(model, x, t, face) - want).abs().max() / want.abs().max()
        assert 0 < err < 0.15, name

    # fp8 storage asked of a full-precision file
    model, _ = load_cogvideox_transformer(sd, config=cfg, weight_dtype="fp8_e5m2")
    assert model.transformer_blocks[0].attn1.to_k.weight.dtype == torch.float8_e5m2


def test_wrong_files_are_explained(tmp_path):
    from skyreels_pack.cli.demo.a1 import VAE
    from skyreels_pack.models.cogvideox.vae import CogVideoXVAE, CogVideoXVAEConfig

    vae = randomize(CogVideoXVAE(CogVideoXVAEConfig(**VAE)), 0)
    with pytest.raises(CheckpointError, match="not a CogVideoX / SkyReels-A1 transformer"):
        load_cogvideox_transformer(vae)
    cfg, sd = tiny_state()
    sd.pop("transformer_blocks.1.norm2.linear.weight")
    with pytest.raises(CheckpointError, match="transformer_blocks.1.norm2.linear.weight"):
        load_cogvideox_transformer(sd, config=cfg)
    _, sd = tiny_state()  # a learned table whose size fits no sample size, and no config.json
    with pytest.raises(CheckpointError, match="config.json"):
        load_cogvideox_transformer(sd)


def test_learned_table_size_rules():
    cfg, sd = tiny_state()
    model, _ = load_cogvideox_transformer(sd, config=cfg, weight_dtype="fp32")
    x, t, face = inputs(frames=3)
    with pytest.raises(ValueError, match="runs only at that size"):
        run(model, torch.randn(1, 3, 48, 6, 6), t, face)
    with pytest.raises(ValueError, match="exactly 729 face tokens"):
        run(model, x, t, face[:, :700])
    learned = model.positional_table(3, 2, 3, "cpu")  # 9 frames = the sample: the learned buffer
    assert torch.equal(learned, model.patch_embed.pos_embedding.float())
    other = model.positional_table(2, 2, 3, "cpu")  # 5 frames: the sin-cos table, zero face rows
    assert other.shape == (1, 729 + 2 * 6, cfg.dim)
    assert other[:, :729].abs().max() == 0 and other[:, 729:].abs().max() > 0.5
    assert run(model, torch.randn(1, 2, 48, 4, 6), t, face).shape == (1, 2, 16, 4, 6)
    # without the learned table (plain RoPE model) any size runs
    cfg2, sd2 = tiny_state(use_learned_positional_embeddings=False)
    model2, _ = load_cogvideox_transformer(sd2, config=cfg2)
    assert model2.positional_table(2, 3, 3, "cpu") is None
    assert run(model2, torch.randn(1, 2, 48, 6, 6), t, face).shape == (1, 2, 16, 6, 6)


def test_rope_grid():
    # at 720x480 the positions are the integers of the 30 x 45 base grid
    assert crop_region(30, 45, (30, 45)) == ((0, 0), (30, 45))
    cos, sin = rope_table(1, 30, 45, 64, (30, 45))
    freqs_h = 1.0 / (10000.0 ** (torch.arange(0, 24, 2, dtype=torch.float32) / 24))
    row = 7 * 45 + 11  # token (t=0, i=7, j=11)
    assert torch.allclose(cos[row, 16:40:2], torch.cos(7 * freqs_h), atol=1e-6)
    assert torch.allclose(cos[row, 40::2], torch.cos(11 * freqs_h), atol=1e-6)
    assert torch.equal(cos[:, 0::2], cos[:, 1::2])  # each angle twice (interleaved pairs)
    # elsewhere the grid is placed inside the crop region with linspace(start, stop (n-1)/n, n)
    (top, left), (bottom, right) = crop_region(4, 3, (30, 45))
    assert (top, left, bottom, right) == (0, 12, 30, 34)  # 45/... round(22.5) = 22 (half to even)
    cos, _ = rope_table(1, 4, 3, 16, (30, 45))
    f = 1.0 / (10000.0 ** (torch.arange(0, 6, 2, dtype=torch.float32) / 6))
    pos_w = torch.linspace(12, 34 * 2 / 3, 3)
    assert torch.allclose(cos[0:3, 10::2], torch.cos(pos_w[:, None] * f[None]), atol=1e-5)


def test_streaming_quantization_and_activation_estimate():
    from test_memory import FakeDevice

    cfg, sd = tiny_state(num_layers=4)
    x, t, face = inputs()
    model, _ = load_cogvideox_transformer(sd, config=cfg, weight_dtype="fp32")
    want = run(model, x, t, face)
    per_block = offload.estimate_bytes(model)["per_block"][0]
    act = model.activation_bytes((3, 4, 6), 1, torch.float32)
    budget = (offload.estimate_bytes(model)["rest"] + 3 * per_block + act) / (1 << 30)
    fake = FakeDevice()
    plan = offload.prepare_for_sampling(model, "cpu", budget * 1.001, latent_shape=(3, 4, 6), transfer=fake)
    assert plan.streamed and plan.resident  # some blocks stream, some stay
    assert torch.allclose(run(model, x, t, face), want, atol=1e-6)
    assert fake.fetched and fake.peak <= (budget * 1.001) * (1 << 30)
    offload.release(model)
    for mode, tol in (("int8", 0.05), ("nf4", 0.3)):
        q, _ = load_cogvideox_transformer(sd, config=cfg, weight_dtype="fp32")
        quantize_blocks(q, mode)
        err = (run(q, x, t, face) - want).abs().max() / want.abs().max()
        assert 0 < err < tol, mode
    small = model.activation_bytes((13, 60, 90))
    assert model.activation_bytes((13, 60, 90), batch=2) > 1.5 * small
    assert model.activation_bytes((25, 60, 90)) > 1.5 * small
    assert CogVideoXTransformer.activation_bytes.__doc__


def test_vae_tiles_keep_the_frame_size_and_cpu_convolution_is_exact():
    import torch.nn.functional as F

    from skyreels_pack.models.cogvideox.vae import CogVideoXVAE, CogVideoXVAEConfig, SafeConv3d, VAETiling

    conv = SafeConv3d(4, 6, 3, padding=(0, 1, 1))
    x = torch.randn(1, 4, 5, 9, 7)
    assert torch.allclose(conv(x), F.conv3d(x, conv.weight, conv.bias, padding=(0, 1, 1)), atol=1e-5)
    cfg = CogVideoXVAEConfig(block_out_channels=(4, 8, 8, 8), layers_per_block=1, norm_num_groups=4,
                             sample_height=96, sample_width=160)
    vae = CogVideoXVAE(cfg)
    vae.load_state_dict(randomize(vae, 3))
    video = torch.rand(1, 3, 1, 96, 128) * 2 - 1
    z = torch.randn(1, 16, 3, 12, 16)
    plain = vae.decode(z)
    for tiling in (VAETiling.official(cfg), VAETiling(48, 64), VAETiling(40, 56)):  # strides 40/64, 40/51->48, 33->32/44->40
        mean, logvar = vae.encode(video, tiling)
        assert mean.shape == logvar.shape == (1, 16, 1, 12, 16)
        out = vae.decode(z, tiling)
        assert out.shape == plain.shape == (1, 3, 9, 96, 128) and torch.isfinite(out).all()
