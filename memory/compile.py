"""Optional ``torch.compile`` of the DiT blocks, with a safe fallback.

Only the blocks are compiled (the same code runs 30-40 times per step; the embeddings and
the head are small), each block on its own so weight streaming and TeaCache keep working
around them.  Compilation happens lazily on the first forward pass; if it fails there (no
Triton or C++ compiler, an unsupported op or platform), a one-line message is logged and
every block runs eagerly from then on: the result is the same, only slower.
"""
from __future__ import annotations

import importlib
import importlib.util
import shutil
import sys
from typing import Optional

import torch
import torch.nn as nn

from ..host import log
from .streamable import blocks_of


def compile_unsupported_reason(device: torch.device, backend: str = "inductor") -> Optional[str]:
    """Why torch.compile cannot work here, or None when it may."""
    if not hasattr(torch, "compile"):
        return "this PyTorch has no torch.compile"
    try:
        importlib.import_module("torch._dynamo")
    except Exception as e:  # pragma: no cover - broken installs
        return "torch._dynamo cannot be imported (%s)" % e
    if backend != "inductor":
        return None
    device = torch.device(device)
    if device.type == "cuda" and importlib.util.find_spec("triton") is None:
        return "the inductor backend needs Triton for CUDA and it is not installed"
    if device.type == "cpu" and not any(shutil.which(c) for c in ("cc", "gcc", "clang", "cl")):
        return "the inductor backend needs a C++ compiler on the CPU and none was found"
    if sys.platform == "win32" and device.type == "cpu":
        return "inductor on the CPU is not supported on Windows"
    return None


class _FallbackState:
    """Shared by all blocks of one model: once compilation fails, everything runs eagerly."""

    def __init__(self):
        self.failed = False


def _with_fallback(eager, compiled, state: _FallbackState):
    def forward(*args, **kwargs):
        if not state.failed:
            try:
                return compiled(*args, **kwargs)
            except (torch.OutOfMemoryError, KeyboardInterrupt):
                raise
            except Exception as e:
                state.failed = True
                text = str(e).strip()
                first = text.splitlines()[0][:200] if text else ""
                log("torch.compile failed (%s%s); running the blocks uncompiled"
                    % (type(e).__name__, ": " + first if first else ""))
        return eager(*args, **kwargs)

    forward.compiled = compiled
    forward.eager = eager
    forward.state = state
    return forward


def is_compiled(block: nn.Module) -> bool:
    return hasattr(block.__dict__.get("forward"), "compiled")


def compile_failed(model: nn.Module) -> bool:
    """True when the blocks were compiled but compilation failed and they now run eagerly."""
    return any(is_compiled(b) and b.forward.state.failed for b in blocks_of(model) or ())


def compile_blocks(model: nn.Module, mode: str = "default", backend: str = "inductor",
                   dynamic: Optional[bool] = False) -> bool:
    """Compile the forward of every block of ``model``; True if compilation was set up.

    The blocks stay the same modules with the same parameter names (their ``forward`` is
    replaced on the instance), so state dicts, quantization and weight streaming are
    unaffected.  Returns False (with a one-line message) when torch.compile is unsupported
    here; a failure during the first compiled forward pass is caught as well and the blocks
    then run eagerly.
    """
    blocks = blocks_of(model)
    if blocks is None:
        raise ValueError("compile_blocks needs a transformer with blocks; got %s" % type(model).__name__)
    if all(is_compiled(b) for b in blocks):
        return True
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    reason = compile_unsupported_reason(device, backend)
    if reason is not None:
        log("torch.compile is not available (%s); running the blocks uncompiled" % reason)
        return False
    state = _FallbackState()
    try:
        forwards = []
        for b in blocks:
            eager = b.__dict__.get("forward", None)
            eager = getattr(eager, "eager", None) or b.forward
            forwards.append(_with_fallback(eager, torch.compile(eager, mode=mode, backend=backend,
                                                                dynamic=dynamic), state))
    except Exception as e:
        log("torch.compile could not be set up (%s); running the blocks uncompiled" % e)
        return False
    for b, f in zip(blocks, forwards):
        b.forward = f
    return True


def uncompile_blocks(model: nn.Module) -> None:
    """Put the plain forward back on every block."""
    for b in blocks_of(model) or ():
        if is_compiled(b):
            del b.forward
