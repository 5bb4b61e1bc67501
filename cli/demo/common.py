"""Helpers for the demo models: seeded random weights with sensible scales, atomic saving."""
from __future__ import annotations

import math
import os
from typing import Dict

import torch


def randomize(module: torch.nn.Module, seed: int) -> Dict[str, torch.Tensor]:
    """A state dict of seeded random values with sensible scales for every tensor."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for name, t in module.state_dict().items():
        if not t.is_floating_point():
            out[name] = t.clone()
            continue
        shape = tuple(t.shape)
        leaf = name.rsplit(".", 1)[-1]
        if leaf == "bias" or name.endswith("beta"):
            v = torch.randn(shape, generator=g) * 0.02
        elif len(shape) >= 2 and leaf in ("weight",):
            fan_in = math.prod(shape[1:])
            v = torch.randn(shape, generator=g) / math.sqrt(fan_in)
        elif len(shape) == 1 or leaf in ("gamma",) or "norm" in name:
            v = 1.0 + 0.05 * torch.randn(shape, generator=g)
        else:  # modulation tables, embeddings, positions
            v = torch.randn(shape, generator=g) * 0.1
        out[name] = v.contiguous()
    return out


def scaled_fp8(entries) -> Dict[str, torch.Tensor]:
    """A ComfyUI "scaled fp8" state dict from (name, tensor, fp8?) entries: the fp8 ones as
    float8_e4m3fn with their ``scale_weight``, the rest in fp16, and the ``scaled_fp8`` marker."""
    from ...models.loading.materialize import quantize_fp8

    out = {}
    for name, v, fp8 in entries:
        if fp8:
            q, scale = quantize_fp8(v, torch.float8_e4m3fn)
            out[name] = q
            out[name[: -len(".weight")] + ".scale_weight"] = scale.reshape(1)
        else:
            out[name] = v.to(torch.float16)
    out["scaled_fp8"] = torch.zeros(0, dtype=torch.float8_e4m3fn)
    return out


def save(path: str, tensors: Dict[str, torch.Tensor], metadata=None) -> None:
    from safetensors.torch import save_file

    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".part"
    save_file({k: v.contiguous() for k, v in tensors.items()}, tmp, metadata=metadata or {"format": "pt"})
    os.replace(tmp, path)
