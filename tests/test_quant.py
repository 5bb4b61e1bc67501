"""Weight-only int8 / nf4: formats, error bounds against fp32 and bf16 outputs of a tiny DiT."""
import pytest
import torch

from skyreels_pack.memory import offload, quant
from skyreels_pack.models.common import ops

from test_memory import FakeDevice, LATENT, inputs, tiny_config, tiny_model

CFG = dict(dim=128, ffn_dim=256, num_heads=4, num_layers=3)


def rel(a, b):
    return ((a - b).norm() / b.norm()).item()


def reference_nf4_indices(w, blocksize=64):
    """Independent nearest-code search (argmin), as in bitsandbytes' reference backend."""
    flat = w.reshape(-1).float()
    blocks = flat.view(-1, blocksize)
    scaled = blocks / blocks.abs().amax(dim=1, keepdim=True)
    code = torch.tensor(quant.NF4_CODE)
    return (scaled.reshape(-1, 1) - code).abs().argmin(dim=1)


def test_nf4_layout_matches_the_bitsandbytes_format():
    w = torch.randn(96, 64)
    packed, absmax = quant.nf4_quantize(w)
    assert packed.dtype == torch.uint8 and packed.numel() == w.numel() // 2
    assert absmax.dtype == torch.float32 and absmax.numel() == w.numel() // 64
    idx = reference_nf4_indices(w)
    assert torch.equal((packed >> 4).long(), idx[0::2])   # first value in the high nibble
    assert torch.equal((packed & 0xF).long(), idx[1::2])
    assert torch.allclose(absmax, w.reshape(-1, 64).abs().amax(dim=1))


def test_weight_round_trip_error_bounds():
    w = torch.randn(256, 192) / 192 ** 0.5
    q, absmax = quant.int8_quantize(w)
    assert q.dtype == torch.int8 and absmax.shape == (256,)
    assert rel(quant.int8_dequantize(q, absmax), w) < 0.01
    packed, absmax = quant.nf4_quantize(w)
    err = rel(quant.nf4_dequantize(packed, absmax, w.shape), w)
    assert 0.03 < err < 0.12  # 4 bits: clearly lossy, but bounded
    # Sizes that are neither a multiple of the block nor even.
    odd = torch.randn(7, 13)
    packed, absmax = quant.nf4_quantize(odd)
    assert packed.numel() == 46 and absmax.numel() == 2
    back = quant.nf4_dequantize(packed, absmax, odd.shape)
    assert back.shape == odd.shape and rel(back, odd) < 0.15
    zeros = torch.zeros(4, 64)
    assert torch.equal(quant.nf4_dequantize(*quant.nf4_quantize(zeros), zeros.shape), zeros)


@pytest.mark.parametrize("mode,bound", [("int8", 0.02), ("nf4", 0.16)])
def test_quantized_dit_error_bounds(mode, bound):
    cfg = tiny_config(**CFG)
    x, t, ctx = inputs(cfg)
    with torch.no_grad():
        ref32 = tiny_model(cfg)(x, t, ctx)
        ref_bf16 = tiny_model(cfg, "bf16")(x, t, ctx)
    model = tiny_model(cfg)
    before = offload.estimate_bytes(model)["blocks"]
    quant.quantize_blocks(model, mode)
    assert not any(True for _ in ops.quantizable_linears(model.blocks))
    layers = [m for m in model.blocks.modules() if isinstance(m, quant.QuantLinear)]
    assert len(layers) == 10 * cfg.num_layers and all(m.mode == mode for m in layers)
    after = offload.estimate_bytes(model)["blocks"]
    assert after < before * (0.3 if mode == "int8" else 0.2)
    with torch.no_grad():
        out = model(x, t, ctx)
    assert torch.isfinite(out).all()
    assert rel(out, ref32) < bound
    assert rel(out, ref_bf16) < bound + 0.01
    # bf16 compute on the quantized weights stays within the same bound.
    model.compute_dtype = torch.bfloat16
    with torch.no_grad():
        assert rel(model(x, t, ctx), ref32) < bound + 0.01


def test_nf4_is_coarser_than_int8():
    cfg = tiny_config(**CFG)
    x, t, ctx = inputs(cfg)
    with torch.no_grad():
        ref = tiny_model(cfg)(x, t, ctx)
        errs = {}
        for mode in ("int8", "nf4"):
            m = tiny_model(cfg)
            quant.quantize_blocks(m, mode)
            errs[mode] = rel(m(x, t, ctx), ref)
    assert errs["int8"] * 3 < errs["nf4"]


def test_quantize_from_scaled_fp8_and_mode_switch_is_refused():
    cfg = tiny_config(**CFG)
    x, t, ctx = inputs(cfg)
    model = tiny_model(cfg, "fp8_e4m3fn")
    assert hasattr(model.blocks[0].self_attn.q, "scale_weight")
    with torch.no_grad():
        fp8_out = model(x, t, ctx)
    quant.quantize_blocks(model, "int8")
    quant.quantize_blocks(model, "int8")  # nothing left to do: no error
    with torch.no_grad():
        assert rel(model(x, t, ctx), fp8_out) < 0.02
    with pytest.raises(ValueError, match="already quantized"):
        quant.quantize_blocks(model, "nf4")
    with pytest.raises(ValueError, match="unknown quantization"):
        quant.quantize_blocks(model, "int4")


def test_quantized_blocks_stream_identically():
    cfg = tiny_config(**CFG)
    x, t, ctx = inputs(cfg)
    model = tiny_model(cfg)
    quant.quantize_blocks(model, "nf4")
    with torch.no_grad():
        reference = model(x, t, ctx)
    fake = FakeDevice()
    offload.prepare_for_sampling(model, "cpu", 1e-9, latent_shape=LATENT, transfer=fake)
    with torch.no_grad():
        assert torch.equal(model(x, t, ctx), reference)
    offload.release(model)
    assert fake.current == 0


def test_nf4_uses_bitsandbytes_kernel_when_supported(monkeypatch):
    calls = []

    def fake_kernel(packed, absmax, shape, dtype, blocksize):
        calls.append((tuple(shape), dtype, blocksize))
        return quant.nf4_dequantize(packed, absmax, shape, dtype, blocksize)

    layer = quant.NF4Linear.from_float(torch.randn(32, 64), torch.zeros(32))
    x = torch.randn(3, 64)
    expected = layer(x)
    assert calls == []
    monkeypatch.setattr(quant, "bnb_supports", lambda device: True)
    monkeypatch.setattr(quant, "_bnb_dequantize_nf4", fake_kernel)
    assert torch.equal(layer(x), expected)
    assert calls == [((32, 64), torch.float32, 64)]
    assert quant.bnb_supports.__name__ == "<lambda>"


def test_bitsandbytes_is_never_used_off_cuda():
    assert not quant.bnb_supports(torch.device("cpu"))


@pytest.mark.parametrize("shape", [(40, 96), (7, 13), (3, 64)])
def test_chunked_quantization_matches_one_pass(monkeypatch, shape):
    w = torch.randn(shape)
    original = w.clone()
    whole = quant.nf4_quantize(w), quant.int8_quantize(w)
    monkeypatch.setattr(quant, "CHUNK", 128)  # many chunks, some ending mid-row
    chunked = quant.nf4_quantize(w), quant.int8_quantize(w)
    assert torch.equal(w, original)  # the input is never modified
    for (a1, a2), (b1, b2) in zip(whole, chunked):
        assert torch.equal(a1, b1) and torch.equal(a2, b2)


def test_host_memory_trim_runs_on_linux():
    import sys

    from skyreels_pack.host import trim_host_memory

    assert trim_host_memory() is sys.platform.startswith("linux")
