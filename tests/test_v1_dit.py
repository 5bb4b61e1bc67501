"""SkyReels-V1 DiT beyond the golden cases: text masks, batches, the memory machinery (streaming,
int8/nf4, fp8), TeaCache, loader messages."""
import pytest
import torch

from skyreels_pack.memory import offload
from skyreels_pack.memory.budget import GB
from skyreels_pack.memory.quant import quantize_blocks
from skyreels_pack.memory.streamable import activations_of, blocks_of
from skyreels_pack.models.hunyuan import dit_keys
from skyreels_pack.models.hunyuan.dit_config import HunyuanDiTConfig
from skyreels_pack.models.hunyuan.dit_loader import load_hunyuan_dit
from skyreels_pack.models.loading.checkpoint import CheckpointError

from test_memory import FakeDevice

LATENT = (2, 4, 6)


def tiny_config(**kw):
    base = dict(hidden_size=64, num_heads=2, depth=2, depth_single_blocks=3, text_dim=24, pooled_dim=16,
                axes_dim=(8, 12, 12))
    base.update(kw)
    return HunyuanDiTConfig(**base)


def tiny_weights(cfg, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, shape in sorted(dit_keys.expected_shapes(cfg).items()):
        t = torch.randn(shape, generator=g)
        if "norm" in k and k.endswith("weight"):
            t = 1 + 0.1 * t
        elif k.endswith("weight") and len(shape) >= 2:
            t = t / torch.Size(shape[1:]).numel() ** 0.5
        else:
            t = 0.1 * t
        out[k] = t
    return out


def tiny_model(cfg=None, weight_dtype="fp32", seed=0):
    cfg = cfg or tiny_config()
    model, _ = load_hunyuan_dit(tiny_weights(cfg, seed), weight_dtype=weight_dtype, compute_dtype=torch.float32,
                                axes_dim=cfg.axes_dim)
    return model


def inputs(cfg, batch=1, text_len=7, seed=1):
    g = torch.Generator().manual_seed(seed)
    return dict(x=torch.randn(batch, 16, *LATENT, generator=g), timestep=torch.full((batch,), 871.3),
                text=torch.randn(batch, text_len, cfg.text_dim, generator=g),
                pooled=torch.randn(batch, cfg.pooled_dim, generator=g), guidance=torch.full((batch,), 1000.0))


def run(model, i, **kw):
    with torch.no_grad():
        return model(i["x"], i["timestep"], i["text"], i["pooled"], guidance=i["guidance"], **kw)


def test_padded_rows_never_matter_and_cropping_is_the_same():
    model = tiny_model()
    i = inputs(model.config, text_len=9)
    mask = torch.tensor([[1] * 5 + [0] * 4])
    out = run(model, i, text_mask=mask)
    garbage = dict(i, text=torch.cat([i["text"][:, :5], 50 * torch.randn(1, 4, model.config.text_dim)], 1))
    assert torch.equal(run(model, garbage, text_mask=mask), out)
    assert torch.equal(run(model, dict(i, text=i["text"][:, :5])), out)
    assert not torch.allclose(run(model, i), out)  # the rows do matter when they are valid


def test_batch_rows_with_different_lengths_equal_each_row_alone():
    model = tiny_model()
    i = inputs(model.config, batch=2, text_len=6)
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0]])
    both = run(model, i, text_mask=mask)
    for b, n in ((0, 6), (1, 3)):
        alone = {k: v[b:b + 1] for k, v in i.items()}
        alone["text"] = alone["text"][:, :n]
        torch.testing.assert_close(both[b:b + 1], run(model, alone), atol=2e-6, rtol=1e-5)


def test_input_checks():
    model = tiny_model()
    i = inputs(model.config)
    with pytest.raises(ValueError, match="right padding"):
        run(model, i, text_mask=torch.tensor([[0, 1, 1, 1, 1, 1, 1]]))
    with pytest.raises(ValueError, match="guidance"):
        with torch.no_grad():
            model(i["x"], i["timestep"], i["text"], i["pooled"])
    with pytest.raises(ValueError, match="text-to-video model takes no image_latents"):
        run(model, i, image_latents=torch.zeros_like(i["x"]))
    i2v = tiny_model(tiny_config(in_channels=32))
    with pytest.raises(ValueError, match="needs image_latents"):
        run(i2v, i)
    assert i2v.config.variant == "i2v" and model.config.variant == "t2v"


def test_streamable_protocol_order_and_hooks():
    model = tiny_model()
    blocks = blocks_of(model)
    assert blocks == list(model.double_blocks) + list(model.single_blocks)
    seen = []

    class Hooks:
        def before_block(self, i, block):
            seen.append(("before", i, blocks[i] is block))

        def after_block(self, i, block):
            seen.append(("after", i, blocks[i] is block))

    model.block_hooks = Hooks()
    run(model, inputs(model.config))
    model.block_hooks = None
    assert seen == [(w, i, True) for i in range(len(blocks)) for w in ("before", "after")]
    small = activations_of(model, (5, 30, 52), compute_dtype=torch.bfloat16)
    big = activations_of(model, (25, 68, 120), compute_dtype=torch.bfloat16)
    assert big > 10 * small > 0
    assert activations_of(model, (25, 68, 120), teacache=True) - big >= 2 * 25 * 34 * 60 * 64 * 4


@pytest.mark.parametrize("resident", [5, 2, 0])
def test_vram_budget_streaming_gives_identical_results(resident):
    model = tiny_model()
    i = inputs(model.config)
    reference = run(model, i)
    sizes = offload.estimate_bytes(model)
    act = activations_of(model, LATENT, compute_dtype=torch.float32)
    block = max(sizes["per_block"])
    budget = sizes["rest"] + act + resident * block + (2 * block if resident < 5 else 0) + block // 3
    fake = FakeDevice()
    plan = offload.prepare_for_sampling(model, "cpu", budget / GB, latent_shape=LATENT, transfer=fake)
    assert plan.fits and len(plan.resident) >= resident
    assert torch.equal(run(model, i), reference)
    assert fake.peak <= budget - act
    offload.release(model)
    assert fake.current == 0 and model.block_hooks is None


@pytest.mark.parametrize("mode,bound", [("int8", 0.03), ("nf4", 0.3)])
def test_quantized_blocks_stay_close(mode, bound):
    model = tiny_model()
    i = inputs(model.config)
    reference = run(model, i)
    quantize_blocks(model, mode)
    out = run(model, i)
    rel = ((out - reference).norm() / reference.norm()).item()
    assert 0 < rel < bound


def test_fp8_storage_stays_close_and_is_fp8():
    cfg = tiny_config()
    reference = run(tiny_model(cfg), inputs(cfg))
    model = tiny_model(cfg, weight_dtype="fp8_e4m3fn")
    assert model.single_blocks[0].linear1.weight.dtype == torch.float8_e4m3fn
    assert model.double_blocks[0].img_mod.linear.weight.dtype == torch.float8_e4m3fn
    assert model.final_layer.linear.weight.dtype == torch.float32
    rel = ((run(model, inputs(cfg)) - reference).norm() / reference.norm()).item()
    assert 0 < rel < 0.05


def test_teacache_skips_middle_steps_and_reuses_the_residual():
    from skyreels_pack.sampling.guidance import Denoiser, HunyuanInputs
    from skyreels_pack.sampling.teacache import HUNYUAN_COEFFICIENTS, hunyuan_teacache_pair
    from skyreels_pack.sampling.video_sampler import SampleSettings, sample_video

    model = tiny_model()
    i = inputs(model.config)
    cond = HunyuanInputs(i["text"], i["pooled"], None, 1.0)
    settings = SampleSettings(steps=8, cfg=1.0, shift=7.0, seed=3, solver="euler", sigma_grid="hunyuan")
    plain = sample_video(model, (1, 16) + LATENT, cond, None, settings)
    caches = hunyuan_teacache_pair(10.0, 8)  # a huge threshold: every middle step is skipped
    cached = sample_video(model, (1, 16) + LATENT, cond, None, settings, caches)
    assert caches[0].skipped == list(range(1, 7))  # the first and the last step always compute
    assert caches[0].coefficients == HUNYUAN_COEFFICIENTS and caches[1].index == 0
    assert not torch.equal(plain, cached) and torch.isfinite(cached).all()
    none = hunyuan_teacache_pair(0.0, 8)
    assert torch.equal(sample_video(model, (1, 16) + LATENT, cond, None, settings, none), plain)
    assert none[0].skipped == []
    den = Denoiser(model, cond, None, 1.0)
    assert not den.uses_cfg


def test_loader_messages():
    cfg = tiny_config(in_channels=33)
    sd = tiny_weights(tiny_config())
    sd["img_in.proj.weight"] = torch.zeros(64, 33, 1, 2, 2)
    with pytest.raises(CheckpointError, match="HunyuanVideo-I2V"):
        load_hunyuan_dit(sd)
    with pytest.raises(CheckpointError, match="not a HunyuanVideo"):
        load_hunyuan_dit({"blocks.0.self_attn.q.weight": torch.zeros(4, 4)})
    broken = tiny_weights(tiny_config())
    del broken["single_blocks.1.linear2.weight"]
    with pytest.raises(CheckpointError, match="Missing 1 tensors: single_blocks.1.linear2.weight"):
        load_hunyuan_dit(broken)
    del cfg


def test_diffusers_and_comfy_namings_load_the_same_model():
    cfg = tiny_config()
    sd = tiny_weights(cfg)
    i = inputs(cfg)
    reference = run(tiny_model(cfg), i)
    comfy = {"model.diffusion_model." + k: v for k, v in sd.items()}
    m, _ = load_hunyuan_dit(comfy, weight_dtype="fp32", axes_dim=cfg.axes_dim)
    assert torch.equal(run(m, i), reference)
    diff = {}
    for k, v in sd.items():
        if dit_keys.is_swapped(k):
            v = torch.cat([v[v.shape[0] // 2:], v[: v.shape[0] // 2]])
        parts = dit_keys.original_to_diffusers(k)
        d = cfg.hidden_size
        pieces = [v[:d], v[d:2 * d], v[2 * d:3 * d], v[3 * d:]] if len(parts) == 4 else list(v.chunk(len(parts)))
        diff.update(zip(parts, pieces))
    m, _ = load_hunyuan_dit(diff, weight_dtype="fp32", axes_dim=cfg.axes_dim)
    assert m.naming == "diffusers" and torch.equal(run(m, i), reference)


def test_sampler_node_reads_comfy_conditioning_and_refuses_mismatches():
    from skyreels_pack.models.hunyuan.conditioning import make_conditioning
    from skyreels_pack.nodes.base import NodeError
    from skyreels_pack.nodes.handles import DiTHandle
    from skyreels_pack.nodes.v1 import V1Sampler

    cfg = tiny_config()
    handle = DiTHandle(tiny_model(cfg), cfg, "tiny_t2v.safetensors")
    i = inputs(cfg)
    pos = make_conditioning(i["text"], i["pooled"])
    comfy_pos = [[i["text"], {"pooled_output": i["pooled"], "guidance": 6.0}]]
    neg = make_conditioning(i["text"][:, :3] * 0.5, i["pooled"] * 0.5)
    latent = {"samples": torch.zeros(1, 16, *LATENT)}
    args = dict(seed=5, steps=2, cfg=6.0, embedded_guidance=1.0, shift=7.0)
    out = V1Sampler().sample(handle, pos, neg, latent, **args)[0]["samples"]
    assert out.shape == (1, 16) + LATENT and torch.isfinite(out).all()
    assert torch.equal(V1Sampler().sample(handle, comfy_pos, neg, latent, **args)[0]["samples"], out)
    # cfg 1: the negative is never read
    V1Sampler().sample(handle, pos, [], latent, **dict(args, cfg=1.0))
    with pytest.raises(NodeError, match="text-to-video model but the conditioning carries a start image"):
        V1Sampler().sample(handle, [[i["text"], {"pooled_output": i["pooled"],
                                                 "concat_latent_image": torch.zeros(1, 16, 1, 4, 6)}]],
                           neg, latent, **args)
    i2v_cfg = tiny_config(in_channels=32)
    i2v = DiTHandle(tiny_model(i2v_cfg), i2v_cfg, "tiny_i2v")
    with pytest.raises(NodeError, match="image-to-video model"):
        V1Sampler().sample(i2v, pos, neg, latent, **args)
    with_image = [[i["text"], {"pooled_output": i["pooled"], "concat_latent_image": torch.randn(1, 16, 1, 4, 6)}]]
    assert V1Sampler().sample(i2v, with_image, neg, latent, **args)[0]["samples"].shape == (1, 16) + LATENT


def test_gguf_file_loads_with_quantized_linears(tmp_path):
    pytest.importorskip("gguf")
    from skyreels_pack.memory.gguf_quant import GGUFLinear
    from skyreels_pack.models.loading.gguf_writer import write_gguf

    cfg = tiny_config(hidden_size=256, num_heads=2, axes_dim=(16, 56, 56))
    sd = tiny_weights(cfg)
    reference = run(tiny_model(cfg), inputs(cfg))
    path = str(tmp_path / "skyreels_hunyuan_t2v-Q8_0.gguf")
    write_gguf(path, sd, "hyvid", types="Q8_0")
    model, got = load_hunyuan_dit(path, weight_dtype="auto", compute_dtype=torch.float32)
    assert got == cfg and isinstance(model.single_blocks[0].linear1, GGUFLinear)
    rel = ((run(model, inputs(cfg)) - reference).norm() / reference.norm()).item()
    assert rel < 0.02
    with pytest.raises(CheckpointError, match="general.architecture = wan"):
        write_gguf(str(tmp_path / "wan.gguf"), sd, "wan", types="F16")
        load_hunyuan_dit(str(tmp_path / "wan.gguf"))
