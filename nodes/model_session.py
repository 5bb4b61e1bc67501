"""Putting the DiT on the compute device for one sampling job, and the step caches for it."""
from __future__ import annotations

import contextlib

from .. import host


@contextlib.contextmanager
def dit_session(handle, latent_shape=None, teacache: bool = False):
    """The DiT ready on the compute device within the handle's VRAM budget; released after.

    ``latent_shape`` (frames, height, width) of the largest latent the model will see sizes the
    activation part of the budget."""
    from ..memory.offload import prepare_for_sampling, release
    from ..models.lora import apply_loras

    # The model may be shared by handles with different LoRAs: bring it to this handle's set.
    apply_loras(handle.model, [(spec.resolved, spec.strength) for spec in getattr(handle, "loras", ())])
    device = host.torch_device()
    prepare_for_sampling(handle.model, device, handle.vram_budget_gb or None, latent_shape=latent_shape,
                         teacache=teacache)
    try:
        yield handle.model
    finally:
        release(handle.model)


def step_caches(settings, config, calls_per_branch: int, latent_hw=None):
    """(cond, uncond) TeaCache objects for ``calls_per_branch`` model calls, or (None, None)."""
    if settings is None or settings.threshold <= 0:
        return (None, None)
    from ..sampling.teacache import teacache_pair

    return teacache_pair(config, settings.threshold, calls_per_branch, use_ret_steps=settings.use_ret_steps,
                         latent_hw=latent_hw)
