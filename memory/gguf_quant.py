"""GGUF quantized weights (llama.cpp / city96 block formats) dequantized in PyTorch, per layer.

A GGUF file stores each quantized tensor as rows of fixed-size blocks of bytes.  This module
turns those bytes back into floats with plain tensor operations (any device, no extra build)
and provides :class:`GGUFLinear`, a Linear layer that keeps the bytes and dequantizes its
weight just before the matrix product, like the int8 / nf4 layers of :mod:`memory.quant`.
The bytes are an ordinary ``uint8`` buffer, so the layer streams with its block under a VRAM
budget (:mod:`memory.block_streamer`) and moves with ``.to()``.

Block layouts (``QK_K`` = 256 weights per super-block for the K-quants):

====== ===== ===== ==========================================================================
type   block bytes layout (per block)
====== ===== ===== ==========================================================================
Q4_0   32    18    f16 d; 16 bytes of nibbles (low nibbles: weights 0-15, high: 16-31); d (q - 8)
Q4_1   32    20    f16 d, f16 m; nibbles as Q4_0; d q + m
Q5_0   32    22    f16 d; u32 of 5th bits (bit i: weight i); nibbles; d (q - 16)
Q5_1   32    24    f16 d, f16 m; u32 5th bits; nibbles; d q + m
Q8_0   32    34    f16 d; 32 int8; d q
Q2_K   256   84    16 bytes (4-bit scale | 4-bit min << 4) per 16 weights; 64 bytes of 2-bit q;
                   f16 d, f16 dmin; d sc q - dmin m
Q3_K   256   110   32 bytes high-bit mask; 64 bytes of 2-bit q; 12 bytes of 6-bit scales;
                   f16 d; d (sc - 32) (q - 4 (1 - hbit))
Q4_K   256   144   f16 d, f16 dmin; 12 bytes of 6-bit scales and mins for 8 x 32 weights;
                   128 bytes of nibbles; d sc q - dmin m
Q5_K   256   176   as Q4_K plus 32 bytes of 5th bits
Q6_K   256   210   128 bytes low nibbles, 64 bytes of 2 high bits, 16 int8 scales, f16 d;
                   d sc (q - 32)
F16, BF16, F32     plain
====== ===== ===== ==========================================================================
"""
from __future__ import annotations

from typing import Callable, Dict, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from .quant import QuantLinear

QK_K = 256

# GGML type id -> (name, weights per block, bytes per block).  The ids are the file format's.
GGML_TYPES: Dict[int, Tuple[str, int, int]] = {
    0: ("F32", 1, 4), 1: ("F16", 1, 2), 2: ("Q4_0", 32, 18), 3: ("Q4_1", 32, 20),
    6: ("Q5_0", 32, 22), 7: ("Q5_1", 32, 24), 8: ("Q8_0", 32, 34),
    10: ("Q2_K", QK_K, 84), 11: ("Q3_K", QK_K, 110), 12: ("Q4_K", QK_K, 144),
    13: ("Q5_K", QK_K, 176), 14: ("Q6_K", QK_K, 210), 30: ("BF16", 1, 2),
}
TYPE_IDS = {name: tid for tid, (name, _, _) in GGML_TYPES.items()}
PLAIN = ("F32", "F16", "BF16")
QUANTIZED = tuple(name for name, _, _ in GGML_TYPES.values() if name not in PLAIN)


def type_name(qtype) -> str:
    """A GGML type (id, enum or name) as its name; raises for types this module cannot read."""
    if isinstance(qtype, str):
        name = qtype.upper()
    else:
        tid = int(getattr(qtype, "value", qtype))
        if tid not in GGML_TYPES:
            raise ValueError("GGUF tensor type %s is not supported (supported: %s)"
                             % (getattr(qtype, "name", tid), ", ".join(TYPE_IDS)))
        name = GGML_TYPES[tid][0]
    if name not in TYPE_IDS:
        raise ValueError("GGUF tensor type %s is not supported (supported: %s)" % (name, ", ".join(TYPE_IDS)))
    return name


def block_geometry(qtype) -> Tuple[int, int]:
    """(weights per block, bytes per block)."""
    _, size, nbytes = GGML_TYPES[TYPE_IDS[type_name(qtype)]]
    return size, nbytes


def row_bytes(qtype, row_len: int) -> int:
    size, nbytes = block_geometry(qtype)
    if row_len % size:
        raise ValueError("a %s row must hold a multiple of %d weights, got %d" % (type_name(qtype), size, row_len))
    return row_len // size * nbytes


# --------------------------------------------------------------------------- bit helpers


def _half(b: torch.Tensor, at: int) -> torch.Tensor:
    """Bytes ``at:at+2`` of each block as a float16 number, returned as float32 [n, 1]."""
    return b[:, at:at + 2].contiguous().view(torch.float16).float()


def _nibbles(b: torch.Tensor) -> torch.Tensor:
    """[n, k] bytes -> [n, 2, k]: low nibbles, then high nibbles."""
    return torch.stack([b & 0x0F, b >> 4], dim=1)


def _bits(b: torch.Tensor, count: int, width: int) -> torch.Tensor:
    """[n, k] bytes -> [n, count, k]: field j is ``(b >> (width * j)) & mask``."""
    shifts = torch.arange(0, count * width, width, device=b.device, dtype=torch.uint8).view(1, count, 1)
    return (b.unsqueeze(1) >> shifts) & ((1 << width) - 1)


def _k_scales(s: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """The 12 packed bytes of Q4_K / Q5_K -> 8 six-bit scales and 8 six-bit mins, [n, 8] each."""
    d, m, md = s[:, 0:4], s[:, 4:8], s[:, 8:12]
    scale = torch.cat([d & 0x3F, (md & 0x0F) | ((d >> 2) & 0x30)], dim=1)
    mins = torch.cat([m & 0x3F, (md >> 4) | ((m >> 2) & 0x30)], dim=1)
    return scale.float(), mins.float()


# --------------------------------------------------------------------------- per-type decoders
# Each takes the blocks as uint8 [n, bytes per block] and returns float32 [n, weights per block].


def _q4_0(b):
    return _half(b, 0) * (_nibbles(b[:, 2:18]).reshape(-1, 32).float() - 8)


def _q4_1(b):
    return _half(b, 0) * _nibbles(b[:, 4:20]).reshape(-1, 32).float() + _half(b, 2)


def _fifth_bits(b: torch.Tensor) -> torch.Tensor:
    """4 bytes of a Q5_0 / Q5_1 block -> [n, 32] bits, weight i <- bit i (little endian)."""
    return _bits(b, 8, 1).transpose(1, 2).reshape(-1, 32)


def _q5_0(b):
    q = _nibbles(b[:, 6:22]).reshape(-1, 32) | (_fifth_bits(b[:, 2:6]) << 4)
    return _half(b, 0) * (q.float() - 16)


def _q5_1(b):
    q = _nibbles(b[:, 8:24]).reshape(-1, 32) | (_fifth_bits(b[:, 4:8]) << 4)
    return _half(b, 0) * q.float() + _half(b, 2)


def _q8_0(b):
    return _half(b, 0) * b[:, 2:34].contiguous().view(torch.int8).float()


def _two_bit_quants(qs: torch.Tensor) -> torch.Tensor:
    """64 bytes of 2-bit values (Q2_K, Q3_K) -> [n, 256]: weight 128 h + 32 j + l is bits 2j
    of byte 32 h + l."""
    return _bits(qs.reshape(-1, 32), 4, 2).reshape(-1, 256)


def _q2_k(b):
    sc = b[:, 0:16]
    q = _two_bit_quants(b[:, 16:80]).view(-1, 16, 16).float()
    d, dmin = _half(b, 80).unsqueeze(-1), _half(b, 82).unsqueeze(-1)
    return (d * (sc & 0x0F).float().unsqueeze(-1) * q - dmin * (sc >> 4).float().unsqueeze(-1)).reshape(-1, 256)


def _q3_k(b):
    high = _bits(b[:, 0:32], 8, 1).reshape(-1, 256)          # weight 32 i + l <- bit i of byte l
    low = _two_bit_quants(b[:, 32:96])
    q = low.float() - 4 * (1 - high.float())
    s = b[:, 96:108]
    lo4 = _bits(s[:, 0:8], 2, 4).reshape(-1, 16)               # scale j: nibble j // 8 of byte j % 8
    hi2 = _bits(s[:, 8:12], 4, 2).reshape(-1, 16)              # scale j: bits 2 (j // 4) of byte 8 + j % 4
    scale = (lo4 | (hi2 << 4)).float() - 32
    d = _half(b, 108)
    return (d.unsqueeze(-1) * scale.unsqueeze(-1) * q.view(-1, 16, 16)).reshape(-1, 256)


def _q4_k(b):
    scale, mins = _k_scales(b[:, 4:16])
    q = _nibbles(b[:, 16:144].reshape(-1, 4, 32)).transpose(1, 2).reshape(-1, 8, 32).float()
    d, dmin = _half(b, 0), _half(b, 2)
    return ((d * scale).unsqueeze(-1) * q - (dmin * mins).unsqueeze(-1)).reshape(-1, 256)


def _q5_k(b):
    scale, mins = _k_scales(b[:, 4:16])
    high = _bits(b[:, 16:48], 8, 1)                            # [n, 8, 32]: sub-block i <- bit i
    low = _nibbles(b[:, 48:176].reshape(-1, 4, 32)).transpose(1, 2).reshape(-1, 8, 32)
    q = (low | (high << 4)).float()
    d, dmin = _half(b, 0), _half(b, 2)
    return ((d * scale).unsqueeze(-1) * q - (dmin * mins).unsqueeze(-1)).reshape(-1, 256)


def _q6_k(b):
    low = _nibbles(b[:, 0:128].reshape(-1, 2, 64)).transpose(1, 2).reshape(-1, 256)   # 128 h + 64 k + p
    high = _bits(b[:, 128:192].reshape(-1, 32), 4, 2).reshape(-1, 256)                # 128 h + 32 s + l
    q = (low | (high << 4)).float() - 32
    scale = b[:, 192:208].contiguous().view(torch.int8).float()
    d = _half(b, 208)
    return ((d * scale).unsqueeze(-1) * q.view(-1, 16, 16)).reshape(-1, 256)


def _bf16(b):
    return (b.contiguous().view(torch.int16).to(torch.int32) << 16).view(torch.float32)


def _f16(b):
    return b.contiguous().view(torch.float16).float()


def _f32(b):
    return b.contiguous().view(torch.float32)


DECODERS: Dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "Q4_0": _q4_0, "Q4_1": _q4_1, "Q5_0": _q5_0, "Q5_1": _q5_1, "Q8_0": _q8_0,
    "Q2_K": _q2_k, "Q3_K": _q3_k, "Q4_K": _q4_k, "Q5_K": _q5_k, "Q6_K": _q6_k,
    "BF16": _bf16, "F16": _f16, "F32": _f32,
}

CHUNK_BLOCKS = 1 << 14  # blocks decoded at a time: bounds the temporaries (~16 MB for K-quants)


def dequantize(raw: torch.Tensor, qtype, shape: Sequence[int], dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The bytes of one GGUF tensor (uint8, any shape with ``prod(shape)`` weights' worth of
    bytes) -> a ``dtype`` tensor of ``shape``, on ``raw``'s device."""
    name = type_name(qtype)
    size, nbytes = block_geometry(name)
    shape = tuple(int(s) for s in shape)
    n = 1
    for s in shape:
        n *= s
    if raw.dtype != torch.uint8:
        raise TypeError("GGUF bytes must be uint8, got %s" % raw.dtype)
    blocks = raw.reshape(-1, nbytes)
    if blocks.shape[0] * size != n:
        raise ValueError("%d bytes of %s do not hold %d weights" % (raw.numel(), name, n))
    decode = DECODERS[name]
    if blocks.shape[0] <= CHUNK_BLOCKS:
        return decode(blocks).reshape(shape).to(dtype)
    out = torch.empty((blocks.shape[0], size), dtype=dtype, device=raw.device)
    for a in range(0, blocks.shape[0], CHUNK_BLOCKS):
        out[a:a + CHUNK_BLOCKS] = decode(blocks[a:a + CHUNK_BLOCKS])
    return out.reshape(shape)


# --------------------------------------------------------------------------- the layer


class GGUFLinear(QuantLinear):
    """Linear whose weight stays in its GGUF bytes ([out, bytes per row] uint8) and is
    dequantized in the compute dtype just before each product."""

    mode = "gguf"

    def __init__(self, in_features: int, out_features: int, raw: torch.Tensor, qtype,
                 bias: Optional[torch.Tensor] = None):
        super().__init__(in_features, out_features, bias)
        self.qtype = type_name(qtype)
        expected = row_bytes(self.qtype, in_features)
        if raw.numel() != expected * out_features:
            raise ValueError("%s bytes for a %d x %d weight: expected %d, got %d"
                             % (self.qtype, out_features, in_features, expected * out_features, raw.numel()))
        self.register_buffer("weight", raw.reshape(out_features, expected))

    def extra_repr(self) -> str:
        return "in_features=%d, out_features=%d, gguf %s" % (self.in_features, self.out_features, self.qtype)

    def dequantized(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return dequantize(self.weight, self.qtype, (self.out_features, self.in_features), dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raw = self.weight.to(x.device, non_blocking=True)
        w = dequantize(raw, self.qtype, (self.out_features, self.in_features), x.dtype)
        return self.lora_out(x, F.linear(x, w, self._bias(x)))


def replace_with_gguf(parent: nn.Module, child: str, layer: nn.Module, raw: torch.Tensor, qtype) -> GGUFLinear:
    """Put a :class:`GGUFLinear` holding ``raw`` in place of the Linear ``parent.child``; its bias
    parameter (loaded or not yet) is carried over."""
    new = GGUFLinear(layer.in_features, layer.out_features, raw, qtype, bias=layer._parameters.get("bias"))
    setattr(parent, child, new)
    return new
