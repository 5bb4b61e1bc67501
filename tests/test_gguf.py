"""GGUF: tiny files written with the gguf package's writer in every type the loader reads, our
torch dequantization against the gguf package's own and against the float32 source (bounds
per type: the README table), Wan DiTs loaded from GGUF (detection, quantized Linear layers,
streaming, LoRAs on the fly), and files of other families refused."""
import numpy as np
import pytest
import torch

gguf = pytest.importorskip("gguf")

from skyreels_pack.memory import offload  # noqa: E402
from skyreels_pack.memory.budget import GB, activation_bytes  # noqa: E402
from skyreels_pack.memory.gguf_quant import GGUFLinear, TYPE_IDS, dequantize  # noqa: E402
from skyreels_pack.models.loading.checkpoint import CheckpointError, TensorSource  # noqa: E402
from skyreels_pack.models.loading.gguf_writer import quantize, write_gguf  # noqa: E402
from skyreels_pack.models.lora import apply_loras, read_lora, resolve  # noqa: E402
from skyreels_pack.models.wan.dit import WanDiT  # noqa: E402
from skyreels_pack.models.wan.dit_config import WanDiTConfig  # noqa: E402
from skyreels_pack.models.wan.dit_loader import load_wan_dit  # noqa: E402

from test_memory import LATENT, FakeDevice, tiny_weights  # noqa: E402

# Bounds on the dequantization error of a [16, 1024] N(0, 1) matrix: (max |error| / max |w|,
# RMS error / RMS w).  Measured values are in the README; these are ~1.25x them.
BOUNDS = {
    "Q2_K": (0.32, 0.42), "Q3_K": (0.17, 0.20), "Q4_K": (0.065, 0.10), "Q5_K": (0.032, 0.049),
    "Q6_K": (0.020, 0.024), "Q4_0": (0.086, 0.11), "Q4_1": (0.066, 0.10), "Q5_0": (0.041, 0.055),
    "Q5_1": (0.032, 0.049), "Q8_0": (0.0049, 0.0069), "F16": (0.0003, 0.0003), "BF16": (0.0025, 0.0022),
}


def error_table(rows=16, cols=1024, seed=0):
    """type -> (max error / max |w|, rms error / rms w, ours == gguf's bit for bit)."""
    w = torch.randn(rows, cols, generator=torch.Generator().manual_seed(seed))
    out = {}
    for name in BOUNDS:
        data = quantize(w, name)
        ours = dequantize(torch.from_numpy(np.ascontiguousarray(data)).view(torch.uint8).reshape(-1), name, w.shape)
        theirs = torch.from_numpy(gguf.quants.dequantize(data, gguf.GGMLQuantizationType(TYPE_IDS[name]))).reshape(w.shape)
        err = ours - w
        out[name] = (float(err.abs().max() / w.abs().max()), float(err.pow(2).mean().sqrt() / w.pow(2).mean().sqrt()),
                     torch.equal(ours, theirs.float()))
    return out


def test_every_type_round_trips_through_a_file_within_its_bound(tmp_path):
    w = torch.randn(16, 1024, generator=torch.Generator().manual_seed(0))
    path = str(tmp_path / "types.gguf")
    chosen = write_gguf(path, {"w_" + name: w for name in BOUNDS}, "wan", lambda k, t: k[2:])
    assert chosen == {"w_" + name: name for name in BOUNDS}
    src = TensorSource([path])
    assert src.metadata["general.architecture"] == "wan"
    for name, (max_bound, rms_bound) in BOUNDS.items():
        key = "w_" + name
        assert src.shape(key) == (16, 1024)
        got = src.get(key).float()
        q = src.quantized(key)
        assert (q is None) == (name in ("F16", "BF16"))
        if q is not None:
            assert q.qtype == name and torch.equal(q.dequantize(), got)
        err = got - w
        assert float(err.abs().max() / w.abs().max()) <= max_bound, name
        assert float(err.pow(2).mean().sqrt() / w.pow(2).mean().sqrt()) <= rms_bound, name


def test_torch_dequantization_is_bit_exact_with_the_gguf_package():
    for name, (_, _, exact) in error_table(rows=4, cols=512, seed=1).items():
        assert exact, name


def test_k_quant_rows_must_fill_whole_blocks():
    with pytest.raises(ValueError, match="multiple of 256"):
        quantize(torch.randn(4, 128), "Q4_K")


# --------------------------------------------------------------------------- Wan DiTs

CFG = dict(dim=256, ffn_dim=512, num_heads=2, num_layers=2, text_dim=32, freq_dim=32, text_len=8)
TYPES = ("Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "F16", "BF16")


def _choose():
    it = iter(TYPES * 4)

    def choose(key, t):
        key = key.rpartition("diffusion_model.")[2]
        if key.startswith("blocks.") and key.endswith(".weight") and t.dim() == 2:
            return next(it)
        if key.startswith(("text_embedding", "time_", "head.", "patch_embedding")):
            return "F16"
        return "Q8_0"
    return choose


def write_dit(path, variant="t2v", prefix=""):
    cfg = WanDiTConfig(**CFG, inject_sample_info=variant == "df", variant=variant)
    sd = {prefix + k: v for k, v in tiny_weights(cfg, seed=2).items()}
    chosen = write_gguf(path, sd, "wan", _choose(), keep_full=(".modulation",))
    return cfg, chosen


def reference(path, cfg):
    """The same model with every tensor dequantized into float32."""
    src = TensorSource([path])
    ref = WanDiT(cfg)
    prefix = "model.diffusion_model." if any(k.startswith("model.") for k in src.keys()) else ""
    ref.load_state_dict({k[len(prefix):]: src.get(k).float() for k in src.keys()})
    return ref.eval()


def _inputs(cfg):
    g = torch.Generator().manual_seed(1)
    return (torch.randn(1, 16, *LATENT, generator=g), torch.tensor([600.0]),
            torch.randn(1, cfg.text_len, cfg.text_dim, generator=g))


@pytest.mark.parametrize("variant,prefix", [("df", ""), ("t2v", "model.diffusion_model.")])
def test_wan_dit_from_gguf_keeps_linear_weights_quantized_and_matches_the_dequantized_model(tmp_path, variant, prefix):
    path = str(tmp_path / ("SkyReels-V2-%s-1.3B-540P-Q4_K_M.gguf" % variant.upper()))
    cfg, chosen = write_dit(path, variant, prefix)
    model, detected = load_wan_dit(path)
    assert detected.variant == variant and detected.dim == 256 and detected.inject_sample_info == (variant == "df")
    layers = {n: m for n, m in model.named_modules() if isinstance(m, GGUFLinear)}
    quantized = {k[len(prefix):-len(".weight")]: t for k, t in chosen.items() if t not in ("F32", "F16", "BF16")}
    assert {n: m.qtype for n, m in layers.items()} == quantized
    assert set(TYPES) - {"F16", "BF16"} <= {m.qtype for m in layers.values()}
    assert model.blocks[0].self_attn.q.bias is not None
    assert "Q2_K" in model.source_types
    x, t, ctx = _inputs(cfg)
    with torch.no_grad():
        assert torch.equal(model(x, t, ctx), reference(path, cfg)(x, t, ctx))


def test_gguf_blocks_stream_under_a_budget_with_their_bytes(tmp_path):
    path = str(tmp_path / "dit.gguf")
    cfg, _ = write_dit(path)
    model, _ = load_wan_dit(path)
    x, t, ctx = _inputs(cfg)
    with torch.no_grad():
        want = model(x, t, ctx)
    sizes = offload.estimate_bytes(model)
    block = sizes["per_block"][0]
    assert block < sum(p.numel() * 2 for p in reference(path, cfg).blocks[0].parameters())  # smaller than fp16
    budget = sizes["rest"] + activation_bytes(cfg, LATENT, compute_dtype=torch.float32) + block + block // 3
    fake = FakeDevice()
    plan = offload.prepare_for_sampling(model, "cpu", (budget + 2 * block) / GB, latent_shape=LATENT, transfer=fake)
    assert plan.streamed
    with torch.no_grad():
        got = model(x, t, ctx)
    offload.release(model)
    assert torch.equal(got, want)
    assert any(lay.dtypes.count(torch.uint8) for lay in fake.fetched)


def test_lora_on_gguf_weights_is_applied_on_the_fly(tmp_path):
    path = str(tmp_path / "dit.gguf")
    cfg, _ = write_dit(path)
    model, _ = load_wan_dit(path)
    ref = reference(path, cfg)
    g = torch.Generator().manual_seed(4)
    sd = {}
    for name in ("blocks.0.self_attn.q", "blocks.1.ffn.2", "blocks.0.cross_attn.v"):
        layer = ref.get_submodule(name)
        sd["diffusion_model.%s.lora_down.weight" % name] = torch.randn(8, layer.in_features, generator=g) * 0.05
        sd["diffusion_model.%s.lora_up.weight" % name] = torch.randn(layer.out_features, 8, generator=g) * 0.05
    lora = read_lora(sd)
    x, t, ctx = _inputs(cfg)
    outs = []
    for m in (model, ref):
        apply_loras(m, [(resolve(lora, m), 0.9)])
        offload.prepare_for_sampling(m, "cpu", None)
        with torch.no_grad():
            outs.append(m(x, t, ctx))
        offload.release(m)
    assert sum(1 for m in model.modules() if "lora" in m._modules) == 3
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-4, atol=1e-4)


def test_df_14b_variant_from_the_gguf_model_name(tmp_path):
    """DF-14B has T2V-shaped tensors: a GGUF file whose name does not say DF is told by general.name."""
    path = str(tmp_path / "wan-Q8_0.gguf")  # a name that says nothing about the variant
    cfg = WanDiTConfig(**CFG, variant="t2v")
    write_gguf(path, tiny_weights(cfg, seed=2), "wan", "Q8_0", metadata={"general.name": "SkyReels-V2-DF-14B-540P"})
    assert load_wan_dit(path)[1].variant == "df"


def test_gguf_of_another_family_is_refused(tmp_path):
    path = str(tmp_path / "hunyuan.gguf")
    write_gguf(path, {"double_blocks.0.img_attn_proj.weight": torch.randn(64, 64)}, "hyvid", "Q8_0")
    with pytest.raises(CheckpointError, match="HunyuanVideo.*not a Wan"):
        load_wan_dit(path)


def test_original_shape_metadata_is_honoured(tmp_path):
    path = str(tmp_path / "reshaped.gguf")
    w = torch.randn(6, 4, 64)
    writer = gguf.GGUFWriter(path, arch="wan")
    writer.add_array("comfy.gguf.orig_shape.w", [6, 4, 64])
    writer.add_tensor("w", quantize(w.reshape(-1, 256), "Q8_0"), raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    src = TensorSource([path])
    assert src.shape("w") == (6, 4, 64)
    assert (src.get("w") - w).abs().max() < 0.02
