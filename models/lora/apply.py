"""Applying LoRAs to a model without touching its weights on the host, for any model family.

Two ways, chosen per parameter:

* **merged** (weights stored in fp32 / bf16 / fp16; also every bias, norm and other float
  parameter): the compute copy of the weight becomes ``W + sum(s * scale * up @ down + s * diff)``,
  computed in float32 a slice of rows at a time and rounded once to the storage dtype.  The
  host tensor is never changed: on a GPU the merge goes into the device copy (made when the
  model is loaded, or when a streamed block is copied in), on the CPU into a new tensor beside
  the original.  So a LoRA is changed or removed without reading the base file again, and no
  full-precision copy of the model ever exists.
* **on the fly** (fp8, int8, nf4 and GGUF weights, which cannot hold a merge without losing it
  to their own rounding): the Linear layer gets a child module ``lora`` (:class:`LoRAAdapter`)
  and its output gets ``x @ down^T @ up^T`` added, all LoRAs of the layer concatenated along
  the rank so it is two thin matrix products.  The factors are buffers of the layer, so they
  move and stream with its block under a VRAM budget.

A delta may cover a slice of rows of its parameter only (a LoRA on diffusers' ``to_q`` of a
fused ``qkv`` weight, see :class:`models.lora.targets.RowSlice`): merged, it adds to those
rows; on the fly, its ``up`` factor is placed at those rows of the layer's output.

:func:`apply_loras` sets the LoRAs a model should have (the node layer calls it at the start
of each sampling job with the handle's list: a model shared by several handles is brought to
the set each one asks for).  The merges are carried out by the memory machinery through
``model.weight_patches`` (a :class:`WeightPatches`, see :mod:`memory.streamable`).
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..common import ops
from .formats import LoRAError
from .targets import Delta, ResolvedLoRA, param_shape

MODES = ("auto", "merge", "on_the_fly")
CHUNK = 1 << 22  # weights merged at a time: bounds the float32 temporaries to ~16 MB


class LoRAAdapter(nn.Module):
    """Low-rank (and full) deltas of one Linear layer, added to its output."""

    def __init__(self, down: Optional[torch.Tensor], up: Optional[torch.Tensor], diff: Optional[torch.Tensor]):
        super().__init__()
        self.register_buffer("down", down, persistent=False)   # [R, in]
        self.register_buffer("up", up, persistent=False)       # [out, R], strength and alpha / rank folded in
        self.register_buffer("diff", diff, persistent=False)   # [out, in] or None

    def extra_repr(self) -> str:
        return "rank=%d%s" % (0 if self.down is None else self.down.shape[0], ", diff" if self.diff is not None else "")

    def forward(self, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        if self.down is not None:
            h = F.linear(x, ops.cast_to(self.down, x))
            out = out + F.linear(h, ops.cast_to(self.up, x)).to(out.dtype)
        if self.diff is not None:
            out = out + F.linear(x, ops.cast_to(self.diff, x)).to(out.dtype)
        return out


# --------------------------------------------------------------------------- merging


Contribution = Tuple[Delta, float]  # (delta, strength)


def _rows2d(t: torch.Tensor) -> torch.Tensor:
    """The tensor as [rows, rest]: rows are its first dimension (a bias is a column)."""
    return t.reshape(t.shape[0], -1) if t.dim() >= 1 else t.reshape(1, 1)


def _delta_rows(contribs: Sequence[Contribution], a: int, b: int, shape2d, device) -> torch.Tensor:
    """Rows a:b of the summed delta, float32 on ``device`` (a delta on a slice of rows adds
    to the rows it shares with a:b)."""
    acc = torch.zeros((b - a, shape2d[1]), dtype=torch.float32, device=device)
    for d, strength in contribs:
        r0, r1 = d.rows if d.rows is not None else (0, shape2d[0])
        lo, hi = max(a, r0), min(b, r1)
        if lo >= hi:
            continue
        dst = acc[lo - a:hi - a]
        if d.down is not None:
            up = d.up.reshape(d.up.shape[0], -1)[lo - r0:hi - r0].to(device, torch.float32)
            down = d.down.reshape(d.down.shape[0], -1).to(device, torch.float32)
            dst.addmm_(up, down, alpha=strength * d.scale)
        if d.diff is not None:
            dst.add_(d.diff.reshape(r1 - r0, shape2d[1])[lo - r0:hi - r0].to(device, torch.float32), alpha=strength)
    return acc


def merge_into(w: torch.Tensor, contribs: Sequence[Contribution], out: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``w + delta`` rounded once to ``w.dtype``, written into ``out`` (a new tensor when None;
    ``out is w`` merges in place)."""
    if out is None:
        out = torch.empty_like(w)
    src, dst = _rows2d(w), _rows2d(out)
    rows, cols = src.shape
    step = max(1, CHUNK // max(cols, 1))
    for a in range(0, rows, step):
        b = min(rows, a + step)
        dst[a:b].copy_(src[a:b].float() + _delta_rows(contribs, a, b, (rows, cols), w.device))
    return out


def _get(module: nn.Module, name: str) -> torch.Tensor:
    t = module._parameters.get(name)
    return t if t is not None else module._buffers[name]


def _set(module: nn.Module, name: str, value: torch.Tensor) -> None:
    p = module._parameters.get(name)
    if p is not None:
        p.data = value
    else:
        module._buffers[name] = value


class WeightPatches:
    """``model.weight_patches``: the merged deltas, asked by the memory machinery whenever it
    makes the compute copies of the weights.

    * ``patch_copy(module, name, copy, master)``: the copy with the merge applied (in place
      when ``copy`` is a separate tensor, else a new tensor); used for streamed and resident
      copies made by :class:`memory.block_streamer.BlockStreamer`.
    * ``stash(model)`` / ``install(model)`` / ``restore(model)``: around a whole-model load
      (no VRAM budget): remember the host tensors, merge into what the load made, put the host
      tensors back.
    """

    def __init__(self, merges: "OrderedDict[Tuple[nn.Module, str], List[Contribution]]"):
        self.merges = merges
        self._by_id = {(id(m), n): (m, n, c) for (m, n), c in merges.items()}
        self._stash: Dict[Tuple[int, str], torch.Tensor] = {}

    def __len__(self) -> int:
        return len(self.merges)

    def patch_copy(self, module: nn.Module, name: str, copy: torch.Tensor, master: torch.Tensor) -> torch.Tensor:
        entry = self._by_id.get((id(module), name))
        if entry is None:
            return copy
        shared = copy.untyped_storage().data_ptr() == master.untyped_storage().data_ptr()
        return merge_into(copy, entry[2], None if shared else copy)

    def stash(self, model: nn.Module) -> None:
        if self._stash:
            return  # already holds the host tensors of an earlier load
        for (m, n), _ in self.merges.items():
            self._stash[(id(m), n)] = _get(m, n).detach()

    def install(self, model: nn.Module) -> None:
        for (m, n), contribs in self.merges.items():
            current = _get(m, n)
            original = self._stash.get((id(m), n))
            shared = original is None or current.untyped_storage().data_ptr() == original.untyped_storage().data_ptr()
            with torch.no_grad():
                _set(m, n, merge_into(current.detach(), contribs, None if shared else current.detach()))

    def restore(self, model: nn.Module) -> None:
        for (m, n), _ in self.merges.items():
            original = self._stash.get((id(m), n))
            if original is not None:
                _set(m, n, original)
        self._stash = {}


# --------------------------------------------------------------------------- setting the LoRAs


def _mergeable(t: torch.Tensor) -> bool:
    return t.is_floating_point() and not ops.is_fp8(t.dtype)


def remove_adapters(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m._modules.get("lora"), LoRAAdapter):
            del m._modules["lora"]


def _full_rows(t: torch.Tensor, rows: Optional[Tuple[int, int]], out_rows: int) -> torch.Tensor:
    """A [b - a, ...] factor of a delta on rows a:b as the [out_rows, ...] factor of the whole
    layer (zeros elsewhere)."""
    if rows is None:
        return t
    full = t.new_zeros((out_rows,) + tuple(t.shape[1:]))
    full[rows[0]:rows[1]] = t
    return full


def _adapter(contribs: Sequence[Contribution], dtype: torch.dtype, device, out_rows: int) -> LoRAAdapter:
    downs, ups, diff = [], [], None
    for d, strength in contribs:
        if d.down is not None:
            downs.append(d.down.reshape(d.down.shape[0], -1).float())
            up = d.up.reshape(d.up.shape[0], -1).float() * (strength * d.scale)
            ups.append(_full_rows(up, d.rows, out_rows))
        if d.diff is not None:
            part = _full_rows(d.diff.float() * strength, d.rows, out_rows)
            diff = part if diff is None else diff + part
    down = torch.cat(downs, 0).to(device, dtype) if downs else None
    up = torch.cat(ups, 1).to(device, dtype) if ups else None
    return LoRAAdapter(down, up, None if diff is None else diff.to(device, dtype))


def apply_loras(model: nn.Module, loras: Sequence[Tuple[ResolvedLoRA, float]], mode: str = "auto") -> None:
    """Make ``model`` carry exactly ``loras`` (resolved against it, each with its strength).

    ``mode``: "auto" (merge float weights, on the fly for fp8 / int8 / nf4 / GGUF), "merge"
    (the same: quantized weights cannot be merged) or "on_the_fly" (every Linear weight on the
    fly; biases and other parameters are always merged).  An empty list removes every LoRA.
    Cheap when nothing changed.
    """
    if mode not in MODES:
        raise ValueError("unknown LoRA mode %r; choose one of %s" % (mode, ", ".join(MODES)))
    wanted = (mode, [(r, float(s)) for r, s in loras])
    if _same(model.__dict__.get("_lora_applied"), wanted):
        return
    old = getattr(model, "weight_patches", None)
    if isinstance(old, WeightPatches):
        old.restore(model)
    remove_adapters(model)
    model.weight_patches = None
    model.__dict__["_lora_applied"] = None

    grouped: "OrderedDict[Tuple[str, str], List[Contribution]]" = OrderedDict()
    for resolved, strength in loras:
        if strength == 0:
            continue
        for d in resolved.deltas:
            grouped.setdefault((d.target.module, d.target.param), []).append((d, float(strength)))

    compute = getattr(model, "compute_dtype", torch.float32)
    merges: "OrderedDict[Tuple[nn.Module, str], List[Contribution]]" = OrderedDict()
    for (mname, pname), contribs in grouped.items():
        module = model.get_submodule(mname)
        tensor = _get(module, pname)
        linear = pname == "weight" and isinstance(module, ops.LoRATarget)
        if linear and (mode == "on_the_fly" or not _mergeable(tensor)):
            module.lora = _adapter(contribs, compute, tensor.device, param_shape(module, "weight")[0])
        elif _mergeable(tensor):
            merges[(module, pname)] = contribs
        else:
            raise LoRAError("cannot apply a LoRA to %s.%s, stored as %s" % (mname, pname, tensor.dtype))
    model.weight_patches = WeightPatches(merges) if merges else None
    model.__dict__["_lora_applied"] = wanted


def _same(a, b) -> bool:
    """The same mode and the very same resolved LoRAs with the same strengths."""
    if a is None or a[0] != b[0] or len(a[1]) != len(b[1]):
        return a is None and not b[1] and b[0] == "auto"
    return all(ra is rb and sa == sb for (ra, sa), (rb, sb) in zip(a[1], b[1]))


def lora_summary(model: nn.Module) -> Dict[str, int]:
    """How many parameters are merged and how many layers carry an adapter (for messages, tests)."""
    wp = getattr(model, "weight_patches", None)
    adapters = sum(1 for m in model.modules() if isinstance(m._modules.get("lora"), LoRAAdapter))
    return {"merged": len(wp) if wp is not None else 0, "on_the_fly": adapters}
