"""TeaCache: official coefficient selection, the exact steps skipped, per-branch counting."""
import pytest
import torch

from skyreels_pack.models.wan.dit_config import WanDiTConfig
from skyreels_pack.sampling.guidance import Denoiser, ModelInputs
from skyreels_pack.sampling.teacache import COEFFICIENTS, TeaCache, coefficient_table, polyval, teacache_pair

from test_memory import inputs, tiny_model

IDENTITY = (0.0, 0.0, 0.0, 1.0, 0.0)  # poly(rel) = rel


def config_14b(**kw):
    return WanDiTConfig(dim=5120, ffn_dim=13824, num_heads=40, num_layers=40, **kw)


def test_coefficient_selection():
    t2v_13 = WanDiTConfig()
    assert t2v_13.size_name == "1.3B"
    cond, uncond = teacache_pair(t2v_13, 0.2, 30)
    assert cond is not uncond and cond.coefficients == COEFFICIENTS[("1.3B", True)]
    assert teacache_pair(t2v_13, 0.2, 30, use_ret_steps=False)[0].coefficients == COEFFICIENTS[("1.3B", False)]
    assert teacache_pair(config_14b(), 0.2, 30)[0].coefficients[0] == pytest.approx(-3.03318725e+05)
    df_14 = config_14b(variant="df")
    assert coefficient_table(df_14) == "14B"
    i2v = config_14b(in_dim=36, image_dim=1280, variant="i2v")
    assert coefficient_table(i2v, latent_hw=(68, 120)) == "i2v-540p"
    assert coefficient_table(i2v, latent_hw=(120, 68)) == "i2v-540p"  # portrait
    assert coefficient_table(i2v, latent_hw=(90, 160)) == "i2v-720p"
    assert teacache_pair(i2v, 0.2, 30, use_ret_steps=False, latent_hw=(90, 160))[0].coefficients[0] == \
        pytest.approx(-114.36346466)
    with pytest.raises(ValueError, match="latent_hw"):
        teacache_pair(i2v, 0.2, 30)
    with pytest.raises(ValueError, match="1.3B and 14B"):
        teacache_pair(WanDiTConfig(num_layers=4), 0.2, 30)


def test_polynomial_is_highest_power_first():
    assert polyval((2.0, 0.0, 1.0), 3.0) == 19.0
    c = COEFFICIENTS[("1.3B", True)]
    x = 0.05
    assert polyval(c, x) == pytest.approx(sum(ci * x ** (4 - i) for i, ci in enumerate(c)))


def run_sequence(cache, values, e_values=None):
    """Feed per-call modulation vectors; return the call indices where the blocks were skipped."""
    skipped = []
    for i, v in enumerate(values):
        e0 = torch.full((1, 1, 6, 8), float(v))
        e = torch.full((1, 1, 8), float(e_values[i] if e_values is not None else v))
        r = cache.lookup(e, e0)
        if r is None:
            cache.store(torch.full((1, 4, 8), float(i)))
        else:
            skipped.append(i)
            assert torch.equal(r, torch.full((1, 4, 8), float(max(j for j in range(i) if j not in skipped))))
    return skipped


def geometric(n, ratio=1.1):
    return [ratio ** k for k in range(n)]  # rel = 0.1 at every call


def test_skips_exactly_the_expected_calls_with_ret_steps():
    # Warm-up: calls 0-4 compute.  Then acc = 0.1, 0.2 (skip), 0.3 (compute, reset), ...
    cache = TeaCache(IDENTITY, threshold=0.25, calls_per_branch=10, use_ret_steps=True)
    assert run_sequence(cache, geometric(10)) == [5, 6, 8, 9]  # no cutoff with ret-steps
    assert cache.computed == 6


def test_skips_exactly_the_expected_calls_without_ret_steps():
    # e (not e0) is compared; warm-up is 1 call and the last call always computes.
    cache = TeaCache(IDENTITY, threshold=0.25, calls_per_branch=10, use_ret_steps=False)
    e0_constant = [1.0] * 10
    assert run_sequence(cache, e0_constant, e_values=geometric(10)) == [1, 2, 4, 5, 7, 8]
    # And e0 really is ignored in this mode: a constant e skips everything in between.
    cache = TeaCache(IDENTITY, threshold=0.25, calls_per_branch=10, use_ret_steps=False)
    assert run_sequence(cache, geometric(10), e_values=[1.0] * 10) == list(range(1, 9))


def test_counter_wraps_per_branch_not_at_half_the_calls():
    """The official counter restarts the warm-up after N of 2N calls; ours does not."""
    cache = TeaCache(IDENTITY, threshold=0.25, calls_per_branch=20, use_ret_steps=True)
    skipped = run_sequence(cache, geometric(20))
    assert all(i not in skipped for i in range(5))
    assert {10, 11, 12, 13, 14} & set(skipped)  # no second warm-up half way
    # A second run with the same cache starts with the warm-up again.
    assert run_sequence(cache, geometric(5)) == []


def test_new_latent_size_forces_a_full_computation():
    cache = TeaCache(IDENTITY, threshold=10.0, calls_per_branch=100, use_ret_steps=False)
    assert cache.lookup(torch.ones(1, 1, 8), torch.ones(1, 1, 6, 8)) is None
    cache.store(torch.zeros(1, 4, 8))
    assert cache.lookup(torch.ones(1, 1, 8), torch.ones(1, 1, 6, 8)) is not None
    assert cache.lookup(torch.ones(1, 3, 8), torch.ones(1, 3, 6, 8)) is None  # per-frame (DF) shape


class CountingHooks:
    def __init__(self):
        self.blocks_run = 0

    def before_block(self, i, block):
        self.blocks_run += 1

    def after_block(self, i, block):
        pass


def test_cfg_branches_count_their_own_calls_with_the_dit():
    model = tiny_model()
    hooks = CountingHooks()
    model.block_hooks = hooks
    x, _, ctx = inputs(model.config)
    steps = 8
    cond_cache = TeaCache(IDENTITY, threshold=1e9, calls_per_branch=steps, use_ret_steps=False)
    uncond_cache = TeaCache(IDENTITY, threshold=1e9, calls_per_branch=steps, use_ret_steps=False)
    den = Denoiser(model, ModelInputs(ctx), ModelInputs(torch.zeros_like(ctx)), 5.0,
                   caches=(cond_cache, uncond_cache))
    outs = []
    with torch.no_grad():
        for i in range(steps):
            t = torch.tensor([900.0 - 100 * i])
            outs.append(den(x, t))
    # Each branch: call 0 (warm-up) and call 7 (last step) compute, the 6 between are skipped.
    assert cond_cache.skipped == [1, 2, 3, 4, 5, 6] and uncond_cache.skipped == [1, 2, 3, 4, 5, 6]
    assert hooks.blocks_run == 2 * 2 * model.config.num_layers
    assert den.calls == 2 * steps


def test_a_skipped_call_reuses_the_cached_residual():
    model = tiny_model()
    x, t, ctx = inputs(model.config)
    cache = TeaCache(IDENTITY, threshold=1e9, calls_per_branch=3, use_ret_steps=False)
    with torch.no_grad():
        first = model(x, t, ctx, cache=cache)
        second = model(x, t, ctx, cache=cache)  # skipped: same input, same residual
        plain = model(x, t, ctx)
    assert cache.skipped == [1]
    assert torch.equal(first, plain)
    assert torch.allclose(second, plain, atol=1e-5, rtol=1e-5)


def test_bad_arguments():
    with pytest.raises(ValueError):
        TeaCache(IDENTITY, 0.2, 0)
    with pytest.raises(ValueError):
        TeaCache(IDENTITY, -1, 10)
