"""Put a model on the compute device for sampling, within a VRAM budget, and take it off again.

* No budget (None or 0): the whole model goes to the device.  Inside ComfyUI this goes
  through ComfyUI's memory manager (``host.load_model``), so other models are unloaded first
  and ComfyUI may unload ours when it needs room.
* A budget in GB: :func:`memory.budget.plan_residency` decides which DiT blocks stay on the
  device; the others are streamed by a :class:`memory.block_streamer.BlockStreamer`
  installed as ``model.block_hooks``.
* Either way, merged LoRAs (``model.weight_patches``, see :mod:`memory.streamable`) go into
  the compute copies only; the host tensors stay unmerged.

:func:`release` undoes either: device copies are dropped, the model is back on the offload
device, the allocator cache is emptied and freed host memory goes back to the system.  The
same two calls work for the encoders (any ``nn.Module``; a budget only applies to models
with streamable blocks, see :mod:`memory.streamable`).
"""
from __future__ import annotations

from typing import Dict, Optional, Sequence

import torch
import torch.nn as nn

from .. import host
from .block_streamer import BlockLayout, BlockStreamer, HostStaging, HostToDevice, Transfer, tensor_refs
from .budget import ResidencyPlan, gib, plan_residency
from .streamable import activations_of, blocks_of
from ..host import trim_host_memory

# Planned latent when the caller gives none: 97 frames at 960x544 (SkyReels-V2 540P).
DEFAULT_LATENT = (25, 68, 120)


def module_bytes(module: nn.Module) -> int:
    """Bytes of every parameter and buffer of ``module`` (each tensor once)."""
    return sum(r.master.numel() * r.master.element_size() for r in tensor_refs(module))


def cast_weight_bytes(model: nn.Module, compute_dtype: torch.dtype) -> int:
    """Room for the largest Linear weight stored in another dtype than the compute dtype (fp8,
    int8, nf4, GGUF, or bf16 under fp32 compute): it is upcast or dequantized just before its
    product, one layer at a time."""
    size = torch.empty((), dtype=compute_dtype).element_size()
    largest = 0
    for m in model.modules():
        w = getattr(m, "weight", None)
        if isinstance(w, torch.Tensor) and hasattr(m, "in_features") and hasattr(m, "out_features") \
                and w.dtype != compute_dtype:
            largest = max(largest, int(m.in_features) * int(m.out_features) * size)
    return largest


def estimate_bytes(model: nn.Module) -> Dict[str, object]:
    """Weight bytes by part: ``blocks`` (sum), ``per_block`` (list), ``rest`` and ``total``."""
    total = module_bytes(model)
    blocks = blocks_of(model)
    per_block = [module_bytes(b) for b in blocks] if blocks is not None else []
    return {"blocks": sum(per_block), "per_block": per_block, "rest": total - sum(per_block), "total": total}


def staging_for(model: nn.Module) -> HostStaging:
    """The model's pinned staging buffers: created once per model, reused by every run."""
    staging = model.__dict__.get("_skyreels_staging")
    if staging is None:
        staging = HostStaging()
        model.__dict__["_skyreels_staging"] = staging
    return staging


def _streamer(model: nn.Module) -> Optional[BlockStreamer]:
    hooks = getattr(model, "block_hooks", None)
    return hooks if isinstance(hooks, BlockStreamer) else None


def prepare_for_sampling(model: nn.Module, device, vram_budget_gb: Optional[float], prefetch: bool = True, *,
                         latent_shape: Optional[Sequence[int]] = None, batch: int = 1, teacache: bool = False,
                         transfer: Optional[Transfer] = None) -> Optional[ResidencyPlan]:
    """Make ``model`` ready to run on ``device``.

    Args:
        model: a DiT following :mod:`memory.streamable` (or any module when there is no budget).
        device: the compute device.
        vram_budget_gb: None or 0 for no budget (the whole model on the device); otherwise the
            GB of device memory the model and its activations may use.
        prefetch: copy the next streamed block while the current one computes.
        latent_shape: the latent (frames, height, width) the model will see, for the activation
            estimate; default: 97 frames at 960x544.
        batch: samples per forward pass (CFG branches run one after the other: 1).
        teacache: room for the two residuals TeaCache keeps on the device.
        transfer: how streamed copies are made (tests pass a byte-accounting fake; it also
            enables streaming on a CPU "device").

    Returns the residency plan when a budget applies, else None.
    """
    device = torch.device(device)
    budget = float(vram_budget_gb or 0)
    if budget < 0:
        raise ValueError("the VRAM budget must be 0 (none) or a positive number of GB, got %r" % vram_budget_gb)
    if _streamer(model) is not None:
        _streamer(model).detach()
    shape = tuple(latent_shape) if latent_shape is not None else None
    compute_dtype = getattr(model, "compute_dtype", torch.bfloat16)

    patches = getattr(model, "weight_patches", None)
    if budget == 0 or (device.type == "cpu" and transfer is None):
        if budget and device.type == "cpu":
            host.log("a VRAM budget applies to GPUs; on the CPU the whole model stays in system RAM")
        need = activations_of(model, shape or DEFAULT_LATENT, batch, compute_dtype, teacache)
        if patches is not None:
            patches.stash(model)    # the host tensors stay as they are; the merge goes into the copies
        host.load_model(model, device, memory_required=need)
        if patches is not None:
            patches.install(model)
        return None

    if blocks_of(model) is None:
        raise ValueError("a VRAM budget needs a transformer with blocks (a DiT); got %s" % type(model).__name__)
    if shape is None:
        host.log("no latent size given for the VRAM plan; assuming 97 frames at 960x544")
        shape = DEFAULT_LATENT
    # Start from the host copies: a model that ComfyUI (or an earlier run) left on the device
    # goes back first, so the streamer's masters are in system RAM.
    if host.model_device(model).type != "cpu" or any(r.master.device.type != "cpu" for r in tensor_refs(model)):
        host.unload_model(model)
        if host.model_device(model).type != "cpu":  # ComfyUI's offload device may be the GPU (--highvram)
            model.to("cpu")
    sizes = estimate_bytes(model)
    act = activations_of(model, shape, batch, compute_dtype, teacache) + cast_weight_bytes(model, compute_dtype)
    plan = plan_residency(sizes["per_block"], sizes["rest"], act, budget, prefetch)
    host.log(plan.describe())
    if device.type != "cpu":
        host.make_room(device, plan.peak)
    if transfer is None:
        staging = staging_for(model)
        if plan.streamed:
            blocks = blocks_of(model)
            staging.ensure(max(BlockLayout.of([r.master for r in tensor_refs(blocks[i])]).total
                               for i in plan.streamed))
        transfer = HostToDevice(device, staging)
    model.block_hooks = BlockStreamer(model, plan.streamed, transfer, prefetch=prefetch)
    return plan


def release(model: nn.Module) -> None:
    """Back to the offload device: drop streamed and resident device copies, empty the cache."""
    streamer = _streamer(model)
    if streamer is not None:
        streamer.detach()
    patches = getattr(model, "weight_patches", None)
    if patches is not None:
        patches.restore(model)  # the unmerged host tensors back in place: nothing merged is copied back
    host.unload_model(model)
    host.empty_cache()
    trim_host_memory()


def describe_weights(model: nn.Module) -> str:
    """One line: weight sizes by part, for messages."""
    b = estimate_bytes(model)
    return "weights %s (blocks %s in %d blocks, rest %s)" % (
        gib(b["total"]), gib(b["blocks"]), len(b["per_block"]), gib(b["rest"]))
