"""Fill a model built on the meta device with tensors from a checkpoint, one at a time.

No full-precision copy of the model is made: each tensor is read, converted to its storage
dtype, moved to its device and assigned, then the next one.  Key mismatches produce a
message that says what was expected and what was found.  Quantized GGUF weights of Linear
layers stay quantized (the layer becomes a ``GGUFLinear``); other quantized GGUF tensors are
dequantized into the storage dtype.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, List, Optional, Tuple

import torch
import torch.nn as nn

from ...host import trim_host_memory
from ..common.ops import is_fp8
from .checkpoint import CheckpointError, TensorSource

WEIGHT_DTYPES = {
    "auto": None,
    "fp32": torch.float32, "float32": torch.float32,
    "bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
    "fp16": torch.float16, "float16": torch.float16,
}
if hasattr(torch, "float8_e4m3fn"):
    WEIGHT_DTYPES["fp8_e4m3fn"] = torch.float8_e4m3fn
    WEIGHT_DTYPES["fp8_e5m2"] = torch.float8_e5m2

# Tensors of scaled-fp8 files that are not weights of the model.
SCALE_SUFFIXES = (".scale_weight", ".weight_scale")
IGNORED_SUFFIXES = (".scale_input", ".input_scale")
IGNORED_KEYS = ("scaled_fp8",)


def parse_weight_dtype(name: str) -> Optional[torch.dtype]:
    if name not in WEIGHT_DTYPES:
        raise ValueError("unknown weight dtype %r; choose one of %s" % (name, ", ".join(WEIGHT_DTYPES)))
    return WEIGHT_DTYPES[name]


@dataclass
class LoadPlan:
    """How the tensors of a checkpoint become the parameters of a model."""

    key_map: Dict[str, str]            # file key -> model key
    scale_map: Dict[str, str] = field(default_factory=dict)  # file key of a scale -> model key of its weight
    ignored: List[str] = field(default_factory=list)


def plan_keys(source_keys: Iterable[str], to_model: Callable[[str], Optional[str]]) -> LoadPlan:
    """Sort file keys into weights, fp8 scales and markers, using ``to_model`` for names."""
    plan = LoadPlan(key_map={})
    for k in source_keys:
        if k in IGNORED_KEYS or k.endswith(IGNORED_SUFFIXES):
            plan.ignored.append(k)
            continue
        scale_suffix = next((s for s in SCALE_SUFFIXES if k.endswith(s)), None)
        if scale_suffix:
            target = to_model(k[: -len(scale_suffix)] + ".weight")
            if target is not None:
                plan.scale_map[k] = target
            else:
                plan.ignored.append(k)
            continue
        mk = to_model(k)
        if mk is None:
            plan.ignored.append(k)
        else:
            plan.key_map[k] = mk
    return plan


def _examples(keys: Iterable[str], n: int = 5) -> str:
    keys = sorted(keys)
    s = ", ".join(keys[:n])
    return s + (" ... (%d in all)" % len(keys) if len(keys) > n else "")


def check_keys(model: nn.Module, plan: LoadPlan, source: TensorSource, what: str,
               optional: Iterable[str] = ()) -> None:
    """Raise a readable CheckpointError if names or shapes disagree."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    found = {}
    for fk, mk in plan.key_map.items():
        found[mk] = source.shape(fk)
    optional = set(optional)
    missing = [k for k in expected if k not in found and k not in optional]
    unexpected = [k for k in found if k not in expected]
    bad_shape = ["%s: expected %s, found %s" % (k, list(expected[k]), list(found[k]))
                 for k in found if k in expected and tuple(found[k]) != expected[k]]
    if missing or unexpected or bad_shape:
        parts = ["%s does not match the %s it was detected as." % (", ".join(source.files[:2]), what)]
        if missing:
            parts.append("Missing %d tensors: %s." % (len(missing), _examples(missing)))
        if unexpected:
            parts.append("Unexpected %d tensors: %s." % (len(unexpected), _examples(unexpected)))
        if bad_shape:
            parts.append("Wrong shapes: %s." % "; ".join(bad_shape[:4]))
        raise CheckpointError(" ".join(parts))


def check_scales(plan: LoadPlan, source: TensorSource) -> None:
    """A scaled-fp8 file (it has a ``scaled_fp8`` marker or scales) must have a scale for every
    fp8 weight: without it the weight would load off by its scale (100 % and more) silently."""
    scaled = bool(plan.scale_map) or any(k in IGNORED_KEYS for k in plan.ignored)
    if not scaled:
        return
    have = set(plan.scale_map.values())
    missing = [mk for fk, mk in plan.key_map.items() if is_fp8(source.dtype(fk)) and mk not in have]
    if missing:
        raise CheckpointError(
            "%s is a scaled-fp8 file, but %d of its fp8 weights have no scale (%s); the file is damaged or was "
            "converted wrongly. Download it again, or use a bf16 / fp16 version."
            % (source.files[0], len(missing), _examples(missing, 3)))


def set_tensor(model: nn.Module, key: str, value: torch.Tensor, buffer: bool = False) -> None:
    owner_name, _, name = key.rpartition(".")
    owner = model.get_submodule(owner_name) if owner_name else model
    if buffer:
        owner.register_buffer(name, value, persistent=False)
    elif isinstance(getattr(owner, name, None), nn.Parameter) or name in owner._parameters:
        owner._parameters[name] = nn.Parameter(value, requires_grad=False)
    else:
        owner.register_buffer(name, value)


StoragePolicy = Callable[[str, torch.dtype], torch.dtype]


def storage_policy(weight_dtype: Optional[torch.dtype], fallback: torch.dtype,
                   fp8_eligible: Callable[[str], bool]) -> StoragePolicy:
    """A function (model key, file dtype) -> storage dtype.

    * ``weight_dtype`` None ("auto"): fp8 stays fp8; other floats become ``fallback`` unless
      they already are bf16/fp16/fp32 narrower than it, which are kept.
    * an fp8 dtype: eligible weights (large Linear weights) are stored in that fp8 format,
      everything else in ``fallback``.
    * bf16 / fp16 / fp32: every floating tensor in that dtype.
    """

    def policy(key: str, file_dtype: torch.dtype) -> torch.dtype:
        if not file_dtype.is_floating_point:
            return file_dtype
        if weight_dtype is None:
            if is_fp8(file_dtype):
                return file_dtype if fp8_eligible(key) else fallback
            if _bits(file_dtype) < _bits(fallback):
                return file_dtype
            return fallback
        if is_fp8(weight_dtype):
            if is_fp8(file_dtype) and fp8_eligible(key):
                return file_dtype
            return weight_dtype if fp8_eligible(key) else fallback
        return weight_dtype

    return policy


def _bits(dt: torch.dtype) -> int:
    return torch.empty((), dtype=dt).element_size() * 8


def quantize_fp8(w: torch.Tensor, dtype: torch.dtype) -> Tuple[torch.Tensor, torch.Tensor]:
    """Per-tensor scaled fp8: (w / s) in fp8 and s, with s = amax / max_representable."""
    w = w.float()
    fmax = torch.finfo(dtype).max
    amax = w.abs().max().clamp(min=1e-12)
    scale = (amax / fmax).reshape(())
    q = (w / scale).clamp(-fmax, fmax).to(dtype)
    return q, scale.float()


def assign_weights(model: nn.Module, source: TensorSource, plan: LoadPlan, policy: StoragePolicy,
                   device: torch.device, progress: Optional[Callable[[int], None]] = None,
                   transforms: Optional[Dict[str, Callable[[torch.Tensor], torch.Tensor]]] = None) -> None:
    """Read, convert and assign every planned tensor, then fix the meta leftovers."""
    device = torch.device(device)
    transforms = transforms or {}
    scales_for = {mk: fk for fk, mk in plan.scale_map.items()}
    quantized = getattr(source, "quantized", None)
    for i, (fk, mk) in enumerate(plan.key_map.items()):
        q = quantized(fk) if quantized is not None else None
        if q is not None:  # GGUF: Linear weights keep their blocks, everything else is dequantized
            from .gguf import keep_quantized

            if keep_quantized(model, mk, q, device):
                if progress is not None:
                    progress(i + 1)
                continue
            t = q.dequantize(torch.float32)
        else:
            t = source.get(fk)
        if mk in transforms:
            t = transforms[mk](t)
        target = policy(mk, t.dtype)
        scale_key = scales_for.get(mk)
        scale = None
        if scale_key is not None and is_fp8(t.dtype):
            scale = source.get(scale_key).float()
            if scale.numel() != 1 or not bool(torch.isfinite(scale).all()) or float(scale.reshape(())) <= 0:
                raise CheckpointError("%s: the fp8 scale %s is %s; a scale must be one finite number above 0 (the "
                                      "file is damaged)" % (source.files[0], scale_key,
                                                            scale.flatten()[:4].tolist()))
            scale = scale.reshape(())
        if is_fp8(target):
            if is_fp8(t.dtype) and t.dtype == target:
                q = t
            else:
                full = t.float() * scale if scale is not None else t
                q, scale = quantize_fp8(full, target)
            set_tensor(model, mk, q.to(device))
            if scale is not None:
                set_tensor(model, mk[: -len(".weight")] + ".scale_weight", scale.to(device), buffer=True)
        else:
            if scale is not None:
                t = t.float() * scale
            set_tensor(model, mk, t.to(device=device, dtype=target))
        if progress is not None:
            progress(i + 1)
        if i % 64 == 63:
            trim_host_memory()  # converted copies freed along the way go back to the system
    trim_host_memory()
    # Parameters nobody loaded (optional ones) must not stay on the meta device.
    for name, p in list(model.named_parameters()):
        if p.is_meta:
            set_tensor(model, name, torch.zeros(p.shape, dtype=policy(name, torch.float32), device=device))
    for name, b in list(model.named_buffers()):
        if b.is_meta:
            set_tensor(model, name, torch.zeros(b.shape, dtype=b.dtype, device=device), buffer=True)


def build_on_meta(factory: Callable[[], nn.Module]) -> nn.Module:
    with torch.device("meta"):
        return factory()


def build_and_fill(factory: Callable[[], nn.Module], source: TensorSource, to_model: Callable[[str], Optional[str]],
                   what: str, policy: StoragePolicy, device: torch.device) -> nn.Module:
    """Build a model on the meta device, check the checkpoint's names and shapes against it,
    and fill it one tensor at a time.  ``to_model`` maps a file key to a model key (None: not
    the model's); ``what`` names the model in error messages."""
    plan = plan_keys(source.keys(), to_model)
    model = build_on_meta(factory)
    check_keys(model, plan, source, what)
    check_scales(plan, source)
    assign_weights(model, source, plan, policy, device)
    return model
