"""Which parameter of a model each layer of a LoRA file changes: generic over model families.

The index is built from the model itself: every parameter and buffer name (``blocks.0.self_attn.q.weight``)
gives a layer stem (``blocks.0.self_attn.q``) and, for parameters that are not a weight or a
bias (``blocks.0.modulation``), a parameter stem.  A family adds the other spellings of its
names by giving its model a method ``key_aliases(name) -> [names]`` (the Wan DiT returns the
diffusers name, so LoRAs made for diffusers' ``WanTransformer3DModel`` map onto ours).  Each
stem is also indexed with its dots turned into underscores, which is how kohya-style files
(``lora_unet_blocks_0_self_attn_q``) spell them.  Nothing here knows a particular family.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

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


@dataclass
class Delta:
    """One change to one parameter: ``scale * up @ down`` and/or ``diff`` (times the strength)."""

    target: Target
    down: Optional[torch.Tensor] = None
    up: Optional[torch.Tensor] = None
    scale: float = 1.0
    diff: Optional[torch.Tensor] = None


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


class TargetIndex:
    """Stem (in any spelling the model accepts) -> :class:`Target`, plus the kind of stem."""

    def __init__(self, model: nn.Module):
        self.model = model
        aliases = getattr(model, "key_aliases", None)
        self.table: Dict[str, Tuple[str, Optional[str]]] = {}  # stem -> (module, bare param or None)
        for name in _tensor_names(model):
            owner, _, leaf = name.rpartition(".")
            spellings = [name] + [a for a in (aliases(name) if aliases else []) if a and a != name]
            for spelled in spellings:
                if leaf in ("weight", "bias"):
                    stem = spelled.rpartition(".")[0] if spelled.endswith("." + leaf) else spelled
                    entry = (owner, None)
                else:
                    stem, entry = spelled, (owner, leaf)
                for key in (stem, _flat(stem)):
                    self.table.setdefault(key, entry)

    def lookup(self, stem: str) -> Optional[Tuple[str, Optional[str]]]:
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
        module_name, bare = found
        module = model.get_submodule(module_name)
        ok = True
        made: List[Delta] = []
        weight_param = bare or "weight"
        wshape = param_shape(module, weight_param)
        if lay.low_rank():
            if _fits_low_rank(lay, wshape):
                made.append(Delta(Target(module_name, weight_param), down=lay.down, up=lay.up, scale=lay.scale))
            else:
                ok = False
        if lay.diff is not None:
            if wshape is not None and _numel(lay.diff.shape) == _numel(wshape):
                made.append(Delta(Target(module_name, weight_param), diff=lay.diff))
            else:
                ok = False
        if lay.diff_b is not None:
            bshape = param_shape(module, "bias") if bare is None else None
            if bshape is not None and _numel(lay.diff_b.shape) == _numel(bshape):
                made.append(Delta(Target(module_name, "bias"), diff=lay.diff_b * lay.scale if lay.bias_scaled
                                  else lay.diff_b))
            else:
                ok = False
        if ok:
            deltas.extend(made)
        else:
            mismatched.append(stem)
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
