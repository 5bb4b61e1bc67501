"""Attention backends: PyTorch SDPA by default, flash-attention or SageAttention when installed.

All functions take q, k, v as [B, H, L, d] in the compute dtype and return [B, H, Lq, d].
:func:`resolve_backend` is called at load time: it turns a user choice into a backend that
exists here, with a one-line message when it has to fall back.
"""
from __future__ import annotations

import importlib.util
from typing import Callable, Dict, Optional

import torch
import torch.nn.functional as F

BACKENDS = ("auto", "sdpa", "flash_attn", "sageattn")


def _has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def available_backends(device: Optional[torch.device] = None) -> Dict[str, str]:
    """backend -> "" if usable on ``device``, else the reason it is not."""
    device = torch.device(device) if device is not None else None
    on_cuda = device is not None and device.type == "cuda"
    out = {"sdpa": ""}
    if not _has_module("flash_attn"):
        out["flash_attn"] = "the flash_attn package is not installed"
    elif not on_cuda:
        out["flash_attn"] = "flash-attention needs a CUDA GPU"
    else:
        out["flash_attn"] = ""
    if not _has_module("sageattention"):
        out["sageattn"] = "the sageattention package is not installed"
    elif not on_cuda:
        out["sageattn"] = "SageAttention needs a CUDA GPU"
    else:
        out["sageattn"] = ""
    return out


def resolve_backend(choice: str, device: torch.device, log: Optional[Callable[[str], None]] = None) -> str:
    """The backend to use for ``choice`` on ``device``; falls back to sdpa with a message."""
    if choice not in BACKENDS:
        raise ValueError("unknown attention backend %r; choose one of %s" % (choice, ", ".join(BACKENDS)))
    avail = available_backends(device)
    if choice == "auto":
        for b in ("sageattn", "flash_attn"):
            if avail.get(b) == "":
                return b
        return "sdpa"
    if avail.get(choice, "unknown") == "":
        return choice
    if log is not None:
        log("attention %s is not available (%s); using PyTorch SDPA instead" % (choice, avail[choice]))
    return "sdpa"


def sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return F.scaled_dot_product_attention(q, k, v)


def _flash(q, k, v):
    from flash_attn import flash_attn_func  # type: ignore

    dtype = q.dtype
    if dtype not in (torch.float16, torch.bfloat16):
        q, k, v = (t.to(torch.bfloat16) for t in (q, k, v))
    out = flash_attn_func(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
    return out.transpose(1, 2).to(dtype)


def _sage(q, k, v):
    from sageattention import sageattn  # type: ignore

    dtype = q.dtype
    if dtype not in (torch.float16, torch.bfloat16):
        q, k, v = (t.to(torch.bfloat16) for t in (q, k, v))
    return sageattn(q, k, v, tensor_layout="HND").to(dtype)


_IMPLS = {"sdpa": sdpa, "flash_attn": _flash, "sageattn": _sage}


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, backend: str = "sdpa") -> torch.Tensor:
    """Softmax attention with 1/sqrt(d) scaling, no mask."""
    return _IMPLS.get(backend, sdpa)(q, k, v)
