"""Models on the compute device for one job (a DiT with its LoRAs and VRAM budget, the VAE beside it,
an encoder), the step caches of a sampling job, and what a long render's resume signature adds."""
from __future__ import annotations

import contextlib
import os

from .. import host


@contextlib.contextmanager
def on_compute_device(module, budget_gb=None, latent_shape=None, teacache: bool = False):
    """``module`` ready on the compute device for one job, within ``budget_gb`` (blocks or layers
    that do not fit stream in; None or 0 = no budget); released after.  ``latent_shape`` sizes
    the activation part of the budget."""
    from ..memory.offload import prepare_for_sampling, release

    prepare_for_sampling(module, host.torch_device(), budget_gb or None, latent_shape=latent_shape, teacache=teacache)
    try:
        yield module
    finally:
        release(module)


@contextlib.contextmanager
def dit_session(handle, latent_shape=None, teacache: bool = False):
    """The DiT ready on the compute device within the handle's VRAM budget; released after.

    ``latent_shape`` (frames, height, width) of the largest latent the model will see sizes the
    activation part of the budget."""
    from ..models.lora import apply_loras

    # The model may be shared by handles with different LoRAs: bring it to this handle's set.
    apply_loras(handle.model, [(spec.resolved, spec.strength) for spec in getattr(handle, "loras", ())])
    with on_compute_device(handle.model, handle.vram_budget_gb, latent_shape, teacache) as model:
        yield model


@contextlib.contextmanager
def dit_and_codec(handle, vae, latent_shape=None, teacache: bool = False):
    """(DiT, VideoCodec): the DiT ready as :func:`dit_session` makes it and the Wan VAE of the
    handle ``vae`` beside it on the same device, for a long render that decodes as it goes;
    the VAE goes back to the offload device after."""
    from ..sampling.video_codec import VideoCodec

    with dit_session(handle, latent_shape, teacache=teacache) as dit:
        device = dit.device
        vae.vae.to(device)
        try:
            yield dit, VideoCodec(vae.vae, device, vae.tile)
        finally:
            vae.vae.to(host.offload_device())


def step_caches(settings, config, calls_per_branch: int, latent_hw=None):
    """(cond, uncond) TeaCache objects for ``calls_per_branch`` model calls, or (None, None)."""
    if settings is None or settings.threshold <= 0:
        return (None, None)
    from ..sampling.teacache import teacache_pair

    return teacache_pair(config, settings.threshold, calls_per_branch, use_ret_steps=settings.use_ret_steps,
                         latent_hw=latent_hw)


def run_identity(model, cache=None, **handles) -> dict:
    """What the node layer adds to a long render's resume signature (the engine fingerprints the
    weights and digests the inputs): the files the DiT and the other ``handles`` (vae, ...) were
    loaded from, the DiT's compile flag and the step-cache settings."""
    out = {"dit": file_identity(model.path), "compile": model.compile,
           "cache": repr(cache) if cache is not None else None}
    out.update((name, file_identity(handle.path)) for name, handle in handles.items())
    return out


def file_identity(path):
    """Which file a handle was loaded from: its name and size."""
    name = os.path.basename(str(path).rstrip("/\\"))
    try:
        return [name, os.path.getsize(path) if os.path.isfile(path) else None]
    except OSError:
        return [name, None]
