"""VRAM budget planning, block streaming (through a byte-accounting fake device), release,
pinned staging reuse and the ComfyUI memory cooperation of host.py."""
import sys
import types

import pytest
import torch
import torch.nn as nn

from fakes import random_weights
from skyreels_pack import host
from skyreels_pack.memory import block_streamer as bs
from skyreels_pack.memory import offload
from skyreels_pack.memory.budget import GB, activation_bytes, plan_residency, spread_streamed
from skyreels_pack.models.wan import dit_keys
from skyreels_pack.models.wan.dit_config import WanDiTConfig
from skyreels_pack.models.wan.dit_loader import load_wan_dit

LATENT = (2, 8, 8)


def tiny_config(**kw):
    base = dict(dim=64, ffn_dim=128, num_heads=4, num_layers=6, text_dim=32, freq_dim=32, text_len=8)
    base.update(kw)
    return WanDiTConfig(**base)


def tiny_weights(cfg, seed=0):
    return random_weights(dit_keys.expected_shapes(cfg), seed)


def tiny_model(cfg=None, weight_dtype="fp32"):
    cfg = cfg or tiny_config()
    model, _ = load_wan_dit(tiny_weights(cfg), config=cfg, weight_dtype=weight_dtype)
    return model


def inputs(cfg, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(1, 16, *LATENT, generator=g)
    ctx = torch.randn(1, cfg.text_len, cfg.text_dim, generator=g)
    return x, torch.tensor([700.0]), ctx


class FakeDevice(bs.Transfer):
    """Accounts the bytes that would live on a device; the 'copies' are CPU clones."""

    def __init__(self):
        self.device = torch.device("cpu")
        self.current = 0
        self.peak = 0
        self.fetched = []

    def _add(self, n):
        self.current += n
        self.peak = max(self.peak, self.current)

    def place(self, tensors):
        self._add(sum(bs.nbytes(t) for t in tensors))
        return [t.clone() for t in tensors]

    def unplace(self, tensors):
        self.current -= sum(bs.nbytes(t) for t in tensors)

    def fetch(self, layout, tensors):
        self._add(layout.total)
        self.fetched.append(layout)
        return {"tensors": [t.clone() for t in tensors], "bytes": layout.total}

    def wait(self, handle):
        return handle["tensors"]

    def free(self, handle):
        self.current -= handle["bytes"]


# --------------------------------------------------------------------------- planning


def test_plan_keeps_as_many_blocks_resident_as_fit():
    blocks = [GB // 2] * 10
    plan = plan_residency(blocks, GB, 2 * GB, budget_gb=20)
    assert plan.resident == tuple(range(10)) and plan.streamed == () and plan.fits
    # 6 GB: 1 (rest) + 2 (activations) + 2 x 0.5 (two copies in flight) leaves 2 GB = 4 blocks.
    plan = plan_residency(blocks, GB, 2 * GB, budget_gb=6)
    assert len(plan.resident) == 4 and len(plan.streamed) == 6 and plan.peak <= 6 * GB
    # Without prefetch one copy in flight is enough: one more block fits.
    plan = plan_residency(blocks, GB, 2 * GB, budget_gb=6, prefetch=False)
    assert len(plan.resident) == 5 and plan.peak == 6 * GB
    plan = plan_residency(blocks, GB, 2 * GB, budget_gb=4)
    assert plan.resident == () and plan.fits
    plan = plan_residency(blocks, GB, 2 * GB, budget_gb=3.5)
    assert plan.resident == () and not plan.fits
    assert "below the minimum" in plan.describe()


def test_plan_spreads_streamed_blocks_and_keeps_the_first_resident():
    assert spread_streamed(30, 0) == ()
    assert spread_streamed(30, 30) == tuple(range(30))
    s = spread_streamed(30, 10)
    assert len(s) == 10 and 0 not in s and s[-1] == 29
    gaps = [b - a for a, b in zip(s, s[1:])]
    assert max(gaps) - min(gaps) <= 1
    with pytest.raises(ValueError):
        plan_residency([1, 2], 0, 0, budget_gb=0)


def test_activation_estimate_grows_with_the_latent():
    small = activation_bytes(WanDiTConfig(), (5, 30, 52))
    big = activation_bytes(WanDiTConfig(), (25, 68, 120))
    assert big > 10 * small
    wide = activation_bytes(WanDiTConfig(dim=5120, ffn_dim=13824, num_heads=40, num_layers=40), (25, 68, 120))
    assert wide > 2.5 * big
    with_cache = activation_bytes(WanDiTConfig(), (25, 68, 120), teacache=True)
    assert with_cache - big >= 2 * 25 * 34 * 60 * 1536 * 4
    with pytest.raises(ValueError):
        activation_bytes(WanDiTConfig(), (68, 120))


# --------------------------------------------------------------------------- streaming


def test_estimate_bytes_splits_blocks_and_rest():
    model = tiny_model()
    b = offload.estimate_bytes(model)
    total = sum(p.numel() * p.element_size() for p in model.parameters())
    total += sum(t.numel() * t.element_size() for t in model.buffers())
    assert b["total"] == total and b["blocks"] + b["rest"] == total
    assert len(b["per_block"]) == 6 and len(set(b["per_block"])) == 1


@pytest.mark.parametrize("blocks_resident", [6, 3, 1, 0])
def test_streaming_schedule_within_budget_and_identical_results(blocks_resident):
    model = tiny_model()
    x, t, ctx = inputs(model.config)
    with torch.no_grad():
        reference = model(x, t, ctx)
    sizes = offload.estimate_bytes(model)
    act = activation_bytes(model.config, LATENT, compute_dtype=torch.float32)
    block = sizes["per_block"][0]
    in_flight = 2 * block if blocks_resident < 6 else 0
    budget = sizes["rest"] + act + blocks_resident * block + in_flight + block // 3
    masters = {k: v for k, v in model.state_dict().items()}

    fake = FakeDevice()
    plan = offload.prepare_for_sampling(model, "cpu", budget / GB, latent_shape=LATENT, transfer=fake)
    assert len(plan.resident) == blocks_resident and plan.fits
    with torch.no_grad():
        out1 = model(x, t, ctx)
        out2 = model(x, t, ctx)
    assert torch.equal(out1, reference) and torch.equal(out2, reference)
    # Every streamed block was fetched once per forward pass, plus the wrap-around prefetch.
    n_streamed = len(plan.streamed)
    assert len(fake.fetched) == (2 * n_streamed + 1 if n_streamed else 0)
    assert fake.peak <= budget - act
    assert fake.peak == sizes["rest"] + blocks_resident * block + min(2, n_streamed) * block
    offload.release(model)
    assert fake.current == 0
    assert model.block_hooks is None
    for k, v in model.state_dict().items():
        assert v is masters[k] or v.data_ptr() == masters[k].data_ptr(), k


def test_streaming_without_prefetch_holds_one_copy():
    model = tiny_model()
    x, t, ctx = inputs(model.config)
    sizes = offload.estimate_bytes(model)
    act = activation_bytes(model.config, LATENT, compute_dtype=torch.float32)
    block = sizes["per_block"][0]
    fake = FakeDevice()
    plan = offload.prepare_for_sampling(model, "cpu", (sizes["rest"] + act + 2 * block) / GB, prefetch=False,
                                        latent_shape=LATENT, transfer=fake)
    assert len(plan.resident) == 1
    with torch.no_grad():
        model(x, t, ctx)
    assert fake.peak == sizes["rest"] + 2 * block  # one resident block + one streamed copy
    assert fake.current == sizes["rest"] + block
    offload.release(model)
    assert fake.current == 0


def test_interrupted_forward_leaves_no_extra_copies():
    model = tiny_model()
    x, t, ctx = inputs(model.config)
    with torch.no_grad():
        reference = model(x, t, ctx)
    fake = FakeDevice()
    sizes = offload.estimate_bytes(model)
    act = activation_bytes(model.config, LATENT, compute_dtype=torch.float32)
    budget = sizes["rest"] + act + 4 * sizes["per_block"][0]
    offload.prepare_for_sampling(model, "cpu", budget / GB, latent_shape=LATENT, transfer=fake)
    streamer = model.block_hooks
    assert len(streamer.streamed) == 4

    boom = streamer.streamed[-1]

    def fail(*a, **k):
        raise host.Interrupted("stop")

    model.blocks[boom].forward = fail
    with pytest.raises(host.Interrupted), torch.no_grad():
        model(x, t, ctx)
    del model.blocks[boom].forward
    with torch.no_grad():
        out = model(x, t, ctx)
    assert torch.equal(out, reference)
    assert len(streamer.live) <= 2
    offload.release(model)
    assert fake.current == 0


def test_host_to_device_packs_every_dtype_and_reuses_pinned_staging():
    model = tiny_model(weight_dtype="fp8_e4m3fn")  # fp8 weights, float32 scales (0-dim), fp32 norms
    x, t, ctx = inputs(model.config)
    with torch.no_grad():
        reference = model(x, t, ctx)
    staging = bs.HostStaging(pin=False)
    model.__dict__["_skyreels_staging"] = staging
    for _ in range(3):
        transfer = bs.HostToDevice(torch.device("cpu"), offload.staging_for(model))
        offload.prepare_for_sampling(model, "cpu", 1e-9, latent_shape=(1, 2, 2), transfer=transfer)
        assert len(model.block_hooks.streamed) == 6
        with torch.no_grad():
            out = model(x, t, ctx)
        assert torch.equal(out, reference)
        offload.release(model)
    assert staging.allocations == 2  # two buffers, allocated once, never grown
    biggest = max(bs.BlockLayout.of([r.master for r in bs.tensor_refs(b)]).total for b in model.blocks)
    assert staging.capacity == biggest


def test_block_layout_round_trip():
    tensors = [torch.randn(3, 5), torch.tensor(0.25), torch.randn(7).to(torch.bfloat16),
               torch.randn(4, 4).to(torch.float8_e5m2), torch.empty(0)]
    layout = bs.BlockLayout.of(tensors)
    assert all(off % bs.ALIGN == 0 for off in layout.offsets)
    buffer = torch.zeros(layout.total, dtype=torch.uint8)
    layout.pack(tensors, buffer)
    back = layout.unpack(buffer.clone())
    for a, b in zip(tensors, back):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert torch.equal(a.reshape(-1).view(torch.uint8), b.reshape(-1).view(torch.uint8))


def test_no_budget_keeps_the_model_whole():
    model = tiny_model()
    assert offload.prepare_for_sampling(model, "cpu", None) is None
    assert offload.prepare_for_sampling(model, "cpu", 0) is None
    assert model.block_hooks is None and model.device.type == "cpu"
    offload.release(model)
    with pytest.raises(ValueError):
        offload.prepare_for_sampling(model, "cpu", -1)
    with pytest.raises(ValueError, match="blocks"):
        offload.prepare_for_sampling(nn.Linear(2, 2), "cpu", 1.0, transfer=FakeDevice())


# --------------------------------------------------------------------------- ComfyUI cooperation


def test_host_registers_the_model_with_comfyui(monkeypatch):
    calls = []

    class FakePatcher:
        def __init__(self, model, load_device, offload_device, size=0):
            self.model, self.load_device, self.offload_device = model, load_device, offload_device
            model.device = offload_device  # the real ModelPatcher assigns this attribute

    class FakeLoaded:
        def __init__(self, patcher):
            self.model = patcher

        def model_unload(self):
            calls.append("unload")
            self.model.model.to(self.model.offload_device)

    def load_models_gpu(models, memory_required=0, force_full_load=False):
        calls.append(("load", memory_required, force_full_load))
        for p in models:
            if any(entry.model is p for entry in mm.current_loaded_models):
                continue
            p.model.to(p.load_device)
            p.model.device = p.load_device
            mm.current_loaded_models.insert(0, FakeLoaded(p))

    mm = types.SimpleNamespace(current_loaded_models=[], load_models_gpu=load_models_gpu)
    comfy_pkg = types.ModuleType("comfy")
    patcher_mod = types.ModuleType("comfy.model_patcher")
    patcher_mod.ModelPatcher = FakePatcher
    comfy_pkg.model_patcher = patcher_mod
    monkeypatch.setitem(sys.modules, "comfy", comfy_pkg)
    monkeypatch.setitem(sys.modules, "comfy.model_patcher", patcher_mod)
    monkeypatch.setattr(host, "_COMFY", {"mm": mm, "utils": None, "folder_paths": None})
    monkeypatch.setattr(host, "offload_device", lambda: torch.device("cpu"))

    model = nn.Linear(4, 4)
    target = torch.device("meta")  # a non-CPU device that exists on every machine
    host.load_model(model, target, memory_required=123)
    assert calls == [("load", 123, True)]
    assert model.weight.device == target
    assert len(mm.current_loaded_models) == 1
    host.load_model(model, target)  # the same patcher is reused
    assert model.__dict__["_host_patcher"] is mm.current_loaded_models[0].model
    monkeypatch.setattr(torch.nn.Module, "to", lambda self, *a, **k: self)  # meta tensors cannot come back
    host.unload_model(model)
    assert calls[-1] == "unload" and mm.current_loaded_models == []


# --------------------------------------------------------------------------- torch.compile


def test_compile_failure_falls_back_to_eager_with_one_message(monkeypatch):
    from skyreels_pack.memory import compile as mc

    model = tiny_model()
    x, t, ctx = inputs(model.config)
    with torch.no_grad():
        reference = model(x, t, ctx)
    messages = []
    monkeypatch.setattr(mc, "log", messages.append)

    def broken_compile(fn, **kw):
        def run(*a, **k):
            raise RuntimeError("backend exploded\nlong traceback text")
        return run

    monkeypatch.setattr(torch, "compile", broken_compile)
    keys = list(model.state_dict())
    assert mc.compile_blocks(model) is True
    with torch.no_grad():
        out = model(x, t, ctx)
        again = model(x, t, ctx)
    assert torch.equal(out, reference) and torch.equal(again, reference)
    assert len(messages) == 1 and "backend exploded" in messages[0] and "\n" not in messages[0]
    assert list(model.state_dict()) == keys  # parameter names unchanged
    assert mc.compile_failed(model)
    mc.uncompile_blocks(model)
    assert not any(mc.is_compiled(b) for b in model.blocks)


def test_compile_unsupported_returns_false(monkeypatch):
    from skyreels_pack.memory import compile as mc

    model = tiny_model()
    messages = []
    monkeypatch.setattr(mc, "log", messages.append)
    monkeypatch.setattr(mc.shutil, "which", lambda name: None)
    assert mc.compile_blocks(model) is False
    assert len(messages) == 1 and "C++ compiler" in messages[0]
    assert not any(mc.is_compiled(b) for b in model.blocks)


def test_compile_with_a_real_backend_gives_the_same_result():
    from skyreels_pack.memory import compile as mc

    model = tiny_model(tiny_config(num_layers=2))
    x, t, ctx = inputs(model.config)
    with torch.no_grad():
        reference = model(x, t, ctx)
    assert mc.compile_blocks(model, backend="eager") is True
    with torch.no_grad():
        out = model(x, t, ctx)
    assert torch.allclose(out, reference, atol=1e-5, rtol=1e-5)
    assert not mc.compile_failed(model)
    mc.uncompile_blocks(model)


# --------------------------------------------------------------------------- attention backends


def test_attention_backend_failure_falls_back_to_sdpa_once(monkeypatch):
    from skyreels_pack.models.common import attention as att

    messages = []
    monkeypatch.setattr(host, "log", messages.append)
    broken = types.ModuleType("flash_attn")

    def flash_attn_func(q, k, v):
        raise RuntimeError("FlashAttention only supports Ampere GPUs or newer.")

    broken.flash_attn_func = flash_attn_func
    monkeypatch.setitem(sys.modules, "flash_attn", broken)
    monkeypatch.setattr(att, "_failed_backends", {})
    q, k, v = (torch.randn(1, 2, 5, 8) for _ in range(3))
    expected = att.sdpa(q, k, v)
    assert torch.allclose(att.attention(q, k, v, "flash_attn"), expected)
    assert torch.allclose(att.attention(q, k, v, "flash_attn"), expected)
    assert len(messages) == 1 and "Ampere" in messages[0] and "SDPA" in messages[0]


def test_broken_backend_install_is_reported_at_load_time(monkeypatch):
    from skyreels_pack.models.common import attention as att

    monkeypatch.setattr(att, "_import_errors", {})
    monkeypatch.setitem(sys.modules, "sageattention", None)  # import raises ImportError
    reason = att._import_problem("sageattention", "sageattn")
    assert "does not import" in reason
    messages = []
    assert att.resolve_backend("sageattn", torch.device("cpu"), messages.append) == "sdpa"
    assert len(messages) == 1 and "using PyTorch SDPA" in messages[0]
