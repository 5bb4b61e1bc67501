"""Writing GGUF files the way city96's converter lays them out (demo models, tests, tools).

* :func:`quantize` turns float weights into the bytes of a GGML type.  The legacy types
  (Q4_0 ... Q8_0), F16 and BF16 use the ``gguf`` package's own quantizers; the K-quants
  (Q2_K ... Q6_K), which that package can read but not write, are encoded here: min/max
  (or signed absmax) per sub-block, the sub-block scales quantized against one float16
  super-scale, then the weights rounded against the quantized scales.  That is simpler than
  llama.cpp's search for the best scales, so the error is a little larger; the layout (what a
  reader sees) is exactly llama.cpp's.
* :func:`write_gguf` writes a state dict as ``general.architecture`` = arch, with the
  converter's rules for which tensors stay in full precision (1-D and tiny tensors: F32;
  tensors of more than 4 dimensions: F32, as its 5-D fix does) and a per-tensor type choice.

Only the ``gguf`` package (``pip install gguf``) is needed, and only here and when reading.
"""
from __future__ import annotations

from typing import Callable, Dict, Optional, Union

import numpy as np
import torch

from ...memory.gguf_quant import PLAIN, QK_K, TYPE_IDS, row_bytes, type_name

QUANTIZATION_THRESHOLD = 1024  # tensors with at most this many weights stay F32 (converter rule)


def _gguf():
    try:
        import gguf  # type: ignore
    except ImportError as e:  # pragma: no cover - depends on the install
        raise ImportError("GGUF files need the 'gguf' package: pip install gguf") from e
    return gguf


def _f16_bytes(v: torch.Tensor) -> torch.Tensor:
    """[n] float -> [n, 2] bytes of float16."""
    return v.reshape(-1, 1).to(torch.float16).contiguous().view(torch.uint8)


def _pair_nibbles(lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    return (lo.to(torch.uint8) & 0x0F) | ((hi.to(torch.uint8) & 0x0F) << 4)


def _pack_fields(fields: torch.Tensor, width: int) -> torch.Tensor:
    """[n, count, k] small integers -> [n, k] bytes, field j at bit ``width * j``."""
    out = torch.zeros(fields.shape[0], fields.shape[2], dtype=torch.uint8)
    for j in range(fields.shape[1]):
        out |= (fields[:, j].to(torch.uint8) << (width * j))
    return out


def _quantized_scale(values: torch.Tensor, levels: int):
    """Per-block super-scale (float16) and integer sub-scales in [0, levels] for non-negative
    ``values`` [n, k] -> (super [n, 1] float32 as stored, sub [n, k] float32 integers)."""
    top = values.amax(dim=1, keepdim=True) / levels
    top = top.to(torch.float16).float()
    sub = torch.where(top > 0, values / top.clamp(min=1e-30), torch.zeros_like(values)).round().clamp(0, levels)
    return top, sub


def _signed_scale(x: torch.Tensor, qmax: int) -> torch.Tensor:
    """Per-row scale that maps the largest-magnitude value to ``-qmax`` (uses the whole signed
    range [-qmax, qmax - 1]).  x [..., k] -> [..., 1]."""
    idx = x.abs().argmax(dim=-1, keepdim=True)
    return -torch.gather(x, -1, idx) / qmax


def _round_to(x: torch.Tensor, step: torch.Tensor, lo: int, hi: int, offset: Optional[torch.Tensor] = None):
    y = x if offset is None else x + offset
    q = torch.where(step != 0, y / torch.where(step != 0, step, torch.ones_like(step)), torch.zeros_like(y))
    return q.round().clamp(lo, hi)


def _asym_k(x: torch.Tensor, sub: int, levels: int, scale_levels: int):
    """Shared part of Q2_K / Q4_K / Q5_K: x [n, 256] -> (d, dmin, scale ints, min ints, q)."""
    n = x.shape[0]
    g = x.view(n, QK_K // sub, sub)
    low = g.amin(dim=-1).clamp(max=0)
    span = (g.amax(dim=-1) - low) / levels
    d, sc = _quantized_scale(span, scale_levels)
    dmin, mn = _quantized_scale(-low, scale_levels)
    step = (d * sc).unsqueeze(-1)
    q = _round_to(g, step, 0, levels, offset=(dmin * mn).unsqueeze(-1))
    return d, dmin, sc, mn, q.reshape(n, QK_K)


def _q2_k(x):
    d, dmin, sc, mn, q = _asym_k(x, 16, 3, 15)
    qs = _pack_fields(q.view(-1, 2, 4, 32).reshape(-1, 4, 32), 2).reshape(-1, 64)   # 128 h + 32 j + l
    scales = (sc.to(torch.uint8) & 0x0F) | (mn.to(torch.uint8) << 4)
    return torch.cat([scales, qs, _f16_bytes(d), _f16_bytes(dmin)], dim=1)


def _q3_k(x):
    n = x.shape[0]
    g = x.view(n, 16, 16)
    want = _signed_scale(g, 4).squeeze(-1)                       # [n, 16], signed
    top = (want.abs().amax(dim=1, keepdim=True) / 31).to(torch.float16).float()
    sc = torch.where(top > 0, want / top.clamp(min=1e-30), torch.zeros_like(want)).round().clamp(-32, 31)
    q = _round_to(g, (top * sc).unsqueeze(-1), -4, 3).reshape(n, QK_K)
    high = (q >= 0).to(torch.uint8)                              # q = low - 4 (1 - high)
    low = (q + 4 * (1 - high.float())).to(torch.uint8)
    hmask = _pack_fields(high.view(n, 8, 32), 1)                 # weight 32 i + l -> bit i of byte l
    qs = _pack_fields(low.view(-1, 2, 4, 32).reshape(-1, 4, 32), 2).reshape(n, 64)
    u = (sc + 32).to(torch.uint8)                                # [n, 16] six-bit
    lo4 = _pair_nibbles(u[:, 0:8], u[:, 8:16])
    hi2 = _pack_fields((u >> 4).view(n, 4, 4), 2)                # scale 4 s + b -> bits 2 s of byte b
    return torch.cat([hmask, qs, lo4, hi2, _f16_bytes(top)], dim=1)


def _k_scale_bytes(sc: torch.Tensor, mn: torch.Tensor) -> torch.Tensor:
    """8 six-bit scales and mins -> the 12 packed bytes of Q4_K / Q5_K."""
    sc, mn = sc.to(torch.uint8), mn.to(torch.uint8)
    first = (sc[:, 0:4] & 0x3F) | ((sc[:, 4:8] >> 4) << 6)
    second = (mn[:, 0:4] & 0x3F) | ((mn[:, 4:8] >> 4) << 6)
    third = (sc[:, 4:8] & 0x0F) | ((mn[:, 4:8] & 0x0F) << 4)
    return torch.cat([first, second, third], dim=1)


def _k_nibbles(q: torch.Tensor) -> torch.Tensor:
    """[n, 256] 4-bit values in sub-blocks of 32 -> 128 bytes: sub-block 2g low, 2g + 1 high."""
    g = q.view(-1, 4, 2, 32)
    return _pair_nibbles(g[:, :, 0], g[:, :, 1]).reshape(-1, 128)


def _q4_k(x):
    d, dmin, sc, mn, q = _asym_k(x, 32, 15, 63)
    return torch.cat([_f16_bytes(d), _f16_bytes(dmin), _k_scale_bytes(sc, mn), _k_nibbles(q)], dim=1)


def _q5_k(x):
    d, dmin, sc, mn, q = _asym_k(x, 32, 31, 63)
    q = q.to(torch.uint8)
    qh = _pack_fields((q >> 4).view(-1, 8, 32), 1)
    return torch.cat([_f16_bytes(d), _f16_bytes(dmin), _k_scale_bytes(sc, mn), qh, _k_nibbles(q & 0x0F)], dim=1)


def _q6_k(x):
    n = x.shape[0]
    g = x.view(n, 16, 16)
    want = _signed_scale(g, 32).squeeze(-1)
    top = (want.abs().amax(dim=1, keepdim=True) / 127).to(torch.float16).float()
    sc = torch.where(top > 0, want / top.clamp(min=1e-30), torch.zeros_like(want)).round().clamp(-128, 127)
    q = _round_to(g, (top * sc).unsqueeze(-1), -32, 31).reshape(n, QK_K)
    u = (q + 32).to(torch.uint8)
    halves = u.view(n, 2, 2, 64)                                 # [n, h, k, p]: weight 128 h + 64 k + p
    ql = _pair_nibbles(halves[:, :, 0], halves[:, :, 1]).reshape(n, 128)
    qh = _pack_fields((u >> 4).view(n * 2, 4, 32), 2).reshape(n, 64)   # 128 h + 32 s + l
    return torch.cat([ql, qh, sc.to(torch.int8).view(torch.uint8), _f16_bytes(top)], dim=1)


K_ENCODERS: Dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "Q2_K": _q2_k, "Q3_K": _q3_k, "Q4_K": _q4_k, "Q5_K": _q5_k, "Q6_K": _q6_k,
}


def quantize(w: torch.Tensor, qtype) -> np.ndarray:
    """Float weights -> the GGUF bytes of ``qtype`` as a numpy uint8 array [rows..., bytes per
    row] (F32 / F16: the plain numpy array)."""
    name = type_name(qtype)
    x = w.detach().float().cpu()
    if name in K_ENCODERS:
        per_row = row_bytes(name, x.shape[-1])
        rows = x.reshape(-1, x.shape[-1])
        blocks = K_ENCODERS[name](rows.reshape(-1, QK_K).contiguous())
        return blocks.reshape(*x.shape[:-1], per_row).numpy()
    gguf = _gguf()
    return gguf.quants.quantize(x.numpy(), gguf.GGMLQuantizationType(TYPE_IDS[name]))


def fits(shape, qtype) -> bool:
    """Whether a tensor of ``shape`` can be stored as ``qtype`` (rows a whole number of blocks)."""
    from ...memory.gguf_quant import block_geometry

    return len(shape) >= 1 and shape[-1] % block_geometry(qtype)[0] == 0


TypeChoice = Union[str, Callable[[str, torch.Tensor], str]]


def converter_type(key: str, t: torch.Tensor, wanted: str, keep_full=()) -> str:
    """The type city96's converter would give ``key``: F32 for 1-D, tiny and listed tensors,
    F16 where the rows do not fit the wanted type's blocks, else ``wanted``."""
    if t.dim() <= 1 or t.numel() <= QUANTIZATION_THRESHOLD or t.dim() > 4 or any(s in key for s in keep_full):
        return "F32"
    if wanted in PLAIN or fits(t.shape, wanted):
        return wanted
    return "F16"


def write_gguf(path: str, tensors: Dict[str, torch.Tensor], arch: str, types: TypeChoice = "F16",
               keep_full=(), metadata: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """Write ``tensors`` to a GGUF file with ``general.architecture`` = ``arch``.

    ``types`` is one type name for every tensor, or a function ``(key, tensor) -> type name``;
    either way the converter's rules (:func:`converter_type`) apply on top.  Returns the type
    each tensor got."""
    import os

    gguf = _gguf()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".part"
    writer = gguf.GGUFWriter(tmp, arch=arch)
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    for k, v in (metadata or {}).items():
        writer.add_string(k, v)
    chosen = {}
    for key, t in tensors.items():
        wanted = types(key, t) if callable(types) else types
        name = converter_type(key, t, type_name(wanted), keep_full)
        data = quantize(t, name)
        writer.add_tensor(key, data, raw_dtype=gguf.GGMLQuantizationType(TYPE_IDS[name]))
        chosen[key] = name
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    os.replace(tmp, path)
    return chosen
