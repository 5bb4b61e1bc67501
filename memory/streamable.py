"""What a DiT offers the memory machinery: the protocol every family's transformer follows.

The budget planner, the block streamer, quantization and compile work on any transformer
that exposes:

* ``streamable_blocks() -> Sequence[nn.Module]``: its repeated blocks in the order they run
  (Wan: ``blocks``; HunyuanVideo: double- then single-stream blocks; CogVideoX:
  ``transformer_blocks``).  Without the method, ``model.blocks`` is used.
* ``block_hooks``: an attribute the model reads in its forward pass, calling
  ``hooks.before_block(i, block)`` and ``hooks.after_block(i, block)`` around block ``i``
  of :func:`blocks_of` (global index, in that order), when it is not None.
* ``activation_bytes(latent_shape, batch, compute_dtype, teacache) -> int``: the estimated
  peak activation bytes of one forward pass for a latent ``(frames, height, width)``.
  Without the method, :func:`memory.budget.activation_bytes` reads the Wan-style config
  (``patch_size``, ``dim``, ``ffn_dim``, ``head_dim``, ``text_len``).
* ``compute_dtype``: the dtype its matrix products run in.
* ``weight_patches`` (optional, set by :func:`models.lora.apply.apply_loras`): deltas merged
  into the compute copies of some weights.  The streamer calls
  ``weight_patches.patch_copy(module, name, copy, master)`` on every copy it installs; a
  whole-model load is wrapped in ``stash(model)`` / ``install(model)`` and undone by
  ``restore(model)``.  The host tensors are never changed.
* ``key_aliases(name) -> [names]`` (optional): other spellings of a parameter name in files
  in circulation (the diffusers name), so LoRAs of either naming find their layers; a name
  may be a :class:`models.lora.targets.RowSlice` when that spelling is a slice of the rows.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn as nn


def blocks_of(model: nn.Module) -> Optional[Sequence[nn.Module]]:
    """The streamable blocks of ``model`` in running order, or None when it has none."""
    fn = getattr(model, "streamable_blocks", None)
    if callable(fn):
        return list(fn())
    return getattr(model, "blocks", None)


def activations_of(model: nn.Module, latent_shape: Sequence[int], batch: int = 1,
                   compute_dtype: torch.dtype = torch.bfloat16, teacache: bool = False) -> int:
    """Estimated peak activation bytes of one forward pass of ``model`` (0 when unknown)."""
    fn = getattr(model, "activation_bytes", None)
    if callable(fn):
        return int(fn(latent_shape, batch, compute_dtype, teacache))
    config = getattr(model, "config", None)
    if config is None or not hasattr(config, "patch_size"):
        return 0
    from .budget import activation_bytes

    return activation_bytes(config, latent_shape, batch, compute_dtype, teacache)
