"""Which parameter of a model each layer of a LoRA file changes: generic over model families.

The index is built from the model itself: every parameter and buffer name (``blocks.0.self_attn.q.weight``)
gives a layer stem (``blocks.0.self_attn.q``) and, for parameters that are not a weight or a
bias (``blocks.0.modulation``), a parameter stem.  A family adds the other spellings of its
names by giving its model a method ``key_aliases(name) -> [names]`` (the Wan DiT returns the
diffusers name, so LoRAs made for diffusers' ``WanTransformer3DModel`` map onto ours).  Each
stem is also indexed with its dots turned into underscores, which is how kohya-style files
(``lora_unet_blocks_0_self_attn_q``) spell them.  Nothing here knows a particular family.

An alias may also be a :class:`RowSlice`: the other spelling is a separate tensor that is a
slice of rows of the model's parameter (diffusers' ``to_q`` / ``to_k`` / ``to_v`` against a
fused ``qkv`` weight).  A LoRA layer on such a name becomes a :class:`Delta` on those rows only;
several slices of one name (a tensor whose halves are swapped in the model) give one delta each.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, NamedTuple, Optional, Tuple

import torch
import torch.nn as nn

from .formats import LoRAError, LoRAFile, LoRALayer

# What LoRA files put in front of the model's own names (longest first).
PREFIXES = ("model.diffusion_model.", "base_model.model.", "diffusion_model.", "lora_transformer_", "lora_unet_",
            "transformer.", "model.", "unet.")


@dataclass(frozen=True)
class Target:
    module: str   # module path ("blocks.0.self_attn.q")
    param: str    # "weight", "bias" or the name of a bare parameter ("modulation")


class RowSlice(NamedTuple):
    """An alias that names a slice of rows of a parameter (returned by a model's ``key_aliases``).

    Rows ``[start, stop)`` of the model's parameter are rows ``[src_start, src_start + stop -
    start)`` of the tensor ``name`` of another spelling, which has ``src_rows`` rows in all
    (default ``stop - start``: the whole tensor is the slice)."""

    name: str
    start: int
    stop: int
    src_start: int = 0
    src_rows: Optional[int] = None


@dataclass
class Delta:
    """One change to one parameter: ``scale * up @ down`` and/or ``diff`` (times the strength).

    ``rows``: (a, b) when the change covers only rows a:b of the parameter (its first
    dimension); ``up`` and ``diff`` then have b - a rows."""

    target: Target
    down: Optional[torch.Tensor] = None
    up: Optional[torch.Tensor] = None
    scale: float = 1.0
    diff: Optional[torch.Tensor] = None
    rows: Optional[Tuple[int, int]] = None


@dataclass
class ResolvedLoRA:
    """A LoRA file matched against one model: the deltas it makes and what did not match."""

    name: str
    format: str
    deltas: List[Delta]
    layers: int                                              # layers in the file
    missing: List[str] = field(default_factory=list)         # stems the model lacks
    mismatched: List[str] = field(default_factory=list)      # stems whose shapes disagree

    def report(self) -> str:
        """One paragraph for the log: what was applied and what was not."""
        applied = self.layers - len(self.missing) - len(self.mismatched)
        lines = ["%s (%s): %d of %d layers apply" % (self.name, self.format, applied, self.layers)]
        if self.missing:
            lines.append("the model has no layer for %d of them (%s): is the LoRA made for another base model?"
                         % (len(self.missing), _examples(self.missing)))
        if self.mismatched:
            lines.append("%d have other shapes than the model's (%s)" % (len(self.mismatched), _examples(self.mismatched)))
        return "; ".join(lines)


def _examples(names: List[str], n: int = 6) -> str:
    names = sorted(names)
    return ", ".join(names[:n]) + (" ... (%d in all)" % len(names) if len(names) > n else "")


def _flat(name: str) -> str:
    return name.replace(".", "_")


# (module, bare parameter or None, (start, stop, src_start, src_rows) or None)
Entry = Tuple[str, Optional[str], Optional[Tuple[int, int, int, int]]]


class TargetIndex:
    """Stem (in any spelling the model accepts) -> the :class:`Target` entries it changes."""

    def __init__(self, model: nn.Module):
        self.model = model
        aliases = getattr(model, "key_aliases", None)
        self.table: Dict[str, List[Entry]] = {}
        for name in _tensor_names(model):
            owner, _, leaf = name.rpartition(".")
            spellings = [name] + [a for a in (aliases(name) if aliases else []) if a and a != name]
            for spelled in spellings:
                rows = None
                if isinstance(spelled, RowSlice):
                    rows = (spelled.start, spelled.stop, spelled.src_start, spelled.src_rows or spelled.stop - spelled.start)
                    spelled = spelled.name
                if leaf in ("weight", "bias"):
                    stem = spelled.rpartition(".")[0] if spelled.endswith("." + leaf) else spelled
                    entry = (owner, None, rows)
                else:
                    stem, entry = spelled, (owner, leaf, rows)
                for key in (stem, _flat(stem)):
                    self._add(key, entry)

    def _add(self, key: str, entry: Entry) -> None:
        have = self.table.get(key)
        if have is None:
            self.table[key] = [entry]
        elif entry not in have and entry[2] is not None and all(e[0] == entry[0] and e[2] is not None for e in have):
            have.append(entry)  # another slice of the same parameter (the first spelling to claim a stem wins)

    def lookup(self, stem: str) -> Optional[List[Entry]]:
        candidates = [stem] + [stem[len(p):] for p in PREFIXES if stem.startswith(p)]
        for c in candidates:
            if c in self.table:
                return self.table[c]
        for c in candidates:
            if _flat(c) in self.table:
                return self.table[_flat(c)]
        return None


def _tensor_names(model: nn.Module) -> List[str]:
    """Names of the parameters and persistent buffers, without LoRA adapters."""
    names = []
    for mname, m in model.named_modules():
        if mname.endswith(".lora") or mname == "lora" or ".lora." in mname:
            continue
        for pname, p in m._parameters.items():
            if p is not None:
                names.append((mname + "." if mname else "") + pname)
        for bname, b in m._buffers.items():
            if b is not None and bname not in m._non_persistent_buffers_set:
                names.append((mname + "." if mname else "") + bname)
    return names


def param_shape(module: nn.Module, param: str) -> Optional[Tuple[int, ...]]:
    """The logical shape of a parameter (a quantized Linear weight reports [out, in])."""
    if param == "weight" and hasattr(module, "in_features") and hasattr(module, "out_features") \
            and not module.weight.is_floating_point():
        return (module.out_features, module.in_features)
    t = module._parameters.get(param)
    if t is None:
        t = module._buffers.get(param)
    return tuple(t.shape) if t is not None else None


def _numel(shape) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n


def _fits_low_rank(lay: LoRALayer, shape) -> bool:
    if shape is None or len(shape) < 1:
        return False
    out, rest = int(lay.up.shape[0]), _numel(lay.down.shape[1:])
    return out == shape[0] and rest * out == _numel(shape) and _numel(lay.up.shape[2:]) == 1


def _deltas(lay: LoRALayer, module: nn.Module, module_name: str, bare: Optional[str],
            rows: Optional[Tuple[int, int, int, int]]) -> Optional[List[Delta]]:
    """The deltas one LoRA layer makes on one entry, or None when its shapes do not fit."""
    weight_param = bare or "weight"
    wshape = param_shape(module, weight_param)
    bshape = param_shape(module, "bias") if bare is None else None
    target_rows, cut = None, (lambda t: t)
    if rows is not None:
        start, stop, src_start, src_rows = rows
        if wshape is None or stop > wshape[0] or src_start + stop - start > src_rows:
            return None
        # The parameter as the LoRA's spelling has it (src_rows rows), of which rows src_start:... are ours.
        wshape = (src_rows,) + tuple(wshape[1:])
        bshape = (src_rows,) if bshape is not None and stop <= bshape[0] else None
        target_rows = (start, stop)

        def cut(t, a=src_start, n=stop - start):
            return t[a:a + n]
    made: List[Delta] = []
    target = Target(module_name, weight_param)
    if lay.low_rank():
        if not _fits_low_rank(lay, wshape):
            return None
        made.append(Delta(target, down=lay.down, up=cut(lay.up), scale=lay.scale, rows=target_rows))
    if lay.diff is not None:
        if wshape is None or _numel(lay.diff.shape) != _numel(wshape):
            return None
        diff = lay.diff if rows is None else cut(lay.diff.reshape(wshape))
        made.append(Delta(target, diff=diff, rows=target_rows))
    if lay.diff_b is not None:
        if bshape is None or _numel(lay.diff_b.shape) != _numel(bshape):
            return None
        db = lay.diff_b * lay.scale if lay.bias_scaled else lay.diff_b
        made.append(Delta(Target(module_name, "bias"), diff=db if rows is None else cut(db.reshape(-1)),
                          rows=target_rows))
    return made


def resolve(lora: LoRAFile, model: nn.Module, model_name: str = "this model") -> ResolvedLoRA:
    """Match ``lora`` against ``model``.  Refuses (LoRAError) a LoRA none of whose layers fit."""
    index = TargetIndex(model)
    deltas: List[Delta] = []
    missing, mismatched = [], []
    for stem, lay in lora.layers.items():
        found = index.lookup(stem)
        if found is None:
            missing.append(stem)
            continue
        made: List[Delta] = []
        for module_name, bare, rows in found:
            part = _deltas(lay, model.get_submodule(module_name), module_name, bare, rows)
            if part is None:
                made = None
                break
            made.extend(part)
        if made is None:
            mismatched.append(stem)
        else:
            deltas.extend(made)
    out = ResolvedLoRA(lora.name, lora.format, deltas, len(lora.layers), missing, mismatched)
    if not deltas:
        parts = ["none of the %d layers of the LoRA %s fits %s" % (len(lora.layers), lora.name, model_name)]
        if missing:
            parts.append("layers the model does not have: %s" % _examples(missing))
        if mismatched:
            parts.append("layers of other shapes: %s" % _examples(mismatched))
        parts.append("the LoRA is made for another base model (family, size or T2V/I2V)")
        raise LoRAError("; ".join(parts))
    return out
