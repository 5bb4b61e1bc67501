"""Attention backends: PyTorch SDPA by default, flash-attention or SageAttention when installed.

All functions take q, k, v as [B, H, L, d] in the compute dtype and return [B, H, Lq, d].
:func:`resolve_backend` is called at load time: it turns a user choice into a backend that
exists here, with a one-line message when it has to fall back.
"""
from __future__ import annotations

import importlib
import importlib.util
from typing import Callable, Dict, Optional, Sequence

import torch
import torch.nn.functional as F

BACKENDS = ("auto", "sdpa", "flash_attn", "sageattn")


def _has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


_import_errors: Dict[str, str] = {}


def _import_problem(module: str, attr: str) -> str:
    """"" when ``module.attr`` imports, else a short reason (a broken build of flash-attn or
    SageAttention fails here, at load time, instead of in the middle of sampling)."""
    if module not in _import_errors:
        try:
            getattr(importlib.import_module(module), attr)
            _import_errors[module] = ""
        except Exception as e:  # ImportError, OSError from a CUDA mismatch, AttributeError...
            text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            _import_errors[module] = "the %s package is installed but does not import (%s)" % (module, text[:160])
    return _import_errors[module]


def _cuda_capability(device: torch.device):
    try:
        return torch.cuda.get_device_capability(device)
    except Exception:
        return None


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
        cap = _cuda_capability(device)
        if cap is not None and cap < (8, 0):
            out["flash_attn"] = "flash-attention 2 needs an Ampere or newer GPU (this one is sm_%d%d)" % cap
        else:
            out["flash_attn"] = _import_problem("flash_attn", "flash_attn_func")
    if not _has_module("sageattention"):
        out["sageattn"] = "the sageattention package is not installed"
    elif not on_cuda:
        out["sageattn"] = "SageAttention needs a CUDA GPU"
    else:
        out["sageattn"] = _import_problem("sageattention", "sageattn")
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


_failed_backends: Dict[str, str] = {}


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, backend: str = "sdpa",
              key_lengths: Optional[Sequence[int]] = None) -> torch.Tensor:
    """Softmax attention with 1/sqrt(d) scaling.

    ``key_lengths`` (one int per batch row) is a key-padding mask in its simplest form: row b
    attends only to its first ``key_lengths[b]`` keys (text padded on the right, as in
    HunyuanVideo's joint attention).  Rows are then run one by one on their cropped keys,
    which is exact, needs no L x L mask and works with every backend.

    A flash-attention or SageAttention call that fails (an unsupported head size, dtype or
    GPU) is answered by SDPA instead, with one message, and the backend is not tried again
    in this process.
    """
    if key_lengths is not None:
        lk = k.shape[2]
        lengths = [min(int(n), lk) for n in key_lengths]
        if len(lengths) != q.shape[0]:
            raise ValueError("key_lengths has %d entries for a batch of %d" % (len(lengths), q.shape[0]))
        if any(n < 1 for n in lengths):
            raise ValueError("every row needs at least one valid key")
        if any(n < lk for n in lengths):
            return torch.cat([attention(q[b:b + 1], k[b:b + 1, :, :n], v[b:b + 1, :, :n], backend)
                              for b, n in enumerate(lengths)], dim=0)
    if backend == "sdpa" or backend not in _IMPLS or backend in _failed_backends:
        return sdpa(q, k, v)
    try:
        return _IMPLS[backend](q, k, v)
    except torch.OutOfMemoryError:
        raise
    except Exception as e:
        text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        _failed_backends[backend] = text
        from ...host import log

        log("attention %s failed (%s: %s); using PyTorch SDPA from now on" % (backend, type(e).__name__, text[:160]))
        return sdpa(q, k, v)
