"""The A2V DiT under the memory machinery every DiT gets: fp8 files, int8 / nf4, block streaming."""
import pytest
import torch

from avatar_fakes import CONFIG, tiny_a2v_dit
from skyreels_pack.memory import offload
from skyreels_pack.memory.quant import QuantLinear, quantize_blocks
from skyreels_pack.models.wan.dit_loader import fp8_eligible, load_wan_dit

GB = 1024 ** 3


def _inputs(seed=3):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(1, 16, 3, 4, 4, generator=g)
    y = torch.randn(1, 20, 3, 4, 4, generator=g)
    ctx = torch.randn(1, CONFIG.text_len, CONFIG.text_dim, generator=g)
    clip = torch.randn(1, 5, 24, generator=g)
    audio = torch.randn(1, 9, 5, CONFIG.audio.layers, CONFIG.audio.channels, generator=g)
    return x, torch.tensor([956.5841]), ctx, clip, y, audio


def _run(model, inp):
    x, t, ctx, clip, y, audio = inp
    with torch.no_grad():
        return model(x, t, ctx, clip_fea=clip, y=y, audio=audio)


def _rel(a, b):
    return float((a - b).abs().max() / b.abs().max())


def test_audio_changes_the_output_and_is_required():
    model = tiny_a2v_dit()
    inp = _inputs()
    ref = _run(model, inp)
    silent = _run(model, inp[:5] + (torch.zeros_like(inp[5]),))
    assert _rel(silent, ref) > 1e-3
    with pytest.raises(ValueError, match="need audio windows"):
        model(*inp[:3], clip_fea=inp[3], y=inp[4])
    with pytest.raises(ValueError, match="layers x width"):
        model(*inp[:3], clip_fea=inp[3], y=inp[4], audio=torch.zeros(1, 9, 5, 3, 3))


@pytest.mark.parametrize("storage", ["fp8_e4m3fn", "int8", "nf4"])
def test_reduced_precision_weights_compute_with_exactly_their_values(storage):
    """Low-precision weights (the audio layers included) give the output of a float32 model holding
    exactly the rounded values: the upcast and dequantisation paths add nothing else."""
    model = tiny_a2v_dit()
    inp = _inputs()
    sd = model.state_dict()
    if storage.startswith("fp8"):  # a Kijai-style file: block Linears in fp8
        file = {k: (v.to(torch.float8_e4m3fn) if fp8_eligible(k) else v) for k, v in sd.items()}
        assert file["blocks.0.audio_cross_attn.kv_linear.weight"].dtype == torch.float8_e4m3fn
        low, cfg = load_wan_dit(file, config=CONFIG, weight_dtype="auto")
        assert low.blocks[1].audio_cross_attn.q_linear.weight.dtype == torch.float8_e4m3fn
        rounded = {k: v.float() for k, v in file.items()}
    else:
        low, _ = load_wan_dit(sd, config=CONFIG, weight_dtype="fp32")
        quantize_blocks(low, storage)
        assert isinstance(low.blocks[0].audio_cross_attn.proj, QuantLinear)
        rounded = dict(sd)
        for name, m in low.named_modules():
            if isinstance(m, QuantLinear):
                rounded[name + ".weight"] = m.dequantized(torch.float32)
    same, _ = load_wan_dit(rounded, config=CONFIG, weight_dtype="fp32")
    ref = _run(same, inp)
    assert _rel(_run(low, inp), ref) < 1e-5
    assert _rel(ref, _run(model, inp)) > 0  # the rounding did change the weights


def test_block_streaming_gives_the_same_output():
    from test_memory import FakeDevice

    from skyreels_pack.cli.demo.common import randomize
    from skyreels_pack.memory.budget import activation_bytes
    from skyreels_pack.models.wan.dit import WanDiT

    model = WanDiT(CONFIG.replace(num_layers=4))
    model.load_state_dict(randomize(model, 4))
    model.eval().requires_grad_(False)
    inp = _inputs()
    ref = _run(model, inp)

    sizes = offload.estimate_bytes(model)
    block = sizes["per_block"][0]
    act = activation_bytes(model.config, (3, 4, 4), compute_dtype=torch.float32)
    budget = sizes["rest"] + act + 3 * block + block // 3  # one block resident, two copies in flight
    fake = FakeDevice()
    plan = offload.prepare_for_sampling(model, "cpu", budget / GB, latent_shape=(3, 4, 4), transfer=fake)
    assert len(plan.streamed) == 3  # blocks, with their audio attention, stream in
    assert torch.equal(_run(model, inp), ref)
    assert len(fake.fetched) == 3 + 1 and fake.peak <= budget - act
    offload.release(model)
    assert fake.current == 0
