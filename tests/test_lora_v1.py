"""LoRAs on the SkyReels-V1 (HunyuanVideo) DiT: musubi / kohya, ComfyUI (original and ComfyUI's
own names) and diffusers / PEFT files whose q / k / v (and the single blocks' q / k / v / MLP
input) are separate tensors while our weights are fused.  Every layer must apply, and the DiT
with the LoRA must give what a model whose weights were merged by hand gives, the split rows at
the offsets computed here (not by the code under test), merged into bf16 and on the fly."""
import pytest
import torch

from fakes import random_weights
from skyreels_pack.cli.demo.v1 import CLIP, DIT, LLAMA
from skyreels_pack.memory import offload
from skyreels_pack.models.hunyuan import dit_keys
from skyreels_pack.models.hunyuan.dit_config import HunyuanDiTConfig
from skyreels_pack.models.hunyuan.dit_loader import load_hunyuan_dit
from skyreels_pack.models.lora import LoRAError, apply_loras, lora_summary, read_lora, resolve
from skyreels_pack.models.lora.apply import LoRAAdapter

from test_v1_dit import inputs, run

RANK, ALPHA = 4, 2.0
# Our (original) Linear layers a LoRA trainer targets: the fused ones first.
FUSED = ("double_blocks.{i}.img_attn_qkv", "double_blocks.{i}.txt_attn_qkv", "single_blocks.{j}.linear1")
PLAIN = ("double_blocks.{i}.img_attn_proj", "double_blocks.{i}.txt_attn_proj", "double_blocks.{i}.img_mlp.fc1",
         "double_blocks.{i}.img_mlp.fc2", "double_blocks.{i}.txt_mlp.fc2", "double_blocks.{i}.img_mod.linear",
         "single_blocks.{j}.linear2", "single_blocks.{j}.modulation.linear")
FORMATS = ("comfyui", "comfyui_original", "kohya", "diffusers")


def _cfg():
    return HunyuanDiTConfig(in_channels=16, text_dim=LLAMA["hidden_size"], pooled_dim=CLIP["hidden_size"], **DIT)


CFG = _cfg()
SHAPES = dit_keys.expected_shapes(CFG)
D, M = CFG.hidden_size, CFG.mlp_hidden


def _base_weights():
    return random_weights(SHAPES, seed=5)


def _model(weights, weight_dtype="fp32"):
    model, _ = load_hunyuan_dit(weights, weight_dtype=weight_dtype, compute_dtype=torch.float32, axes_dim=CFG.axes_dim)
    return model


def _layers():
    names = []
    for tmpl in FUSED + PLAIN:
        for n in range(max(CFG.depth, CFG.depth_single_blocks)):
            if ("{i}" in tmpl and n < CFG.depth) or ("{j}" in tmpl and n < CFG.depth_single_blocks):
                names.append(tmpl.format(i=n, j=n))
    return names


def _parts(name):
    """Row ranges of ``name`` that diffusers keeps as separate tensors, computed here by hand:
    q, k, v of D rows each, then the single blocks' MLP input of M rows."""
    if name.endswith("attn_qkv"):
        return [(0, D), (D, 2 * D), (2 * D, 3 * D)]
    if name.endswith("linear1"):
        return [(0, D), (D, 2 * D), (2 * D, 3 * D), (3 * D, 3 * D + M)]
    return [(0, SHAPES[name + ".weight"][0])]


def _pieces(split: bool, seed=3):
    """[(our layer, (row a, row b), down [r, in], up [b - a, r], bias delta [b - a])]: one piece per
    fused layer, or one per diffusers tensor (each with its own down, as trainers make them)."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for name in _layers():
        n_in = SHAPES[name + ".weight"][1]
        for a, b in (_parts(name) if split else [(0, SHAPES[name + ".weight"][0])]):
            out.append((name, (a, b), torch.randn(RANK, n_in, generator=g) * 0.3,
                        torch.randn(b - a, RANK, generator=g) * 0.3, torch.randn(b - a, generator=g) * 0.05))
    return out


def _flat(name):
    return name.replace(".", "_")


def write_format(fmt, pieces):
    """A LoRA state dict as the trainers / tools in circulation write it."""
    sd = {}
    for name, (a, b), down, up, db in pieces:
        if fmt == "diffusers":  # finetrainers / PEFT on HunyuanVideoTransformer3DModel: split q/k/v, lora_B.bias
            parts = dit_keys.original_to_diffusers(name + ".weight")
            idx = [r[0] for r in _parts(name)].index(a) if len(parts) > 1 else 0
            k = "transformer." + parts[idx][: -len(".weight")]
            sd[k + ".lora_A.weight"], sd[k + ".lora_B.weight"], sd[k + ".lora_B.bias"] = down, up, db
        elif fmt == "comfyui":  # saved from inside ComfyUI: ComfyUI's own (Flux-style) names, diff_b
            k = "diffusion_model." + dit_keys.original_to_comfy(name + ".weight")[: -len(".weight")]
            sd[k + ".lora_down.weight"], sd[k + ".lora_up.weight"], sd[k + ".diff_b"] = down, up, db
        elif fmt == "comfyui_original":  # Kijai-style: diffusion_model. + the original names
            k = "diffusion_model." + name
            sd[k + ".lora_down.weight"], sd[k + ".lora_up.weight"] = down, up
        elif fmt == "kohya":  # musubi-tuner
            k = "lora_unet_" + _flat(name)
            sd[k + ".lora_down.weight"], sd[k + ".lora_up.weight"] = down, up
        else:
            raise ValueError(fmt)
        sd[k + ".alpha"] = torch.tensor(ALPHA)
    return sd


def _has_bias(fmt):
    return fmt in ("comfyui", "diffusers")


def merged_by_hand(weights, pieces, strength, fmt, shift_rows=0):
    """W + s (up @ down) alpha / r on rows a:b (and the bias delta: diff_b as it is, PEFT's
    lora_B.bias scaled like the LoRA); ``shift_rows`` puts the split pieces at wrong offsets."""
    out = {k: v.float().clone() for k, v in weights.items()}
    for name, (a, b), down, up, db in pieces:
        if shift_rows and name.endswith(("attn_qkv", "linear1")):
            rows = out[name + ".weight"].shape[0]
            a, b = (a + shift_rows) % rows, (a + shift_rows) % rows + (b - a)
            if b > rows:
                continue
        out[name + ".weight"][a:b] += strength * ALPHA / RANK * (up @ down)
        if _has_bias(fmt):
            out[name + ".bias"][a:b] += strength * (ALPHA / RANK if fmt == "diffusers" else 1.0) * db
    return out


def _run(model, loras, mode="auto"):
    apply_loras(model, loras, mode=mode)
    offload.prepare_for_sampling(model, "cpu", None)
    try:
        return run(model, inputs(CFG))
    finally:
        offload.release(model)


def _effective(model):
    """The float32 weights the model computes with (fp8 read back as its matrix products see it)."""
    out = {}
    for k, v in model.state_dict().items():
        if k.endswith((".scale_weight", ".weight_scale")):
            continue
        out[k] = v.float()
        owner, _, leaf = k.rpartition(".")
        m = model.get_submodule(owner)
        if leaf == "weight" and hasattr(m, "cast_params"):
            out[k] = m.cast_params(torch.zeros(1, dtype=torch.float32))[0].detach().float()
    return out


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_layer_of_each_format_finds_its_target(fmt):
    model = _model(_base_weights())
    pieces = _pieces(split=fmt == "diffusers")
    lora = read_lora(write_format(fmt, pieces))
    assert lora.format == {"comfyui_original": "comfyui"}.get(fmt, fmt)
    resolved = resolve(lora, model)
    assert not resolved.missing and not resolved.mismatched, resolved.report()
    assert len(lora.layers) == len(pieces)
    # diffusers' split tensors become deltas on row slices at our offsets
    rows = {(d.target.module, d.rows) for d in resolved.deltas if d.target.param == "weight"}
    if fmt == "diffusers":
        assert ("single_blocks.0.linear1", (3 * D, 3 * D + M)) in rows
        assert ("double_blocks.1.txt_attn_qkv", (D, 2 * D)) in rows
    else:
        assert all(r is None for _, r in rows)


@pytest.mark.parametrize("storage,mode", [("bf16", "auto"), ("fp32", "on_the_fly"), ("fp8_e4m3fn", "auto")],
                         ids=["bf16-merged", "fp32-on-the-fly", "fp8-on-the-fly"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_dit_output_equals_a_model_merged_by_hand(fmt, storage, mode):
    weights = _base_weights()
    model = _model(weights, storage)
    base = _effective(model)
    pieces = _pieces(split=fmt == "diffusers")
    resolved = resolve(read_lora(write_format(fmt, pieces)), model)
    strength = 0.8
    plain = _run(model, [])
    got = _run(model, [(resolved, strength)], mode)
    summary = lora_summary(model)
    if storage == "bf16":
        assert summary["on_the_fly"] == 0 and summary["merged"] > 0
    else:
        assert summary["on_the_fly"] == len(_layers())
        assert all(isinstance(model.get_submodule(n)._modules.get("lora"), LoRAAdapter) for n in _layers())
    # the reference: a plain model (no LoRA machinery) whose weights are merged by hand
    ref_dtype = "bf16" if storage == "bf16" else "fp32"
    want = run(_model(merged_by_hand(base, pieces, strength, fmt), ref_dtype), inputs(CFG))
    tol = dict(rtol=1e-3, atol=2e-3) if storage == "bf16" else dict(rtol=1e-4, atol=1e-4)
    assert (got - plain).abs().max() > 0.05  # the LoRA changes the output a lot
    torch.testing.assert_close(got, want, **tol)
    # The same pieces at a wrong offset (the k rows where the q rows belong ...) are told apart.
    wrong = run(_model(merged_by_hand(base, pieces, strength, fmt, shift_rows=D), ref_dtype), inputs(CFG))
    assert not torch.allclose(got, wrong, **tol)
    # The host weights never change; removing the LoRA gives the base model back.
    assert torch.equal(_run(model, []), plain)


def test_final_modulation_halves_swapped_in_diffusers_land_swapped():
    """diffusers' norm_out.linear holds (scale, shift), ours (shift, scale): its LoRA's rows
    0:D belong to our rows D:2D and the other way round."""
    model = _model(_base_weights())
    g = torch.Generator().manual_seed(9)
    down, up = torch.randn(RANK, D, generator=g) * 0.3, torch.randn(2 * D, RANK, generator=g) * 0.3
    sd = {"transformer.norm_out.linear.lora_A.weight": down, "transformer.norm_out.linear.lora_B.weight": up}
    resolved = resolve(read_lora(sd), model)
    assert not resolved.missing and not resolved.mismatched
    apply_loras(model, [(resolved, 1.0)])
    offload.prepare_for_sampling(model, "cpu", None)
    try:
        merged = model.final_layer.adaLN_modulation[1].weight.detach().clone()
    finally:
        offload.release(model)
    w = model.final_layer.adaLN_modulation[1].weight.detach()
    delta = up @ down
    torch.testing.assert_close(merged - w, torch.cat([delta[D:], delta[:D]]), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mode", ["auto", "on_the_fly"])
def test_streamed_blocks_under_a_budget_get_the_split_lora(mode):
    from skyreels_pack.memory.budget import GB
    from skyreels_pack.memory.streamable import activations_of

    from test_memory import FakeDevice

    model = _model(_base_weights())
    resolved = resolve(read_lora(write_format("diffusers", _pieces(split=True))), model)
    whole = _run(model, [(resolved, 0.9)], mode)
    sizes = offload.estimate_bytes(model)
    act = activations_of(model, LATENT_SHAPE, compute_dtype=torch.float32)
    block = max(sizes["per_block"])
    budget = sizes["rest"] + act + 2 * block + block // 3  # room to stream, not to hold them all
    masters = {k: v.clone() for k, v in model.state_dict().items()}
    plan = offload.prepare_for_sampling(model, "cpu", budget / GB, latent_shape=LATENT_SHAPE, transfer=FakeDevice())
    try:
        assert plan.fits and len(plan.resident) < len(model.streamable_blocks())
        torch.testing.assert_close(run(model, inputs(CFG)), whole, rtol=1e-5, atol=1e-5)
    finally:
        offload.release(model)
    for k, v in model.state_dict().items():
        assert torch.equal(v, masters[k]), k


def test_strength_zero_changes_nothing():
    model = _model(_base_weights())
    resolved = resolve(read_lora(write_format("diffusers", _pieces(split=True))), model)
    plain = _run(model, [])
    assert torch.equal(_run(model, [(resolved, 0.0)]), plain)
    assert lora_summary(model) == {"merged": 0, "on_the_fly": 0}


def _wan_lora():
    """A lightx2v-style LoRA of the Wan DiT (ComfyUI names) and one in diffusers' Wan names."""
    out = {}
    for i in range(2):
        for lay in ("self_attn.q", "cross_attn.k", "ffn.0"):
            k = "diffusion_model.blocks.%d.%s" % (i, lay)
            out[k + ".lora_down.weight"], out[k + ".lora_up.weight"] = torch.zeros(4, 128), torch.zeros(128, 4)
    return out


def test_a_wan_lora_is_refused_as_made_for_another_base_model():
    model = _model(_base_weights())
    with pytest.raises(LoRAError, match="none of the 6 layers.*blocks.0.self_attn.q.*made for another base model"):
        resolve(read_lora(_wan_lora()), model, "the V1 DiT")
    # a HunyuanVideo LoRA of another width: other shapes
    wide = {"lora_unet_double_blocks_0_img_attn_qkv.lora_down.weight": torch.zeros(4, 3072),
            "lora_unet_double_blocks_0_img_attn_qkv.lora_up.weight": torch.zeros(9216, 4)}
    with pytest.raises(LoRAError, match="other shapes"):
        resolve(read_lora(wide), model)


def test_v1_lora_node_adds_to_the_v1_handle_and_the_sampler_session_applies_it(tmp_path, monkeypatch):
    from safetensors.torch import save_file

    from skyreels_pack import host
    from skyreels_pack.nodes import handles
    from skyreels_pack.nodes.base import NodeError
    from skyreels_pack.nodes.loras import LoRALoader, V1LoRALoader
    from skyreels_pack.nodes.model_session import dit_session

    assert V1LoRALoader.INPUT_TYPES()["required"]["model"][0] == handles.V1_DIT
    assert V1LoRALoader.RETURN_TYPES == (handles.V1_DIT,)
    assert LoRALoader.INPUT_TYPES()["required"]["model"][0] == handles.DIT  # the Wan node is unchanged
    model = _model(_base_weights())
    handle = handles.DiTHandle(model, model.config, "skyreels_hunyuan_t2v_tiny.safetensors")
    monkeypatch.setattr(host, "_model_roots", [str(tmp_path)])
    (tmp_path / "loras").mkdir()
    good, wan = str(tmp_path / "loras" / "hunyuan_style.safetensors"), str(tmp_path / "loras" / "wan.safetensors")
    save_file({k: v.contiguous() for k, v in write_format("diffusers", _pieces(split=True)).items()}, good)
    save_file(_wan_lora(), wan)

    (with_lora,) = V1LoRALoader().apply(handle, "unused", 0.7, path=good)
    assert handle.loras == () and [s.strength for s in with_lora.loras] == [0.7]
    (same,) = V1LoRALoader().apply(handle, "unused", 0.0, path=good)
    assert same is handle
    with pytest.raises(NodeError, match="skyreels_hunyuan_t2v_tiny.*SkyReels-V1.*made for another base model"):
        V1LoRALoader().apply(handle, "unused", 1.0, path=wan)

    def sample(h):
        with dit_session(h, LATENT_SHAPE) as dit:
            return run(dit, inputs(CFG))

    base, lora, base_again = sample(handle), sample(with_lora), sample(handle)
    assert torch.equal(base, base_again) and (lora - base).abs().max() > 0.05
    assert torch.equal(_run(model, [(with_lora.loras[0].resolved, 0.7)]), lora)


LATENT_SHAPE = (2, 4, 6)


@pytest.mark.parametrize("naming", ["original", "diffusers"])
@pytest.mark.parametrize("released", ["skyreels-v1-hunyuan-t2v", "skyreels-v1-hunyuan-i2v"])
def test_a_lora_on_every_linear_of_the_released_models_covers_every_row(released, naming):
    """LoRAs written against the released key maps (13B shapes, meta tensors), dotted and in
    kohya's flattened spelling, reach every row of every Linear layer of our model: in the
    diffusers naming the split q / k / v / MLP-input tensors tile the fused weights exactly."""
    from key_maps import KeyMaps, rank1_meta_lora

    from skyreels_pack.models.hunyuan.dit import HunyuanDiT

    maps = KeyMaps("v1")
    listed = maps.listed("%s.%s.json" % (released, naming))
    with torch.device("meta"):
        model = HunyuanDiT(HunyuanDiTConfig.from_original(maps.configs[released]["original_config"]))
    dotted, kohya = ("diffusion_model.", "lora_unet_") if naming == "original" else ("transformer.", "lora_transformer_")
    ours = {n: m.out_features for n, m in model.named_modules() if hasattr(m, "in_features")}
    for prefix in (dotted, kohya):
        sd = rank1_meta_lora(listed, prefix)
        resolved = resolve(read_lora(sd), model)
        assert not resolved.missing and not resolved.mismatched, resolved.report()
        for param in ("weight", "bias"):
            covered = {}
            for d in resolved.deltas:
                if d.target.param == param:
                    a, b = d.rows or (0, ours[d.target.module])
                    covered.setdefault(d.target.module, []).append((a, b))
            assert set(covered) == set(ours)
            for name, spans in covered.items():
                spans.sort()
                assert spans[0][0] == 0 and spans[-1][1] == ours[name], (name, spans)
                assert all(x[1] == y[0] for x, y in zip(spans, spans[1:])), (name, spans)
