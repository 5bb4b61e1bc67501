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
    """A .pth/.pt/.bin/.ckpt file, read with weights_only=True (memory-mapped when possible).

    Never with ``weights_only=False``: a pickle that holds anything but tensors and plain
    containers is refused, so no code in a file ever runs."""

    def __init__(self, path: str):
        import pickle
        import warnings

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # torch's notes on pickle protocols
                try:
                    sd = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
                except RuntimeError as e:
                    if "mmap" not in str(e) and "zip" not in str(e):
                        raise
                    sd = torch.load(path, map_location="cpu", weights_only=True)  # an old (non-zip) file
        except (pickle.UnpicklingError, AttributeError, ImportError) as e:
            raise CheckpointError(
                "%s holds Python objects besides tensors, which are never loaded (loading them could run code "
                "from the file). Use a .safetensors version of the model." % path) from e
        except Exception as e:  # noqa: BLE001 - damaged, truncated, not a PyTorch file
            first = (str(e).splitlines() or [type(e).__name__])[0]
            if "weights_only" in first or "Weights only" in first:
                first = "it holds Python objects besides tensors, which are never loaded"
            raise CheckpointError("cannot read %s as PyTorch weights (%s). Use a .safetensors version of the model."
                                  % (path, first[:200])) from e
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


def _index_shards(idx: str, folder: str) -> List[str]:
    """The shard files an ``*.index.json`` names; each must be a file name inside ``folder``."""
    try:
        with open(idx, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError, RecursionError) as e:
        raise CheckpointError("%s is not a readable index (%s)" % (idx, str(e)[:120])) from e
    wm = data.get("weight_map", {}) if isinstance(data, dict) else None
    if not isinstance(wm, dict) or not all(isinstance(v, str) and v for v in wm.values()):
        raise CheckpointError("%s has no usable 'weight_map' (tensor name -> shard file name)" % idx)
    root = os.path.abspath(folder)
    files = set()
    for v in wm.values():
        p = os.path.normpath(os.path.join(root, v))
        if os.path.isabs(v) or os.path.commonpath([p, root]) != root or p == root:
            raise CheckpointError("%s names the shard %r, which is outside the model's folder; shards are read "
                                  "from the folder of their index only" % (idx, v))
        files.add(p)
    return sorted(files)


def shard_files(folder: str) -> List[str]:
    """The weight files of one model folder: from its index, else every weight file."""
    for idx in sorted(glob.glob(os.path.join(folder, "*.index.json"))):
        files = _index_shards(idx, folder)
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


def config_file(path: str, component: Optional[str] = None) -> Optional[str]:
    """The ``config.json`` that belongs to the weights at ``path`` (component subfolder first)."""
    if os.path.isfile(path):
        # A config.json beside a single file is only trusted by callers that check it
        # against the tensor shapes (it may describe another model of a shared folder).
        candidates = [os.path.join(os.path.dirname(path), "config.json")]
    else:
        candidates = [os.path.join(path, s, "config.json") for s in COMPONENT_SUBFOLDERS.get(component or "", ())]
        candidates.append(os.path.join(path, "config.json"))
    return next((c for c in candidates if os.path.isfile(c)), None)


# Settings the loaders read from a config.json, with what makes sense for each.  A value
# outside these is refused with a message naming the file (never a bare int() traceback, never
# a model built from it).
_WHOLE = ("dim", "ffn_dim", "num_heads", "num_layers", "in_dim", "out_dim", "text_dim", "text_len", "freq_dim",
          "num_attention_heads", "attention_head_dim", "in_channels", "out_channels", "image_dim",
          "pos_embed_seq_len", "rope_max_seq_len", "vocab_size", "d_model", "d_kv", "d_ff",
          "relative_attention_num_buckets", "relative_attention_max_distance", "hidden_size", "intermediate_size",
          "num_hidden_layers", "image_size", "z_dim", "base_dim")
_EPS = ("eps", "layer_norm_epsilon", "layer_norm_eps")
MAX_CONFIG_INT = 1 << 20


def check_config(cfg, where: str) -> dict:
    """``cfg`` if the settings the loaders read from it make sense, else a CheckpointError
    naming ``where`` and the setting."""
    import math

    if not isinstance(cfg, dict):
        raise CheckpointError("%s is not a JSON object of settings" % where)

    def bad(key, value, want):
        return CheckpointError("%s: %r is %s; it must be %s. Fix or remove the file." % (where, key, json.dumps(value)[:60], want))

    def whole(v):
        return isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= MAX_CONFIG_INT

    for key, v in cfg.items():
        if v is None:  # absent (diffusers writes null for unset settings); loaders that need it: require_set
            continue
        if key in _WHOLE and not whole(v):
            raise bad(key, v, "a whole number from 1 to %d" % MAX_CONFIG_INT)
        if key in _EPS and not (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                                and 0 < v < 1):
            raise bad(key, v, "a small positive number (like 1e-6)")
        if key == "patch_size" and not (whole(v) or (isinstance(v, list) and 1 <= len(v) <= 3
                                                    and all(whole(x) for x in v))):
            raise bad(key, v, "a whole number or a list of up to 3 whole numbers")
        if key in ("latents_mean", "latents_std"):
            if not (isinstance(v, list) and v and all(isinstance(x, (int, float)) and not isinstance(x, bool)
                                                       and math.isfinite(x) for x in v)):
                raise bad(key, v, "a list of finite numbers")
            if key == "latents_std" and any(x == 0 for x in v):
                raise bad(key, v, "a list of non-zero numbers")
        if key in ("vision_config", "text_config") and isinstance(v, dict):
            check_config(v, "%s (%s)" % (where, key))
    return cfg


def require_set(cfg: Optional[dict], keys: Sequence[str], where: Optional[str]) -> None:
    """A CheckpointError naming ``where`` when one of ``keys`` is present but null (the loader
    reads it as a number)."""
    for key in keys:
        if cfg and key in cfg and cfg[key] is None:
            raise CheckpointError("%s: %r is null; it must be set (a number). Fix or remove the file."
                                  % (where or "config.json", key))


def read_config(path: str, component: Optional[str] = None) -> Optional[dict]:
    """The ``config.json`` beside the weights (component subfolder first), if any; checked by
    :func:`check_config` (a damaged or nonsensical file is refused, naming it)."""
    c = config_file(path, component)
    if c is None:
        return None
    try:
        with open(c, encoding="utf-8") as f:
            cfg = json.load(f)
    except (OSError, ValueError, RecursionError) as e:
        raise CheckpointError("%s cannot be read as JSON (%s). Fix or remove the file." % (c, str(e)[:120])) from e
    return check_config(cfg, c)


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
