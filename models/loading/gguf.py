"""GGUF files (city96's ComfyUI-GGUF layout) as one more kind of checkpoint file.

What city96's converter (``tools/convert.py`` + its llama.cpp patch) writes, and what this
reader relies on:

* ``general.architecture`` names the model family: ``wan`` (Wan2.1 / SkyReels-V2/V3 DiTs),
  ``hyvid`` (HunyuanVideo, SkyReels-V1), ``flux``, ``ltxv`` ...  There is no variant field:
  T2V / I2V / DF are told apart from the tensor names and shapes, like safetensors files
  (and from the file name for DF-14B, whose tensors look like T2V-14B).
* Tensor names are the original state-dict names with the ComfyUI prefix stripped
  (``blocks.0.self_attn.q.weight``); some third-party files keep ``model.diffusion_model.``.
* Dimensions are stored innermost first (a [out, in] weight is stored as (in, out)); a
  ``comfy.gguf.orig_shape.<name>`` array, when present, gives the real shape of a tensor that
  was reshaped to fit its blocks.
* 1-D tensors, tensors of at most 1024 weights and a few named ones stay F32; tensors of more
  than 4 dimensions (the Wan / HunyuanVideo 3-D patch embedding) are added back in F32; rows
  that do not fit a K-quant's 256-weight blocks fall back to F16.

:class:`GGUFFile` is the file handle :class:`models.loading.checkpoint.TensorSource` uses for
``.gguf`` files: ``get`` returns a dequantized float tensor (any loader works unchanged) and
``quantized`` returns the bytes, which :func:`models.loading.materialize.assign_weights`
keeps as a :class:`memory.gguf_quant.GGUFLinear` for Linear layers.
"""
from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch

from ...memory.gguf_quant import PLAIN, dequantize, type_name
from .checkpoint import CheckpointError

ORIG_SHAPE = "comfy.gguf.orig_shape."

# general.architecture values of video DiT files and the family that reads them.
ARCHITECTURES = {"wan": "Wan2.1 / SkyReels-V2 / V3 DiT", "hyvid": "HunyuanVideo / SkyReels-V1 DiT"}


def _gguf():
    try:
        import gguf  # type: ignore
    except ImportError as e:
        raise CheckpointError("reading .gguf files needs the 'gguf' package: pip install gguf") from e
    return gguf


@dataclass
class QuantizedTensor:
    """The stored form of one quantized GGUF tensor."""

    raw: torch.Tensor            # uint8, the blocks one after the other
    qtype: str                   # "Q4_K", "Q8_0", ...
    shape: Tuple[int, ...]       # the tensor's real (PyTorch-order) shape

    def dequantize(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return dequantize(self.raw, self.qtype, self.shape, dtype)


def _field_value(field):
    """A GGUF metadata field as a Python value (str, int, float, bool or list)."""
    gguf = _gguf()
    kind = field.types[0]
    if kind == gguf.GGUFValueType.STRING:
        return bytes(field.parts[field.data[0]]).decode("utf-8", errors="replace")
    if kind == gguf.GGUFValueType.ARRAY:
        if len(field.types) > 1 and field.types[1] == gguf.GGUFValueType.STRING:
            return [bytes(field.parts[i]).decode("utf-8", errors="replace") for i in field.data]
        return [field.parts[i].tolist()[0] for i in field.data]
    return field.parts[field.data[0]].tolist()[0]


class GGUFFile:
    """One ``.gguf`` file, memory-mapped; tensors are copied out one at a time when asked."""

    def __init__(self, path: str):
        gguf = _gguf()
        try:
            self.reader = gguf.GGUFReader(path, "r")
        except Exception as e:
            raise CheckpointError("cannot read %s as GGUF: %s" % (path, e)) from e
        self.path = path
        self.fields: Dict[str, object] = {}
        for name, field in self.reader.fields.items():
            if name.startswith("GGUF."):
                continue
            try:
                self.fields[name] = _field_value(field)
            except Exception:  # an exotic field type: not needed to load tensors
                continue
        self._tensors = {}
        self._shapes: Dict[str, Tuple[int, ...]] = {}
        self._types: Dict[str, str] = {}
        for t in self.reader.tensors:
            try:
                qtype = type_name(t.tensor_type)
            except ValueError as e:
                raise CheckpointError("%s: tensor %s: %s" % (path, t.name, e)) from None
            orig = self.fields.get(ORIG_SHAPE + t.name)
            shape = tuple(int(v) for v in orig) if orig else tuple(int(v) for v in reversed(list(t.shape)))
            self._tensors[t.name] = t
            self._shapes[t.name] = shape
            self._types[t.name] = qtype

    # ------------------------------------------------------------------ TensorSource handle

    def keys(self) -> List[str]:
        return list(self._tensors)

    def info(self, key: str):
        qtype = self._types[key]
        dtype = {"F32": torch.float32, "BF16": torch.bfloat16}.get(qtype, torch.float16)
        return self._shapes[key], dtype

    def _numpy(self, key: str) -> np.ndarray:
        return np.array(self._tensors[key].data)  # a copy out of the memory map

    def get(self, key: str) -> torch.Tensor:
        qtype = self._types[key]
        shape = self._shapes[key]
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            data = torch.from_numpy(self._numpy(key))
        if qtype == "F32":
            return data.view(torch.float32).reshape(shape)
        if qtype == "F16":
            return data.view(torch.float16).reshape(shape)
        out = dequantize(data.view(torch.uint8).reshape(-1), qtype, shape)
        return out.to(torch.bfloat16) if qtype == "BF16" else out  # BF16 -> float32 -> BF16 is exact

    def quantized(self, key: str) -> Optional[QuantizedTensor]:
        """The bytes of a quantized tensor (None for F32 / F16 / BF16 ones)."""
        qtype = self._types[key]
        if qtype in PLAIN:
            return None
        raw = torch.from_numpy(self._numpy(key)).view(torch.uint8).reshape(-1)
        return QuantizedTensor(raw, qtype, self._shapes[key])

    def metadata(self) -> Dict[str, str]:
        out = {k: str(v) for k, v in self.fields.items() if not k.startswith(ORIG_SHAPE)}
        out["gguf.tensor_types"] = summary(self._types.values())
        return out

    # ------------------------------------------------------------------ description

    @property
    def architecture(self) -> Optional[str]:
        arch = self.fields.get("general.architecture")
        return str(arch) if arch is not None else None

    def tensor_types(self) -> Dict[str, str]:
        return dict(self._types)


def summary(types) -> str:
    """"Q4_K 240, F32 300, ..." (most frequent first)."""
    return ", ".join("%s %d" % (k, n) for k, n in Counter(types).most_common())


def check_architecture(source, expected: str, what: str) -> None:
    """Refuse a GGUF file whose ``general.architecture`` names another family."""
    arch = (source.metadata or {}).get("general.architecture")
    if arch is None or arch == expected:
        return
    known = ARCHITECTURES.get(arch, "an architecture called %r" % arch)
    raise CheckpointError("%s is a GGUF file of %s (general.architecture = %s), not a %s"
                          % (source.files[0], known, arch, what))


# --------------------------------------------------------------------------- loading into a model


def keep_quantized(model: torch.nn.Module, key: str, q: QuantizedTensor, device=None) -> bool:
    """Put the quantized tensor ``q`` into ``model`` at ``key`` as a GGUF Linear layer when
    ``key`` is the weight of a Linear layer (plain or fp8 ``ops.Linear``); False when the
    tensor belongs elsewhere (norms, embeddings, modulation tables, convolutions), which the
    caller then fills with the dequantized tensor."""
    from ...memory.gguf_quant import GGUFLinear, replace_with_gguf
    from ..common.ops import Linear

    owner_name, _, leaf = key.rpartition(".")
    if leaf != "weight" or not owner_name:
        return False
    owner = model.get_submodule(owner_name)
    if isinstance(owner, GGUFLinear):
        return False
    if not isinstance(owner, Linear) or tuple(q.shape) != (owner.out_features, owner.in_features):
        return False
    parent_name, _, child = owner_name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    replace_with_gguf(parent, child, owner, q.raw if device is None else q.raw.to(device), q.qtype)
    return True
