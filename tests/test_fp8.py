"""fp8 weight storage (e4m3fn, e5m2) and ComfyUI scaled-fp8 files: error bounds of a tiny DiT."""
import pytest
import torch
from safetensors.torch import save_file

from skyreels_pack.memory import offload
from skyreels_pack.models.common import ops
from skyreels_pack.models.wan.dit_loader import fp8_eligible, load_wan_dit

from test_memory import FakeDevice, LATENT, inputs, tiny_config, tiny_model, tiny_weights

CFG = dict(dim=128, ffn_dim=256, num_heads=4, num_layers=3)


def rel(a, b):
    return ((a - b).norm() / b.norm()).item()


@pytest.mark.parametrize("weight_dtype,fp8,bound", [
    ("bf16", None, 0.01),
    ("fp16", None, 0.002),
    ("fp8_e4m3fn", torch.float8_e4m3fn, 0.06),
    ("fp8_e5m2", torch.float8_e5m2, 0.12),
])
def test_storage_dtype_error_bounds(weight_dtype, fp8, bound):
    cfg = tiny_config(**CFG)
    x, t, ctx = inputs(cfg)
    with torch.no_grad():
        ref = tiny_model(cfg)(x, t, ctx)
        model = tiny_model(cfg, weight_dtype)
        out = model(x, t, ctx)
    q = model.blocks[0].self_attn.q
    if fp8 is not None:
        assert q.weight.dtype == fp8 and q.scale_weight.dtype == torch.float32
        assert model.patch_embedding.weight.dtype == torch.float32  # only block Linears go to fp8
        assert model.blocks[0].self_attn.norm_q.weight.dtype == torch.float32
    else:
        assert q.weight.dtype == {"bf16": torch.bfloat16, "fp16": torch.float16}[weight_dtype]
    err = rel(out, ref)
    assert err < bound
    if fp8 is not None:
        assert err > 1e-3  # it really is lossy storage


def test_e5m2_is_coarser_than_e4m3fn():
    cfg = tiny_config(**CFG)
    x, t, ctx = inputs(cfg)
    with torch.no_grad():
        ref = tiny_model(cfg)(x, t, ctx)
        e4 = rel(tiny_model(cfg, "fp8_e4m3fn")(x, t, ctx), ref)
        e5 = rel(tiny_model(cfg, "fp8_e5m2")(x, t, ctx), ref)
    assert e4 < e5


def write_comfy_scaled_fp8(path, weights, seed=3):
    """ComfyUI's scaled-fp8 layout: fp8 block weights + ``<layer>.scale_weight`` + ``scaled_fp8``."""
    g = torch.Generator().manual_seed(seed)
    out, scales = {}, {}
    for k, w in weights.items():
        name = "model.diffusion_model." + k
        if fp8_eligible(k):
            # A deliberately non-canonical scale (not amax / 448) to prove the file's scale is used.
            scale = w.abs().max() / 448.0 * (1.0 + torch.rand((), generator=g).item())
            out[name] = (w / scale).to(torch.float8_e4m3fn)
            out[name[: -len(".weight")] + ".scale_weight"] = scale.reshape(()).float()
            out[name[: -len(".weight")] + ".scale_input"] = torch.ones(())  # present in some files; ignored
            scales[k] = scale
        else:
            out[name] = w.to(torch.bfloat16)
    out["scaled_fp8"] = torch.empty(0, dtype=torch.float8_e4m3fn)
    save_file(out, str(path))
    return out, scales


def test_scaled_fp8_file_loads_as_fp8_with_its_scales(tmp_path):
    cfg = tiny_config(**CFG)
    weights = tiny_weights(cfg)
    path = tmp_path / "skyreels_tiny_t2v_fp8_scaled.safetensors"
    stored, scales = write_comfy_scaled_fp8(path, weights)
    _, detected = load_wan_dit(str(path))  # naming and sizes are detected from the file
    assert detected.dim == cfg.dim and detected.num_layers == cfg.num_layers
    # The head count is not in the tensors' shapes: give the configuration.
    model, _ = load_wan_dit(str(path), config=cfg)  # "auto": fp8 stays fp8
    n_fp8 = 0
    for name, layer in model.named_modules():
        key = name + ".weight"
        if isinstance(layer, ops.Linear) and fp8_eligible(key):
            n_fp8 += 1
            assert layer.weight.dtype == torch.float8_e4m3fn
            file_key = "model.diffusion_model." + key
            assert torch.equal(layer.weight.view(torch.uint8), stored[file_key].view(torch.uint8))
            assert layer.scale_weight.item() == pytest.approx(scales[key].item(), rel=1e-6)
            w, _ = layer.cast_params(torch.empty(0))
            assert torch.equal(w, stored[file_key].float() * scales[key].float())
    assert n_fp8 == 10 * cfg.num_layers

    x, t, ctx = inputs(cfg)
    with torch.no_grad():
        ref = tiny_model(cfg)(x, t, ctx)
        out = model(x, t, ctx)
    assert rel(out, ref) < 0.06

    # The same file read into bf16 storage applies the scales while loading.
    model16, _ = load_wan_dit(str(path), weight_dtype="bf16", config=cfg)
    q16 = model16.blocks[0].self_attn.q.weight
    assert q16.dtype == torch.bfloat16 and not hasattr(model16.blocks[0].self_attn.q, "scale_weight")
    key = "blocks.0.self_attn.q.weight"
    expected = (stored["model.diffusion_model." + key].float() * scales[key]).to(torch.bfloat16)
    assert torch.equal(q16, expected)
    with torch.no_grad():
        assert rel(model16(x, t, ctx), out) < 0.01

    # And it streams with its scales.
    fake = FakeDevice()
    offload.prepare_for_sampling(model, "cpu", 1e-9, latent_shape=LATENT, transfer=fake)
    with torch.no_grad():
        assert torch.equal(model(x, t, ctx), out)
    offload.release(model)
