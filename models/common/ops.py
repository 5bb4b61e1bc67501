"""Layers whose stored weights may differ from the compute dtype and device.

A checkpoint can hold weights in fp8, bf16 or fp32 and they may live in system RAM while the
work runs on the GPU.  These layers keep the stored tensor as it is and cast it to the
input's dtype and device at compute time, one layer at a time, so no full-precision copy of
the model ever exists.  "Scaled" fp8 files (ComfyUI / Kijai style) carry a per-weight
``scale_weight`` that multiplies the upcast weight.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

FP8_DTYPES = tuple(
    getattr(torch, n) for n in ("float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz")
    if hasattr(torch, n))


def is_fp8(dtype: torch.dtype) -> bool:
    return dtype in FP8_DTYPES


def default_compute_dtype(device) -> torch.dtype:
    """float32 on the CPU, fp16 on CUDA GPUs without bf16 (pre-Ampere), bf16 elsewhere."""
    device = torch.device(device)
    if device.type == "cpu":
        return torch.float32
    if device.type == "cuda" and torch.cuda.is_available() and not torch.cuda.is_bf16_supported():
        return torch.float16
    return torch.bfloat16


def cast_to(t: Optional[torch.Tensor], like: torch.Tensor) -> Optional[torch.Tensor]:
    """``t`` on ``like``'s device in ``like``'s dtype (no copy when it already is)."""
    if t is None:
        return None
    if t.device != like.device or t.dtype != like.dtype:
        if is_fp8(t.dtype) and t.device != like.device:
            t = t.to(like.device, non_blocking=True)  # move the small fp8 tensor, then upcast
        return t.to(device=like.device, dtype=like.dtype, non_blocking=True)
    return t


class CastWeights:
    """Mixin: ``self.cast_params(x)`` returns (weight, bias) ready for ``x``."""

    scale_weight: Optional[torch.Tensor]

    def cast_params(self, x: torch.Tensor) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        w = cast_to(self.weight, x)
        scale = getattr(self, "scale_weight", None)
        if scale is not None:
            w = w * cast_to(scale, x)
        b = cast_to(self.bias, x) if getattr(self, "bias", None) is not None else None
        return w, b


class LoRATarget:
    """Mixin of the Linear layers (plain, fp8, int8, nf4, GGUF): ``self.lora_out(x, out)`` adds
    the output of a low-rank adapter registered as the child module ``lora`` (see
    :mod:`models.lora.apply`), or returns ``out`` when there is none."""

    def lora_out(self, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        adapter = self._modules.get("lora")
        return out if adapter is None else adapter(x, out)


class Linear(CastWeights, LoRATarget, nn.Linear):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w, b = self.cast_params(x)
        return self.lora_out(x, F.linear(x, w, b))


class Conv3d(CastWeights, nn.Conv3d):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w, b = self.cast_params(x)
        return self._conv_forward(x, w, b)


class Conv2d(CastWeights, nn.Conv2d):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w, b = self.cast_params(x)
        return self._conv_forward(x, w, b)


class LayerNorm(nn.LayerNorm):
    """LayerNorm computed in float32 whatever the input dtype; returns float32."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        w = self.weight.float().to(x.device) if self.weight is not None else None
        b = self.bias.float().to(x.device) if self.bias is not None else None
        return F.layer_norm(x, self.normalized_shape, w, b, self.eps)


_rms_norm = getattr(F, "rms_norm", None)  # PyTorch >= 2.4


class RMSNorm(nn.Module):
    """RMS norm over the last dimension, computed in float32; returns float32."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        w = self.weight.float().to(x.device)
        if _rms_norm is not None:  # one fused kernel on GPUs; the same formula
            return _rms_norm(x, (x.shape[-1],), w, self.eps)
        x = x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + self.eps)
        return x * w


class Embedding(nn.Embedding):
    """Looks rows up in the stored dtype, then upcasts only those rows to float32."""

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        rows = F.embedding(idx.to(self.weight.device), self.weight)
        return rows.to(idx.device).float()


def quantizable_linears(module: nn.Module):
    """(name, Linear) pairs that weight-only quantization may touch."""
    for name, m in module.named_modules():
        if isinstance(m, Linear):
            yield name, m
