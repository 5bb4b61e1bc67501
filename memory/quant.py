"""Weight-only int8 and nf4 Linear layers, in plain PyTorch (CPU and every GPU).

* int8: one scale per output channel, ``absmax / 127`` (the layout bitsandbytes calls
  row-wise / vector-wise).  The forward pass multiplies by the int8 weights cast to the
  compute dtype and applies the per-channel scale to the output, which is exact algebra
  (``x (diag(s) Q)^T = (x Q^T) diag(s)``) and skips a pass over the weights.  bitsandbytes'
  own int8 matmul (LLM.int8) also quantizes the activations, which is not weight-only, so
  it is not used.
* nf4: blocks of 64 consecutive weights, one float32 absmax per block, 4-bit indices into
  the NF4 code book (QLoRA), two per byte with the first in the high nibble: exactly the
  layout of bitsandbytes' ``quantize_4bit(..., quant_type="nf4")``.  On CUDA, when
  bitsandbytes is importable and has a kernel for the device, its ``dequantize_4bit`` kernel
  unpacks the weights; elsewhere the same is done in PyTorch.

:func:`quantize_blocks` replaces the Linear layers inside the DiT blocks (attention and
feed-forward: about 95 % of the weights); embeddings, norms, modulation and the head keep
their storage.  Layers stored in fp8 (scaled or not) are dequantized first.
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..models.common import ops
from ..host import trim_host_memory
from .streamable import blocks_of

MODES = ("int8", "nf4")
NF4_BLOCKSIZE = 64

# The NF4 code book (normal-float 4 bit, Dettmers et al. 2023), ascending.
NF4_CODE = (
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
    -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
    0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
    0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
)

_code_cache: Dict[tuple, torch.Tensor] = {}


def _code(device: torch.device, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    key = (str(device), dtype)
    if key not in _code_cache:
        _code_cache[key] = torch.tensor(NF4_CODE, dtype=torch.float32).to(device=device, dtype=dtype)
    return _code_cache[key]


# --------------------------------------------------------------------------- int8


CHUNK = 1 << 22  # elements converted at a time: bounds the float32 temporaries to ~16 MB


def _row_chunks(rows: int, cols: int):
    step = max(1, CHUNK // max(cols, 1))
    for start in range(0, rows, step):
        yield start, min(rows, start + step)


def int8_quantize(w: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """[out, in] weights -> (int8 [out, in], float32 absmax per output channel [out])."""
    rows, cols = w.shape
    q = torch.empty((rows, cols), dtype=torch.int8, device=w.device)
    absmax = torch.empty(rows, dtype=torch.float32, device=w.device)
    for a, b in _row_chunks(rows, cols):
        part = w[a:b].float()
        absmax[a:b] = part.abs().amax(dim=1)
        scaled = part * (127.0 / absmax[a:b].clamp(min=1e-12)).unsqueeze(1)
        q[a:b] = scaled.round_().clamp_(-127, 127)
    return q, absmax


def int8_dequantize(q: torch.Tensor, absmax: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return (q.float() * (absmax.float() / 127.0).unsqueeze(1)).to(dtype)


# --------------------------------------------------------------------------- nf4


def nf4_quantize(w: torch.Tensor, blocksize: int = NF4_BLOCKSIZE) -> Tuple[torch.Tensor, torch.Tensor]:
    """Any-shape weights -> (packed uint8 [ceil(n/2)], float32 absmax [ceil(n/blocksize)])."""
    flat = w.detach().reshape(-1)
    n = flat.numel()
    nblocks = -(-n // blocksize)
    absmax = torch.empty(nblocks, dtype=torch.float32, device=flat.device)
    packed = torch.empty((n + 1) // 2, dtype=torch.uint8, device=flat.device)
    code = _code(flat.device)
    bounds = (code[1:] + code[:-1]) / 2  # nearest code = bucket between midpoints
    per_chunk = max(1, CHUNK // blocksize) * blocksize  # whole blocks, an even count
    for start in range(0, n, per_chunk):
        part = flat[start:start + per_chunk].to(torch.float32, copy=True)  # divided in place below
        m = part.numel()
        full = -(-m // blocksize) * blocksize
        if full != m:
            part = F.pad(part, (0, full - m))
        blocks = part.view(-1, blocksize)
        amax = blocks.abs().amax(dim=1)
        absmax[start // blocksize:start // blocksize + amax.numel()] = amax
        scaled = blocks.div_(amax.clamp(min=1e-12).unsqueeze(1)).clamp_(-1, 1).reshape(-1)
        idx = torch.bucketize(scaled, bounds, out_int32=True)[: m + (m % 2)].to(torch.uint8)
        packed[start // 2:start // 2 + idx.numel() // 2] = (idx[0::2] << 4) | idx[1::2]
    return packed, absmax


def nf4_dequantize(packed: torch.Tensor, absmax: torch.Tensor, shape, dtype: torch.dtype = torch.float32,
                   blocksize: int = NF4_BLOCKSIZE) -> torch.Tensor:
    """Inverse of :func:`nf4_quantize` in PyTorch."""
    shape = tuple(shape)
    n = 1
    for s in shape:
        n *= s
    # One lookup per byte: a 256 x 2 table of the (high, low) code values.
    values = _byte_table(packed.device).index_select(0, packed.reshape(-1).int()).reshape(-1)
    padded = -(-n // blocksize) * blocksize
    if values.numel() < padded:
        values = F.pad(values, (0, padded - values.numel()))
    values = values[:padded].view(-1, blocksize).mul_(absmax.float().unsqueeze(1))
    return values.reshape(-1)[:n].view(shape).to(dtype)


def _byte_table(device: torch.device) -> torch.Tensor:
    key = (str(device), "bytes")
    if key not in _code_cache:
        code = torch.tensor(NF4_CODE, dtype=torch.float32)
        byte = torch.arange(256)
        _code_cache[key] = torch.stack([code[byte >> 4], code[byte & 0xF]], dim=1).to(device)
    return _code_cache[key]


# --------------------------------------------------------------------------- bitsandbytes

_bnb_state: Dict[str, bool] = {}


def bnb_supports(device: torch.device) -> bool:
    """True when bitsandbytes is importable and has its nf4 kernel for ``device`` (CUDA only)."""
    device = torch.device(device)
    if device.type != "cuda":
        return False
    if "ok" not in _bnb_state:
        ok = False
        try:
            import bitsandbytes  # type: ignore  # noqa: F401

            ok = hasattr(torch.ops, "bitsandbytes") and hasattr(torch.ops.bitsandbytes, "dequantize_4bit")
        except Exception:
            ok = False
        _bnb_state["ok"] = ok
    return _bnb_state["ok"]


def _bnb_dequantize_nf4(packed, absmax, shape, dtype, blocksize):
    return torch.ops.bitsandbytes.dequantize_4bit.default(packed, absmax, blocksize, "nf4", list(shape), dtype)


# --------------------------------------------------------------------------- layers


class QuantLinear(ops.LoRATarget, nn.Module):
    """Base of the quantized Linear layers: ``in_features``, ``out_features``, float bias."""

    mode = ""

    def __init__(self, in_features: int, out_features: int, bias: Optional[torch.Tensor]):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.bias = nn.Parameter(bias.detach(), requires_grad=False) if bias is not None else None

    def extra_repr(self) -> str:
        return "in_features=%d, out_features=%d, %s" % (self.in_features, self.out_features, self.mode)

    def _bias(self, x: torch.Tensor) -> Optional[torch.Tensor]:
        return ops.cast_to(self.bias, x) if self.bias is not None else None


class Int8Linear(QuantLinear):
    """Linear with int8 weights and one float32 scale per output channel."""

    mode = "int8"

    def __init__(self, in_features: int, out_features: int, weight: torch.Tensor, absmax: torch.Tensor,
                 bias: Optional[torch.Tensor] = None):
        super().__init__(in_features, out_features, bias)
        self.register_buffer("weight", weight)
        self.register_buffer("weight_absmax", absmax)

    @classmethod
    def from_float(cls, weight: torch.Tensor, bias: Optional[torch.Tensor]) -> "Int8Linear":
        q, absmax = int8_quantize(weight)
        return cls(weight.shape[1], weight.shape[0], q, absmax, bias)

    def dequantized(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return int8_dequantize(self.weight, self.weight_absmax, dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = self.weight.to(x.device, non_blocking=True).to(x.dtype)
        scale = (self.weight_absmax.to(x.device, non_blocking=True).float() / 127.0).to(x.dtype)
        out = F.linear(x, q) * scale
        b = self._bias(x)
        return self.lora_out(x, out + b if b is not None else out)


class NF4Linear(QuantLinear):
    """Linear with NF4 weights in blocks of 64 (bitsandbytes layout)."""

    mode = "nf4"

    def __init__(self, in_features: int, out_features: int, packed: torch.Tensor, absmax: torch.Tensor,
                 bias: Optional[torch.Tensor] = None, blocksize: int = NF4_BLOCKSIZE):
        super().__init__(in_features, out_features, bias)
        self.blocksize = blocksize
        self.register_buffer("weight", packed)
        self.register_buffer("weight_absmax", absmax)

    @classmethod
    def from_float(cls, weight: torch.Tensor, bias: Optional[torch.Tensor]) -> "NF4Linear":
        packed, absmax = nf4_quantize(weight)
        return cls(weight.shape[1], weight.shape[0], packed, absmax, bias)

    def dequantized(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        shape = (self.out_features, self.in_features)
        packed = self.weight
        absmax = self.weight_absmax
        if bnb_supports(packed.device) and dtype in (torch.float16, torch.bfloat16, torch.float32):
            return _bnb_dequantize_nf4(packed, absmax, shape, dtype, self.blocksize)
        return nf4_dequantize(packed, absmax, shape, dtype, self.blocksize)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.weight.device != x.device:  # streamed or offloaded: move the small packed form
            packed = self.weight.to(x.device, non_blocking=True)
            absmax = self.weight_absmax.to(x.device, non_blocking=True)
            shape = (self.out_features, self.in_features)
            if bnb_supports(x.device):
                w = _bnb_dequantize_nf4(packed, absmax, shape, x.dtype, self.blocksize)
            else:
                w = nf4_dequantize(packed, absmax, shape, x.dtype, self.blocksize)
        else:
            w = self.dequantized(x.dtype)
        return self.lora_out(x, F.linear(x, w, self._bias(x)))


_LAYERS = {"int8": Int8Linear, "nf4": NF4Linear}


def quantize_linear(layer: nn.Linear, mode: str) -> QuantLinear:
    """A quantized copy of a Linear (an ``ops.Linear`` in any storage, fp8 scaled included)."""
    if mode not in _LAYERS:
        raise ValueError("unknown quantization %r; choose one of %s" % (mode, ", ".join(MODES)))
    if isinstance(layer, ops.CastWeights):
        probe = torch.empty(0, dtype=torch.float32, device=layer.weight.device)
        weight, bias = layer.cast_params(probe)
    else:
        weight, bias = layer.weight.float(), layer.bias
    out = _LAYERS[mode].from_float(weight, bias)
    if layer.bias is not None:
        out.bias = nn.Parameter(layer.bias.detach().clone(), requires_grad=False)
    return out


def quantize_blocks(model: nn.Module, mode: str) -> None:
    """Replace, in place, every Linear inside the blocks of ``model`` (:func:`memory.streamable.blocks_of`)
    by an int8 or nf4 layer."""
    if mode not in _LAYERS:
        raise ValueError("unknown quantization %r; choose one of %s" % (mode, ", ".join(MODES)))
    blocks = blocks_of(model)
    if blocks is None:
        raise ValueError("quantize_blocks needs a transformer with blocks; got %s" % type(model).__name__)
    for block in blocks:
        for sub in block.modules():
            if isinstance(sub, QuantLinear) and sub.mode != mode:
                raise ValueError("the blocks are already quantized to %s; load the model again to use %s"
                                 % (sub.mode, mode))
        for name, layer in list(ops.quantizable_linears(block)):
            parent_name, _, child = name.rpartition(".")
            parent = block.get_submodule(parent_name) if parent_name else block
            with torch.no_grad():
                setattr(parent, child, quantize_linear(layer, mode))
            del layer
            trim_host_memory()  # give the freed full-precision weights back to the system
