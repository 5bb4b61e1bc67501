"""The SigLIP image encoder of SkyReels-A1 (``siglip-so400m-patch14-384``): transformers'
``SiglipVisionModel``, loaded from local files only, plus the official preprocessing.

* Preprocessing (``SiglipImageProcessor`` as the release's transformers 4.37 runs it): PIL
  bicubic resize of the uint8 face to the model size (PIL's antialiased filter; a torch resize
  differs by up to one level), x / 255 in float64, then (x - 0.5) / 0.5 in float32.
* The output is ``last_hidden_state`` after ``post_layernorm``: [1, 729, 1152] at the release
  size (the pooling head is not used).

Accepted files: the release folder (``config.json`` + ``model.safetensors``, on-disk names
``vision_model.*``), a full SigLIP checkpoint (the text tower is ignored), single files with or
without the ``vision_model.`` prefix, any float dtype.  The model is built on the meta device
and filled one tensor at a time, whatever transformers version names its modules.
"""
from __future__ import annotations

import math
import os
import re
from typing import Dict, Optional, Tuple, Union

import numpy as np
import torch

from ..loading.checkpoint import CheckpointError, TensorSource, open_weights
from ..loading.materialize import build_and_fill, storage_policy

FILE_PREFIXES = ("vision_model.", "model.vision_model.", "")
MARKER = "embeddings.patch_embedding.weight"
_LAYER_RE = re.compile(r"^encoder\.layers\.(\d+)\.")
# google/siglip-so400m-patch14-384
SO400M = dict(hidden_size=1152, intermediate_size=4304, num_hidden_layers=27, num_attention_heads=16,
              image_size=384, patch_size=14)


def _transformers():
    try:
        import transformers  # noqa: F401
        from transformers import SiglipVisionConfig, SiglipVisionModel
    except ImportError as e:  # pragma: no cover - depends on the install
        raise ImportError("the SkyReels-A1 face encoder needs the transformers package: pip install transformers "
                          "(%s)" % e) from e
    return SiglipVisionConfig, SiglipVisionModel


def detect_prefix(keys) -> Optional[str]:
    keys = set(keys)
    for p in FILE_PREFIXES:
        if p + MARKER in keys and p + "post_layernorm.weight" in keys:
            return p
    return None


def preprocess(face_uint8: np.ndarray, size: int) -> torch.Tensor:
    """[H, W, 3] uint8 RGB -> pixel values [1, 3, size, size] float32 in [-1, 1]."""
    from PIL import Image

    face = np.asarray(face_uint8)
    if face.dtype != np.uint8 or face.ndim != 3 or face.shape[2] != 3:
        raise ValueError("expected a uint8 RGB image [height, width, 3]")
    img = np.asarray(Image.fromarray(face).resize((size, size), Image.BICUBIC))
    x = (img.astype(np.float64) * (1 / 255)).astype(np.float32)
    x = (x - np.float32(0.5)) / np.float32(0.5)
    return torch.from_numpy(x.transpose(2, 0, 1).copy()).unsqueeze(0)


def _vision_config_dict(file_config: Optional[dict]) -> Optional[dict]:
    if not file_config:
        return None
    if "vision_config" in file_config:  # a full SiglipModel config
        return dict(file_config["vision_config"])
    if file_config.get("model_type", "siglip_vision_model") in ("siglip_vision_model", "siglip"):
        return dict(file_config)
    return None


def infer_config(shapes: Dict[str, Tuple[int, ...]], file_config: Optional[dict]):
    """A ``SiglipVisionConfig`` from the (prefix-free) shapes and the file's config.json."""
    SiglipVisionConfig, _ = _transformers()
    patch = shapes["embeddings.patch_embedding.weight"]
    hidden, patch_size = patch[0], patch[2]
    positions = shapes["embeddings.position_embedding.weight"][0]
    side = int(round(math.sqrt(positions)))
    so400m = (hidden, patch_size, side) == (SO400M["hidden_size"], SO400M["patch_size"], 27)
    fields = dict(hidden_size=hidden, patch_size=patch_size, image_size=SO400M["image_size"] if so400m else side * patch_size,
                  num_channels=patch[1],
                  intermediate_size=shapes["encoder.layers.0.mlp.fc1.weight"][0],
                  num_hidden_layers=1 + max(int(m.group(1)) for k in shapes for m in [_LAYER_RE.match(k)] if m),
                  num_attention_heads=SO400M["num_attention_heads"] if hidden == SO400M["hidden_size"] else max(1, hidden // 64),
                  hidden_act="gelu_pytorch_tanh", layer_norm_eps=1e-6, attention_dropout=0.0)
    declared = _vision_config_dict(file_config)
    if declared:
        for k in ("num_attention_heads", "layer_norm_eps", "hidden_act", "image_size"):
            if k in declared:
                fields[k] = declared[k]
    cfg = SiglipVisionConfig(**fields)
    cfg.vision_use_head = "head.probe" in shapes
    return cfg


class SiglipFaceEncoder:
    """``encode(face_uint8) -> [1, tokens, width]`` float32 (the SkyReels-A1 face embedding)."""

    def __init__(self, model: torch.nn.Module, config):
        self.model = model
        self.config = config
        self.source_path: Optional[str] = None

    @property
    def image_size(self) -> int:
        return int(self.config.image_size)

    @property
    def tokens(self) -> int:
        return (self.image_size // int(self.config.patch_size)) ** 2

    @property
    def width(self) -> int:
        return int(self.config.hidden_size)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @torch.no_grad()
    def encode_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        dtype = next(self.model.parameters()).dtype
        out = self.model(pixel_values=pixels.to(self.device, dtype))
        return out.last_hidden_state.float()

    def encode(self, face_uint8: np.ndarray) -> torch.Tensor:
        return self.encode_pixels(preprocess(face_uint8, self.image_size))


def _siglip_folder(path: str) -> str:
    """The SigLIP folder inside an A1 release folder, or ``path`` itself."""
    if os.path.isdir(path) and not any(f.endswith((".safetensors", ".bin")) for f in os.listdir(path)):
        subs = sorted(d for d in os.listdir(path) if d.lower().startswith("siglip") and os.path.isdir(os.path.join(path, d)))
        if subs:
            return os.path.join(path, subs[0])
    return path


def plan_siglip(source: TensorSource, file_config: Optional[dict] = None, config: Optional[dict] = None):
    """(SiglipVisionConfig, {file key: model key}) for the vision tower in ``source``; raises
    CheckpointError when it holds none.  Model keys follow the installed transformers (4.x
    nests them under ``vision_model.``, 5.x does not)."""
    _, SiglipVisionModel = _transformers()
    prefix = detect_prefix(source.keys())
    if prefix is None:
        raise CheckpointError(
            "%s is not a SigLIP vision model: expected keys like 'vision_model.embeddings.patch_embedding.weight'; "
            "found e.g. %s" % (source.files[0] if source.files else "the given weights",
                                ", ".join(sorted(source.keys())[:4])))
    bare = {k: k[len(prefix):] for k in source.keys()
            if k.startswith(prefix) and not k[len(prefix):].startswith(("text_model.", "logit_"))}
    try:
        cfg = infer_config({b: source.shape(k) for k, b in bare.items()}, config or file_config)
    except KeyError as e:
        raise CheckpointError("%s looks like SigLIP but lacks the tensor %s" % (source.files[0], e)) from e
    with torch.device("meta"):
        probe = SiglipVisionModel(cfg)
    inner = "vision_model." if any(k.startswith("vision_model.") for k in probe.state_dict()) else ""
    return cfg, {k: inner + b for k, b in bare.items()}


def load_siglip(path: Union[str, Dict[str, torch.Tensor], TensorSource], *, dtype: torch.dtype = torch.float32,
                device: Union[str, torch.device] = "cpu", config: Optional[dict] = None) -> SiglipFaceEncoder:
    """Load the SigLIP vision tower from local files (never downloads).  ``config``: the
    ``SiglipVisionConfig`` fields, for weights without a config.json beside them."""
    _, SiglipVisionModel = _transformers()
    if isinstance(path, str):
        path = _siglip_folder(os.path.expanduser(path))
    source, file_config, where = open_weights(path, "clip_vision")
    cfg, names = plan_siglip(source, file_config, config)
    policy = storage_policy(dtype, dtype, lambda k: False)
    model = build_and_fill(lambda: SiglipVisionModel(cfg), source, names.get, "SigLIP vision model", policy,
                           torch.device(device))
    for module in model.modules():  # non-persistent index buffers are not in the file
        if isinstance(getattr(module, "position_ids", None), torch.Tensor):
            module.position_ids = torch.arange(module.position_ids.shape[-1], device=device).expand(1, -1)
    model.eval().requires_grad_(False)
    enc = SiglipFaceEncoder(model, cfg)
    enc.source_path = where
    return enc
