"""The Wan DiT's token chunking (models/wan/dit.py, TOKEN_CHUNK) and the activation estimate
that counts it (memory/budget.py: activation_bytes)."""
import pytest
import torch

from skyreels_pack.cli.demo.common import randomize
from skyreels_pack.memory import budget
from skyreels_pack.models.wan import dit as wan_dit
from skyreels_pack.models.wan.audio_adapter import AudioAdapterConfig
from skyreels_pack.models.wan.dit import LatentSegment, WanDiT, token_spans
from skyreels_pack.models.wan.dit_config import WanDiTConfig

BASE = dict(dim=32, ffn_dim=64, num_heads=2, num_layers=2, text_dim=16, text_len=8)


def _model(**kw) -> WanDiT:
    model = WanDiT(WanDiTConfig(**dict(BASE, **kw)))
    model.load_state_dict(randomize(model, 0))
    return model.eval().requires_grad_(False)


def test_spans_cover_every_token_once_on_frame_and_causal_boundaries():
    spans = token_spans(7 * 12, 12, chunk=30)  # 2 frames (24 tokens) per chunk
    assert [(s.tokens.start, s.tokens.stop) for s in spans] == [(0, 24), (24, 48), (48, 72), (72, 84)]
    assert [(s.frames.start, s.frames.stop) for s in spans] == [(0, 2), (2, 4), (4, 6), (6, 7)]
    assert all(s.keys == 84 for s in spans)
    causal = token_spans(7 * 12, 12, causal_block_size=3, chunk=30)  # cut at frames 3 and 6 too
    assert [(s.frames.start, s.frames.stop, s.keys) for s in causal] == [
        (0, 2, 36), (2, 3, 36), (3, 5, 72), (5, 6, 72), (6, 7, 84)]
    assert [(s.tokens.start, s.tokens.stop) for s in token_spans(3 * 50, 50, chunk=10)] == [
        (0, 50), (50, 100), (100, 150)]  # a frame larger than the chunk is still one chunk
    assert len(token_spans(5 * 3600, 3600)) == 2  # the default: 4 frames of 720P per chunk


def _runs(model, inputs, kwargs):
    with torch.no_grad():
        return model(*inputs, **kwargs)


CASES = {
    "t2v per-frame t, causal": (dict(), lambda g: dict(t=torch.rand(2, 5, generator=g) * 900, causal_block_size=2)),
    "t2v segments": (dict(), lambda g: dict(t=torch.tensor([500.0, 400.0]), rope_frame_offset=2, segments=[
        LatentSegment(torch.randn(2, 16, 2, 4, 6, generator=g), 1024), LatentSegment(torch.randn(2, 16, 1, 4, 6,
                                                                                                  generator=g))])),
    "i2v": (dict(in_dim=36, image_dim=24, variant="i2v"), lambda g: dict(
        t=torch.tensor([700.0, 100.0]), clip_fea=torch.randn(2, 5, 24, generator=g),
        y=torch.randn(2, 20, 5, 4, 6, generator=g))),
    "df fps": (dict(inject_sample_info=True), lambda g: dict(t=torch.rand(2, 5, generator=g) * 900, fps=0,
                                                             causal_block_size=1)),
    "a2v": (dict(in_dim=36, image_dim=24, variant="i2v",
                 audio=AudioAdapterConfig(layers=2, channels=8, intermediate_dim=8, output_dim=16, context_tokens=4)),
            lambda g: dict(t=torch.tensor([600.0, 600.0]), clip_fea=torch.randn(2, 5, 24, generator=g),
                           y=torch.randn(2, 20, 5, 4, 6, generator=g),
                           audio=torch.randn(2, 17, 5, 2, 8, generator=g))),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_chunked_forward_equals_the_whole_sequence(case, monkeypatch):
    """One frame per chunk gives the output of one chunk for everything (bit-identical on this
    CPU; the tolerance only allows for other BLAS builds)."""
    kw, make = CASES[case]
    model = _model(**kw)
    g = torch.Generator().manual_seed(3)
    x, ctx = torch.randn(2, 16, 5, 4, 6, generator=g), torch.randn(2, 8, 16, generator=g)
    extra = make(g)
    t = extra.pop("t")
    whole = _runs(model, (x, t, ctx), extra)
    monkeypatch.setattr(wan_dit, "TOKEN_CHUNK", 1)  # 6 tokens per frame: every frame its own chunk
    chunked = _runs(model, (x, t, ctx), extra)
    torch.testing.assert_close(chunked, whole, rtol=1e-6, atol=1e-6)
    assert whole.abs().max() > 0.1


class _ReplayCache:
    """The step-cache protocol: the first call runs the blocks, the second replays the residual."""

    def __init__(self):
        self.residual = None

    def lookup(self, e, e0):
        return self.residual

    def store(self, residual):
        self.residual = residual


def test_step_cache_gets_the_true_residual_although_the_blocks_work_in_place():
    model = _model()
    g = torch.Generator().manual_seed(4)
    x, ctx = torch.randn(1, 16, 3, 4, 6, generator=g), torch.randn(1, 8, 16, generator=g)
    cache = _ReplayCache()
    with torch.no_grad():
        plain = model(x, torch.tensor([500.0]), ctx)
        first = model(x, torch.tensor([500.0]), ctx, cache=cache)
        replayed = model(x, torch.tensor([500.0]), ctx, cache=cache)
    assert cache.residual.abs().max() > 0.01
    torch.testing.assert_close(first, plain, rtol=0, atol=0)
    torch.testing.assert_close(replayed, plain, rtol=1e-5, atol=1e-5)


R2V_720 = (35, 90, 160)  # 1280 x 720 x 121 frames + 4 reference frames: 126,000 tokens
WIDE = WanDiTConfig(dim=5120, ffn_dim=13824, num_heads=40, num_layers=40)


def test_estimate_counts_one_chunk_not_the_whole_sequence():
    act = budget.activation_bytes(WIDE, R2V_720)
    tokens, d = 35 * 45 * 80, 5120
    whole = tokens * (4 * d + 3 * 2 * d)  # residual stream + q, k, v in bf16
    assert whole < act < 1.3 * whole
    assert act < 9 * budget.GB  # it was 21.2 GB when q, k, v were held rotated in float32
    smaller = budget.activation_bytes(WIDE, R2V_720, chunk_tokens=3600)
    assert act - smaller > 0.5 * budget.GB  # chunk temporaries of 14,400 tokens (4 frames) vs 3,600
    # short videos are one chunk: the chunk term is the whole sequence
    short = budget.activation_bytes(WIDE, (3, 60, 104))
    assert short == budget.activation_bytes(WIDE, (3, 60, 104), chunk_tokens=10 ** 9)
    with_cache = budget.activation_bytes(WIDE, R2V_720, teacache=True)
    assert with_cache - act >= 3 * tokens * d * 4


def test_r2v_720p_14b_plans_blocks_resident_under_24_gb():
    with torch.device("meta"):
        model = WanDiT(WIDE).to(torch.bfloat16)
    from skyreels_pack.memory import offload

    sizes = offload.estimate_bytes(model)
    plan = budget.plan_residency(sizes["per_block"], sizes["rest"], budget.activation_bytes(WIDE, R2V_720), 24)
    assert plan.fits and len(plan.resident) >= 15
