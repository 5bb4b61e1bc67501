"""Lazy, read-only access to the tensors of a checkpoint, whatever its layout.

Handles single ``.safetensors`` files, sharded folders (with or without an
``*.index.json``), official model folders that mix several components, diffusers pipeline
folders (``transformer/``, ``vae/``, ``text_encoder/``, ``image_encoder/``) and ``.pth`` /
``.pt`` / ``.bin`` files, which are only ever read with ``torch.load(weights_only=True)``.
Tensors are read one at a time when asked for, so a loader never holds a second full copy.
"""
from __future__ import annotations

import glob
import json
import os
from typing import Dict, List, Optional, Sequence, Tuple

import torch

SAFETENSORS_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
    "BOOL": torch.bool,
}
for _name, _attr in (("F8_E4M3", "float8_e4m3fn"), ("F8_E5M2", "float8_e5m2")):
    if hasattr(torch, _attr):
        SAFETENSORS_DTYPES[_name] = getattr(torch, _attr)

WEIGHT_EXTENSIONS = (".safetensors", ".sft", ".pth", ".pt", ".bin", ".ckpt")


class CheckpointError(ValueError):
    """A file or folder that cannot serve as the requested model; the message says why."""


class TensorSource:
    """Tensors of one or more files, addressed by key; read lazily."""

    @classmethod
    def from_dict(cls, tensors: Dict[str, torch.Tensor], name: str = "<state dict>") -> "TensorSource":
        """Wrap an in-memory state dict (library use and tests)."""
        src = cls.__new__(cls)
        src.files = [name]
        h = _DictFile(tensors)
        src._handles = [h]
        src._where = {k: 0 for k in h.keys()}
        src._shape = {k: h.info(k)[0] for k in h.keys()}
        src._dtype = {k: h.info(k)[1] for k in h.keys()}
        src.metadata = {}
        return src

    def __init__(self, files: Sequence[str]):
        if not files:
            raise CheckpointError("no weight files given")
        self.files = list(files)
        self._where: Dict[str, int] = {}
        self._shape: Dict[str, Tuple[int, ...]] = {}
        self._dtype: Dict[str, torch.dtype] = {}
        self._handles: List[object] = []
        self.metadata: Dict[str, str] = {}
        for i, f in enumerate(self.files):
            h = _open_file(f)
            self._handles.append(h)
            for k in h.keys():
                if k in self._where:
                    continue  # first file wins, as when shards overlap
                self._where[k] = i
                self._shape[k], self._dtype[k] = h.info(k)
            self.metadata.update(h.metadata())

    def keys(self) -> List[str]:
        return list(self._where)

    def __contains__(self, key: str) -> bool:
        return key in self._where

    def __len__(self) -> int:
        return len(self._where)

    def shape(self, key: str) -> Tuple[int, ...]:
        return self._shape[key]

    def dtype(self, key: str) -> torch.dtype:
        return self._dtype[key]

    def shapes(self) -> Dict[str, Tuple[int, ...]]:
        return dict(self._shape)

    def get(self, key: str) -> torch.Tensor:
        return self._handles[self._where[key]].get(key)

    def quantized(self, key: str):
        """The stored quantized form of ``key`` (a GGUF ``QuantizedTensor``), or None for a
        plain tensor; ``get`` always returns the dequantized tensor."""
        handle = self._handles[self._where[key]]
        fn = getattr(handle, "quantized", None) if handle is not self else None
        return fn(key) if fn is not None else None

    def nbytes(self) -> int:
        total = 0
        for k, s in self._shape.items():
            n = 1
            for d in s:
                n *= d
            total += n * _itemsize(self._dtype[k])
        return total

    def close(self) -> None:
        self._handles = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def _itemsize(dtype: torch.dtype) -> int:
    return torch.empty((), dtype=dtype).element_size()


class _SafetensorsFile:
    def __init__(self, path: str):
        from safetensors import safe_open

        try:
            self._h = safe_open(path, framework="pt", device="cpu")
        except Exception as e:  # corrupt or not safetensors
            raise CheckpointError("cannot read %s as safetensors: %s" % (path, e)) from e
        self._keys = list(self._h.keys())

    def keys(self):
        return self._keys

    def info(self, key):
        sl = self._h.get_slice(key)
        name = sl.get_dtype()
        if name not in SAFETENSORS_DTYPES:
            raise CheckpointError("tensor %s has dtype %s, which this PyTorch cannot read" % (key, name))
        return tuple(sl.get_shape()), SAFETENSORS_DTYPES[name]

    def get(self, key):
        return self._h.get_tensor(key)

    def metadata(self):
        return dict(self._h.metadata() or {})


class _TorchFile:
    """A .pth/.pt/.bin/.ckpt file, read with weights_only=True (memory-mapped when possible)."""

    def __init__(self, path: str):
        try:
            sd = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError:
            sd = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:
            raise CheckpointError(
                "cannot read %s safely (torch.load with weights_only=True refused it: %s). "
                "Convert it to .safetensors." % (path, str(e).splitlines()[0])) from e
        sd = _unwrap(sd)
        if not isinstance(sd, dict):
            raise CheckpointError("%s does not hold a state dict" % path)
        self._sd = {k: v for k, v in sd.items() if isinstance(v, torch.Tensor)}

    def keys(self):
        return list(self._sd)

    def info(self, key):
        t = self._sd[key]
        return tuple(t.shape), t.dtype

    def get(self, key):
        return self._sd[key]

    def metadata(self):
        return {}


class _DictFile(_TorchFile):
    def __init__(self, tensors):
        self._sd = {k: v for k, v in tensors.items() if isinstance(v, torch.Tensor)}


def _unwrap(sd):
    for wrapper in ("state_dict", "model", "module", "model_state_dict"):
        if isinstance(sd, dict) and wrapper in sd and isinstance(sd[wrapper], dict) and len(sd) <= 4:
            sd = sd[wrapper]
    return sd


def _open_file(path: str):
    low = path.lower()
    if low.endswith((".safetensors", ".sft")):
        return _SafetensorsFile(path)
    if low.endswith((".pth", ".pt", ".bin", ".ckpt")):
        return _TorchFile(path)
    if low.endswith(".gguf"):
        from .gguf import GGUFFile

        return GGUFFile(path)
    raise CheckpointError("unknown weight file type: %s" % path)


# --------------------------------------------------------------------------- folders

# Diffusers pipeline subfolder and official-folder file patterns for each component.
COMPONENT_SUBFOLDERS = {
    "dit": ("transformer",),
    "vae": ("vae",),
    "umt5": ("text_encoder",),
    "clip_vision": ("image_encoder",),
    "llama": ("text_encoder",),        # HunyuanVideo / SkyReels-V1 pipelines
    "clip_l": ("text_encoder_2",),
}
COMPONENT_PATTERNS = {
    "vae": ("*VAE*.pth", "*vae*.pth", "*vae*.safetensors", "*VAE*.safetensors"),
    "umt5": ("models_t5*.pth", "*umt5*.safetensors", "*umt5*.pth", "*t5*.safetensors"),
    "clip_vision": ("models_clip*.pth", "*clip*.safetensors", "*clip*.pth"),
}


def shard_files(folder: str) -> List[str]:
    """The weight files of one model folder: from its index, else every weight file."""
    for idx in sorted(glob.glob(os.path.join(folder, "*.index.json"))):
        with open(idx) as f:
            wm = json.load(f).get("weight_map", {})
        files = sorted({os.path.join(folder, v) for v in wm.values()})
        missing = [p for p in files if not os.path.exists(p)]
        if missing:
            raise CheckpointError("%s lists shards that are missing: %s"
                                  % (os.path.basename(idx), ", ".join(os.path.basename(m) for m in missing)))
        if files:
            return files
    st = sorted(glob.glob(os.path.join(folder, "*.safetensors")))
    if st:
        return st
    return sorted(p for p in glob.glob(os.path.join(folder, "*"))
                  if p.lower().endswith(WEIGHT_EXTENSIONS) and os.path.isfile(p))


def component_files(path: str, component: Optional[str] = None) -> List[str]:
    """Weight files for ``component`` ("dit", "vae", "umt5", "clip_vision") at ``path``.

    ``path`` may be a file, a folder of shards, an official model folder holding several
    components, or a diffusers pipeline folder.
    """
    path = os.path.expanduser(path)
    if os.path.isfile(path):
        return [path]
    if not os.path.isdir(path):
        raise CheckpointError("%s does not exist" % path)
    if component:
        for sub in COMPONENT_SUBFOLDERS.get(component, ()):
            p = os.path.join(path, sub)
            if os.path.isdir(p):
                return shard_files(p)
        for pattern in COMPONENT_PATTERNS.get(component, ()):
            hits = sorted(glob.glob(os.path.join(path, pattern)))
            if hits:
                return hits[:1]
        if component == "dit":
            files = sorted(glob.glob(os.path.join(path, "*.safetensors")))
            if files:
                idx = glob.glob(os.path.join(path, "*.index.json"))
                return shard_files(path) if idx else files
    files = shard_files(path)
    if not files:
        raise CheckpointError("no weight files (.safetensors, .pth, ...) in %s" % path)
    return files


def read_config(path: str, component: Optional[str] = None) -> Optional[dict]:
    """The ``config.json`` beside the weights (component subfolder first), if any."""
    if os.path.isfile(path):
        # A config.json beside a single file is only trusted by callers that check it
        # against the tensor shapes (it may describe another model of a shared folder).
        folder = os.path.dirname(path)
        candidates = [os.path.join(folder, "config.json")]
    else:
        candidates = [os.path.join(path, s, "config.json") for s in COMPONENT_SUBFOLDERS.get(component or "", ())]
        candidates.append(os.path.join(path, "config.json"))
    for c in candidates:
        if os.path.isfile(c):
            try:
                with open(c) as f:
                    return json.load(f)
            except (OSError, ValueError):
                return None
    return None


def open_checkpoint(path: str, component: Optional[str] = None) -> TensorSource:
    return TensorSource(component_files(path, component))


def open_weights(path, component: Optional[str] = None) -> Tuple[TensorSource, Optional[dict], Optional[str]]:
    """Whatever a loader was given -> (source, its ``config.json`` or None, its path or None).

    ``path`` may be a file or folder path, an in-memory state dict, or a :class:`TensorSource`;
    the path is None for in-memory weights.
    """
    if isinstance(path, TensorSource):
        first = path.files[0] if path.files else None
        return path, None, first if first and os.path.exists(first) else None
    if isinstance(path, dict):
        return TensorSource.from_dict(path), None, None
    path = os.path.expanduser(str(path))
    return open_checkpoint(path, component), read_config(path, component), path
