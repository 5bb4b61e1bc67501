"""LoRAs: every key format in circulation, merged weights against W + s (B A) alpha / r, the
on-the-fly path against the merged one (plain, fp8, int8, nf4), stacking, unloading without
the base file, streaming under a budget, and the messages for LoRAs of another model."""
import os

import pytest
import torch

from skyreels_pack.memory import offload, quant
from skyreels_pack.memory.budget import GB, activation_bytes
from skyreels_pack.models.lora import LoRAError, apply_loras, lora_summary, read_lora, resolve
from skyreels_pack.models.lora.apply import LoRAAdapter
from skyreels_pack.models.wan import dit_keys
from skyreels_pack.sampling.noise import NoiseSource
from skyreels_pack.sampling.sigmas import flow_schedule
from skyreels_pack.sampling.solvers import make_solver

from test_memory import LATENT, FakeDevice, inputs, tiny_config, tiny_model, tiny_weights

RANK = 4
ALPHA = 2.0
LINEARS = ("self_attn.q", "self_attn.o", "cross_attn.k", "ffn.0", "ffn.2")


def _cfg():
    return tiny_config(num_layers=2)


def _factors(cfg, seed=3, layers=LINEARS, rank=RANK):
    """official layer name -> (down [r, in], up [out, r], bias delta [out])."""
    g = torch.Generator().manual_seed(seed)
    shapes = dit_keys.expected_shapes(cfg)
    out = {}
    for i in range(cfg.num_layers):
        for lay in layers:
            name = "blocks.%d.%s" % (i, lay)
            o, n = shapes[name + ".weight"]
            out[name] = (torch.randn(rank, n, generator=g) * 0.2, torch.randn(o, rank, generator=g) * 0.2,
                         torch.randn(o, generator=g) * 0.05)
    return out


def _flat(name):
    return name.replace(".", "_")


def write_format(fmt, factors, alpha=ALPHA):
    """A LoRA state dict in one of the formats in circulation."""
    sd = {}
    for name, (down, up, db) in factors.items():
        if fmt == "comfyui":        # Kijai / lightx2v: diffusion_model. + lora_down/lora_up + diff_b
            k = "diffusion_model." + name
            sd[k + ".lora_down.weight"], sd[k + ".lora_up.weight"], sd[k + ".diff_b"] = down, up, db
            sd[k + ".alpha"] = torch.tensor(alpha)
        elif fmt == "comfyui_ab":   # diffusion_model. + lora_A/lora_B
            k = "diffusion_model." + name
            sd[k + ".lora_A.weight"], sd[k + ".lora_B.weight"] = down, up
            sd[k + ".alpha"] = torch.tensor(alpha)
        elif fmt == "kohya":        # musubi-tuner: lora_unet_ + underscores + alpha
            k = "lora_unet_" + _flat(name)
            sd[k + ".lora_down.weight"], sd[k + ".lora_up.weight"] = down, up
            sd[k + ".alpha"] = torch.tensor(alpha)
        elif fmt == "diffusers":    # PEFT on diffusers' WanTransformer3DModel names, bias as lora_B.bias
            k = "transformer." + dit_keys.official_to_diffusers(name + ".weight")[: -len(".weight")]
            sd[k + ".lora_A.weight"], sd[k + ".lora_B.weight"], sd[k + ".lora_B.bias"] = down, up, db
            sd[k + ".alpha"] = torch.tensor(alpha)
        elif fmt == "kohya_diffusers":
            k = "lora_transformer_" + _flat(dit_keys.official_to_diffusers(name + ".weight")[: -len(".weight")])
            sd[k + ".lora_down.weight"], sd[k + ".lora_up.weight"] = down, up
            sd[k + ".alpha"] = torch.tensor(alpha)
        else:
            raise ValueError(fmt)
    return sd


def explicit(model, factors, strength, alpha=ALPHA, rank=RANK, bias=True, bias_scale=1.0):
    """W + s (B A) alpha / r and b + s diff_b, computed directly."""
    out = {}
    for name, (down, up, db) in factors.items():
        layer = model.get_submodule(name)
        out[name + ".weight"] = layer.weight.float() + strength * (up @ down) * alpha / rank
        if bias:
            out[name + ".bias"] = layer.bias.float() + strength * bias_scale * db
    return out


def merged_weights(model, names):
    offload.prepare_for_sampling(model, "cpu", None)
    try:
        return {n: model.get_submodule(n.rpartition(".")[0]).get_parameter(n.rpartition(".")[2]).detach().clone()
                for n in names}
    finally:
        offload.release(model)


@pytest.mark.parametrize("fmt", ["comfyui", "comfyui_ab", "kohya", "diffusers", "kohya_diffusers"])
def test_each_format_merges_to_the_explicit_weights(fmt):
    model = tiny_model(_cfg())
    factors = _factors(model.config)
    lora = read_lora(write_format(fmt, factors))
    assert lora.format == {"comfyui_ab": "comfyui", "kohya_diffusers": "kohya"}.get(fmt, fmt)
    resolved = resolve(lora, model)
    assert not resolved.missing and not resolved.mismatched
    with_bias = fmt in ("comfyui", "diffusers")
    # PEFT's lora_B.bias is part of the LoRA output, scaled by alpha / r like it; diff_b is not.
    want = explicit(model, factors, 0.8, bias=with_bias, bias_scale=ALPHA / RANK if fmt == "diffusers" else 1.0)
    originals = {k: v.clone() for k, v in model.state_dict().items()}
    apply_loras(model, [(resolved, 0.8)])
    got = merged_weights(model, list(want))
    for k in want:
        torch.testing.assert_close(got[k], want[k], rtol=1e-5, atol=1e-6)
    # The host weights are untouched: the merge lived in the compute copies only.
    for k, v in model.state_dict().items():
        assert torch.equal(v, originals[k]), k


def test_merged_bf16_weights_round_once_from_float32():
    model = tiny_model(_cfg(), weight_dtype="bf16")
    factors = _factors(model.config)
    apply_loras(model, [(resolve(read_lora(write_format("comfyui", factors)), model), 1.0)])
    want = explicit(model, factors, 1.0)
    got = merged_weights(model, list(want))
    for k in want:
        assert got[k].dtype == torch.bfloat16
        assert torch.equal(got[k], want[k].to(torch.bfloat16)), k


def test_on_the_fly_equals_merged_and_stacking_is_additive():
    model = tiny_model(_cfg())
    x, t, ctx = inputs(model.config)
    a = resolve(read_lora(write_format("comfyui", _factors(model.config, seed=3))), model)
    b = resolve(read_lora(write_format("kohya", _factors(model.config, seed=4, layers=("self_attn.q", "cross_attn.v")))), model)

    def run(loras, mode="auto"):
        apply_loras(model, loras, mode=mode)
        offload.prepare_for_sampling(model, "cpu", None)
        try:
            with torch.no_grad():
                return model(x, t, ctx)
        finally:
            offload.release(model)

    base = run([])
    merged = run([(a, 0.7), (b, -1.3)])
    assert lora_summary(model)["on_the_fly"] == 0
    fly = run([(a, 0.7), (b, -1.3)], mode="on_the_fly")
    assert lora_summary(model)["on_the_fly"] == 2 * (len(LINEARS) + 1)  # cross_attn.v is b's alone; q has both
    assert (merged - base).abs().max() > 1e-2
    torch.testing.assert_close(fly, merged, rtol=1e-4, atol=1e-5)
    # Stacked: the merged weights are W + d_a + d_b.
    apply_loras(model, [(a, 0.7), (b, -1.3)])
    names = ["blocks.%d.%s.weight" % (i, lay) for i in range(2) for lay in ("self_attn.q", "cross_attn.v", "ffn.2")]
    both = merged_weights(model, names)
    apply_loras(model, [(a, 0.7)])
    only_a = merged_weights(model, names)
    apply_loras(model, [(b, -1.3)])
    only_b = merged_weights(model, names)
    for n in names:
        w = model.get_submodule(n[: -len(".weight")]).weight
        torch.testing.assert_close(both[n] - w, (only_a[n] - w) + (only_b[n] - w), rtol=1e-5, atol=1e-6)
    # Removing every LoRA gives the base model back exactly.
    assert torch.equal(run([]), base)


@pytest.mark.parametrize("storage", ["fp8_e4m3fn", "int8", "nf4"])
def test_quantized_weights_take_the_lora_on_the_fly(storage):
    """y(x) with the LoRA minus y(x) without it is s alpha / r (x A^T) B^T, layer by layer."""
    cfg = _cfg()
    model = tiny_model(cfg, weight_dtype=storage if storage.startswith("fp8") else "fp32")
    if storage in ("int8", "nf4"):
        quant.quantize_blocks(model, storage)
    factors = _factors(cfg)
    resolved = resolve(read_lora(write_format("comfyui", factors)), model)
    apply_loras(model, [(resolved, 0.6)])
    assert lora_summary(model)["on_the_fly"] == 2 * len(LINEARS)
    xin = torch.randn(5, cfg.dim)
    biases = {name: model.get_submodule(name).bias.clone() for name in factors}
    offload.prepare_for_sampling(model, "cpu", None)
    try:
        for name, (down, up, db) in factors.items():
            layer = model.get_submodule(name)
            torch.testing.assert_close(layer.bias, biases[name] + 0.6 * db)  # biases are float: merged
            assert isinstance(layer._modules["lora"], LoRAAdapter)
            adapter = layer._modules.pop("lora")
            if layer.in_features != cfg.dim:
                layer.lora = adapter
                continue
            with torch.no_grad():
                plain = layer(xin)
                layer.lora = adapter
                patched = layer(xin)
            want = 0.6 * ALPHA / RANK * (xin @ down.t()) @ up.t()
            torch.testing.assert_close(patched - plain, want, rtol=1e-4, atol=1e-5)
    finally:
        offload.release(model)


def test_changing_and_removing_loras_never_reads_the_base_file(tmp_path):
    from safetensors.torch import save_file

    from skyreels_pack.models.wan.dit_loader import load_wan_dit

    cfg = _cfg()
    path = str(tmp_path / "dit.safetensors")
    save_file(tiny_weights(cfg), path)
    model, _ = load_wan_dit(path, config=cfg, weight_dtype="fp32")
    os.remove(path)
    x, t, ctx = inputs(cfg)
    with torch.no_grad():
        base = model(x, t, ctx)
    resolved = resolve(read_lora(write_format("comfyui", _factors(cfg))), model)
    outs = []
    for strength in (1.0, 0.5, 0.0, 1.0):
        apply_loras(model, [(resolved, strength)])
        offload.prepare_for_sampling(model, "cpu", None)
        with torch.no_grad():
            outs.append(model(x, t, ctx))
        offload.release(model)
    assert torch.equal(outs[2], base) and torch.equal(outs[0], outs[3])
    assert not torch.allclose(outs[0], outs[1])
    apply_loras(model, [])
    with torch.no_grad():
        assert torch.equal(model(x, t, ctx), base)


@pytest.mark.parametrize("mode", ["auto", "on_the_fly"])
def test_streamed_blocks_get_the_lora_and_the_masters_stay_clean(mode):
    model = tiny_model()
    x, t, ctx = inputs(model.config)
    resolved = resolve(read_lora(write_format("comfyui", _factors(model.config))), model)
    apply_loras(model, [(resolved, 1.0)], mode=mode)
    offload.prepare_for_sampling(model, "cpu", None)
    with torch.no_grad():
        want = model(x, t, ctx)
    offload.release(model)
    masters = {k: v.clone() for k, v in model.state_dict().items()}
    sizes = offload.estimate_bytes(model)
    block = sizes["per_block"][0]
    budget = sizes["rest"] + activation_bytes(model.config, LATENT, compute_dtype=torch.float32) + 4 * block + block // 3
    fake = FakeDevice()
    plan = offload.prepare_for_sampling(model, "cpu", budget / GB, latent_shape=LATENT, transfer=fake)
    assert plan.streamed and plan.resident
    with torch.no_grad():
        got = model(x, t, ctx)
    offload.release(model)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    for k, v in model.state_dict().items():
        assert torch.equal(v, masters[k]), k


def test_keys_the_model_lacks_are_listed_and_a_foreign_lora_is_refused():
    model = tiny_model(_cfg())
    sd = write_format("comfyui", _factors(model.config))
    sd["diffusion_model.blocks.0.cross_attn.k_img.lora_down.weight"] = torch.randn(RANK, 64)  # an I2V LoRA
    sd["diffusion_model.blocks.0.cross_attn.k_img.lora_up.weight"] = torch.randn(64, RANK)
    resolved = resolve(read_lora(sd), model)
    assert resolved.missing == ["diffusion_model.blocks.0.cross_attn.k_img"]
    assert "k_img" in resolved.report() and "another base model" in resolved.report()

    flux = {"diffusion_model.double_blocks.0.img_attn.qkv.lora_down.weight": torch.randn(4, 64),
            "diffusion_model.double_blocks.0.img_attn.qkv.lora_up.weight": torch.randn(192, 4)}
    with pytest.raises(LoRAError, match="none of the 1 layers.*double_blocks.0.img_attn.qkv.*another base model"):
        resolve(read_lora(flux), model, "the test DiT")

    wider = _factors(tiny_config(num_layers=2, dim=128, ffn_dim=256))  # same names, another size
    with pytest.raises(LoRAError, match="other shapes"):
        resolve(read_lora(write_format("comfyui", wider)), model)


def test_unsupported_lycoris_and_broken_pairs_are_explained():
    with pytest.raises(LoRAError, match="LoKr"):
        read_lora({"lora_unet_blocks_0_ffn_0.lokr_w1": torch.zeros(2, 2)})
    with pytest.raises(LoRAError, match="without its up"):
        read_lora({"diffusion_model.blocks.0.ffn.0.lora_down.weight": torch.zeros(2, 64)})
    with pytest.raises(LoRAError, match="no LoRA weights"):
        read_lora({"blocks.0.ffn.0.weight": torch.zeros(2, 2)})


def test_diff_keys_reach_norms_and_modulation():
    model = tiny_model(_cfg())
    d_norm = torch.randn(model.config.dim)
    d_mod = torch.randn(1, 6, model.config.dim)
    sd = {"diffusion_model.blocks.1.norm3.diff": d_norm, "diffusion_model.blocks.1.norm3.diff_b": d_norm * 2,
          "diffusion_model.blocks.0.modulation.diff": d_mod, "diffusion_model.head.modulation.diff": d_mod[:, :2]}
    resolved = resolve(read_lora(sd), model)
    assert not resolved.missing
    apply_loras(model, [(resolved, 0.5)])
    names = ["blocks.1.norm3.weight", "blocks.1.norm3.bias", "blocks.0.modulation", "head.modulation"]
    got = merged_weights(model, names)
    torch.testing.assert_close(got["blocks.1.norm3.weight"], model.blocks[1].norm3.weight + 0.5 * d_norm)
    torch.testing.assert_close(got["blocks.1.norm3.bias"], model.blocks[1].norm3.bias + d_norm)
    torch.testing.assert_close(got["blocks.0.modulation"], model.blocks[0].modulation + 0.5 * d_mod)
    torch.testing.assert_close(got["head.modulation"], model.head.modulation + 0.5 * d_mod[:, :2])


# --------------------------------------------------------------------------- the distill sampler


def test_simple_grid_is_the_distill_step_list():
    s = flow_schedule(4, 5.0, "simple")
    torch.testing.assert_close(s.timesteps, torch.tensor([1000.0, 937.5, 833.3333, 625.0]))
    torch.testing.assert_close(s.sigmas, torch.tensor([1.0, 0.9375, 0.8333333, 0.625, 0.0]))


def test_lcm_predicts_clean_then_renoises_with_seeded_noise():
    sig = flow_schedule(4, 5.0, "simple").sigmas
    x0 = torch.randn(1, 2, 3)
    noise = NoiseSource(7)
    x = noise.randn(x0.shape)
    solver = make_solver("lcm", sig, NoiseSource(9))
    check = NoiseSource(9)
    for i in range(4):
        eps = (x - (1 - sig[i]) * x0) / sig[i]   # the noise that makes x at sigma_i
        v = eps - x0                              # the exact velocity
        x = solver.step(v, x)
        if i < 3:
            want = (1 - sig[i + 1]) * x0 + sig[i + 1] * check.randn(x0.shape)
            torch.testing.assert_close(x, want, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(x, x0, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="noise source"):
        make_solver("lcm", sig)


# --------------------------------------------------------------------------- nodes


def test_lora_node_chains_and_the_df_sampler_takes_the_lora_model(tmp_path, monkeypatch):
    from safetensors.torch import save_file

    from fakes import ToyVAE, tiny_df_dit
    from skyreels_pack import host
    from skyreels_pack.nodes import handles
    from skyreels_pack.nodes.base import NodeError
    from skyreels_pack.nodes.df import DFSampler
    from skyreels_pack.nodes.loras import LoRALoader

    model, c, u = tiny_df_dit()
    handle = handles.DiTHandle(model, model.config, "SkyReels-V2-DF-tiny")
    masters = {k: v.clone() for k, v in model.state_dict().items()}
    paths = []
    monkeypatch.setattr(host, "_model_roots", [str(tmp_path)])  # LoRAs are read inside the loras folders only
    (tmp_path / "loras").mkdir()
    for seed, layers in ((3, ("self_attn.q", "ffn.2")), (4, ("cross_attn.o",))):
        p = str(tmp_path / "loras" / ("lora%d.safetensors" % seed))
        save_file({k: v.contiguous() for k, v in write_format("comfyui", _factors(model.config, seed, layers)).items()}, p)
        paths.append(p)
    (one,) = LoRALoader().apply(handle, "unused", 1.0, path=paths[0])
    (two,) = LoRALoader().apply(one, "unused", 0.5, path=paths[1])
    assert handle.loras == () and len(one.loras) == 1 and [s.strength for s in two.loras] == [1.0, 0.5]
    (same,) = LoRALoader().apply(handle, "unused", 0.0, path=paths[0])
    assert same is handle
    with pytest.raises(NodeError, match="not found"):
        LoRALoader().apply(handle, "missing.safetensors", 1.0)

    vae = handles.VAEHandle(ToyVAE(), "toy")
    opts = handles.DFOptions(base_num_frames=9, overlap_history=5, solver="lcm", sigma_grid="simple")

    def sample(h):
        return DFSampler().sample(h, vae, [[c, {}]], [[u, {}]], 32, 32, 9, 5, 2, 1.0, 5.0, 0, 1, options=opts)[1]["samples"]

    base, lora2, lora1, base_again = sample(handle), sample(two), sample(one), sample(handle)
    assert torch.equal(base, base_again)
    assert not torch.allclose(base, lora1) and not torch.allclose(lora1, lora2)
    for k, v in model.state_dict().items():
        assert torch.equal(v, masters[k]), k


# --------------------------------------------------------------------------- released key maps


def _key_files():
    from test_keys import CONFIGS, DIT_FILES, _split

    return [(p, _split(p), CONFIGS) for p in DIT_FILES]


@pytest.mark.parametrize("case", _key_files(), ids=lambda c: "%s.%s" % c[1])
def test_a_lora_on_every_linear_of_the_released_models_finds_its_layers(case):
    """LoRAs written against the released key maps (meta tensors, no memory), in the naming of
    the key file and in kohya's flattened spelling, reach every Linear layer of our model."""
    import json

    from key_maps import rank1_meta_lora

    from skyreels_pack.models.wan.dit import WanDiT
    from skyreels_pack.models.wan.dit_config import WanDiTConfig

    path, (model_name, naming), configs = case
    with open(path) as f:
        listed = json.load(f)
    with torch.device("meta"):
        model = WanDiT(WanDiTConfig.from_official(configs[model_name]["official_config"]))
    dotted = "diffusion_model." if naming == "official" else "transformer."
    for prefix in (dotted, "lora_unet_"):
        sd = rank1_meta_lora(listed, prefix)
        resolved = resolve(read_lora(sd), model)
        assert not resolved.missing and not resolved.mismatched, resolved.report()
        targets = {(d.target.module, d.target.param) for d in resolved.deltas}
        ours = {n for n, m in model.named_modules() if hasattr(m, "in_features")}
        assert ours <= {m for m, p in targets if p == "weight"}  # (plus the fps embedding table of DF-1.3B)
