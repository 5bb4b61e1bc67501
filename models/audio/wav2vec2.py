"""The wav2vec2 audio encoder of SkyReels-V3 talking avatar (chinese-wav2vec2-base), loaded from
local files into transformers' ``Wav2Vec2Model``, and its per-video-frame features.

Accepted files: the released folder (``config.json``, ``preprocessor_config.json`` and the
``pytorch_model.bin`` of a ``Wav2Vec2ForPreTraining``: names under ``wav2vec2.``, the
positional convolution as ``weight_g`` / ``weight_v``, pre-training heads that are ignored),
a ``Wav2Vec2Model`` folder or single file (``.safetensors`` / ``.bin``, fp32 / fp16 / bf16),
any prefix in front of the names.  Nothing is ever downloaded.  Without a ``config.json`` the
configuration is read from the shapes.

Features (:func:`audio_features`, the official ``get_embedding``): the 16 kHz waveform through
the CNN feature encoder (50 Hz), resampled linearly (aligned end points) to exactly
``ceil(seconds * 25)`` frames, then the transformer encoder; the outputs of all its layers are
stacked: ``[frames, layers, hidden]`` = one 12 x 768 feature per video frame at 25 fps.
"""
from __future__ import annotations

import math
import os
import re
from typing import Dict, Optional, Tuple, Union

import torch
import torch.nn.functional as F

from ..loading.checkpoint import CheckpointError, TensorSource, open_weights
from ..loading.materialize import build_and_fill, parse_weight_dtype, storage_policy

SAMPLE_RATE = 16000
FPS = 25
_MARKER = "feature_projection.projection.weight"
_ALIASES = (("encoder.pos_conv_embed.conv.weight_g", "encoder.pos_conv_embed.conv.parametrizations.weight.original0"),
            ("encoder.pos_conv_embed.conv.weight_v", "encoder.pos_conv_embed.conv.parametrizations.weight.original1"))
_LAYER = re.compile(r"^encoder\.layers\.(\d+)\.")
_CONV = re.compile(r"^feature_extractor\.conv_layers\.(\d+)\.conv\.weight$")


def _transformers():
    try:
        from transformers import Wav2Vec2Config, Wav2Vec2Model
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("the audio encoder needs transformers: pip install transformers") from e
    return Wav2Vec2Config, Wav2Vec2Model


def detect_prefix(keys) -> Optional[str]:
    """The prefix in front of the ``Wav2Vec2Model`` names ("" or e.g. "wav2vec2."), None if not wav2vec2."""
    for k in keys:
        if k.endswith(_MARKER):
            return k[: -len(_MARKER)]
    return None


def to_model_name(key: str, prefix: str) -> Optional[str]:
    """File key -> ``Wav2Vec2Model`` key, or None for keys that are not the encoder's
    (pre-training heads such as ``quantizer.*``, ``project_q.*``, ``project_hid.*``)."""
    if not key.startswith(prefix):
        return None
    name = key[len(prefix):]
    for old, new in _ALIASES:
        if name == old:
            return new
    return name


def config_from_shapes(shapes: Dict[str, Tuple[int, ...]]) -> dict:
    """``Wav2Vec2Config`` fields of a wav2vec2-base-like encoder read from model-named shapes."""
    convs = sorted((int(m.group(1)), s) for k, s in shapes.items() for m in [_CONV.match(k)] if m)
    hidden = int(shapes[_MARKER][0])
    pos = shapes["encoder.pos_conv_embed.conv.parametrizations.weight.original1"]
    layer_norm_cnn = "feature_extractor.conv_layers.1.layer_norm.weight" in shapes
    if len(convs) != 7:
        raise CheckpointError("the wav2vec2 file has %d CNN layers; without a config.json only the usual 7 are "
                              "understood (put the model's config.json beside it)" % len(convs))
    return dict(
        hidden_size=hidden,
        num_hidden_layers=1 + max(int(m.group(1)) for k in shapes for m in [_LAYER.match(k)] if m),
        num_attention_heads=max(1, hidden // 64),
        intermediate_size=int(shapes["encoder.layers.0.feed_forward.intermediate_dense.weight"][0]),
        conv_dim=[int(s[0]) for _, s in convs], conv_kernel=[int(s[2]) for _, s in convs],
        conv_stride=[5, 2, 2, 2, 2, 2, 2],
        conv_bias="feature_extractor.conv_layers.0.conv.bias" in shapes,
        feat_extract_norm="layer" if layer_norm_cnn else "group",
        do_stable_layer_norm=layer_norm_cnn,
        num_conv_pos_embeddings=int(pos[2]), num_conv_pos_embedding_groups=hidden // int(pos[1]),
        mask_time_prob=0.05 if "masked_spec_embed" in shapes else 0.0,
        apply_spec_augment="masked_spec_embed" in shapes,
    )


class AudioEncoder:
    """A loaded wav2vec2 encoder: ``features(waveform)`` -> [frames, layers, hidden] at 25 fps."""

    def __init__(self, model: torch.nn.Module, do_normalize: bool = False, path: Optional[str] = None):
        self.model = model
        self.do_normalize = do_normalize  # the feature extractor's zero-mean unit-variance step
        self.path = path
        if getattr(model.config, "do_stable_layer_norm", False):
            raise CheckpointError("%s is a pre-LN (large) wav2vec2; the talking-avatar models use wav2vec2-base "
                                  "(chinese-wav2vec2-base)" % (path or "this audio encoder"))

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return self.model.feature_projection.projection.weight.dtype

    @property
    def layers(self) -> int:
        return int(self.model.config.num_hidden_layers)

    @property
    def hidden_size(self) -> int:
        return int(self.model.config.hidden_size)

    @torch.no_grad()
    def features(self, waveform: torch.Tensor, fps: int = FPS, debug: Optional[dict] = None) -> torch.Tensor:
        """16 kHz mono ``waveform`` [N] -> float32 [ceil(N / 16000 * fps), layers, hidden] on the CPU.

        ``debug`` (a dict) receives ``input_values`` and ``extract_features`` (the CNN output after
        resampling) for tests."""
        if waveform.dim() != 1 or waveform.shape[0] < 400:
            raise ValueError("the audio encoder needs a mono 16 kHz waveform of at least 400 samples, got %s"
                             % list(waveform.shape))
        x = waveform.float()
        if self.do_normalize:
            x = (x - x.mean()) / torch.sqrt(x.var(unbiased=False) + 1e-7)
        frames = int(math.ceil(waveform.shape[0] / SAMPLE_RATE * fps))  # float64, as the official code
        m = self.model
        dev, dt = self.device, self.dtype
        cnn = m.feature_extractor(x.to(dev, dt)[None])                                      # [1, C, L]
        cnn = F.interpolate(cnn.float(), size=frames, mode="linear", align_corners=True)  # [1, C, frames]
        extract = cnn.transpose(1, 2)
        h, _ = m.feature_projection(extract.to(dt))
        enc = m.encoder
        h = h + enc.pos_conv_embed(h)
        h = enc.layer_norm(h)
        states = []
        for layer in enc.layers:
            out = layer(h, attention_mask=None)
            h = out[0] if isinstance(out, tuple) else out
            states.append(h[0].float().cpu())
        if debug is not None:
            debug["input_values"] = x.cpu()
            debug["extract_features"] = extract[0].cpu()
        return torch.stack(states, dim=1)


def load_wav2vec2(path: Union[str, Dict[str, torch.Tensor], TensorSource], *, dtype: str = "fp32",
                  device: Union[str, torch.device] = "cpu", config: Optional[dict] = None,
                  do_normalize: Optional[bool] = None) -> AudioEncoder:
    """Load a wav2vec2 encoder (see the module docstring for the files).  ``dtype``: "fp32"
    (default, as the official code), "fp16" or "bf16".  ``config``: ``Wav2Vec2Config`` fields
    (else the folder's ``config.json``, else read from the shapes).  ``do_normalize``: the
    feature extractor's normalisation (else the folder's ``preprocessor_config.json``, else
    False, as chinese-wav2vec2-base)."""
    Wav2Vec2Config, Wav2Vec2Model = _transformers()
    source, file_config, where = open_weights(path, None)
    prefix = detect_prefix(source.keys())
    if prefix is None:
        raise CheckpointError("%s is not a wav2vec2 model: expected keys like 'feature_projection.projection.weight' "
                              "(or 'wav2vec2.feature_projection...'); found e.g. %s"
                              % (where or "the given weights", ", ".join(sorted(source.keys())[:4])))
    names = {k: n for k in source.keys() for n in [to_model_name(k, prefix)] if n is not None}
    if config is None and file_config and "hidden_size" in file_config:
        config = {k: v for k, v in file_config.items() if not k.startswith("_") and k != "architectures"}
    if config is None:
        config = config_from_shapes({n: source.shape(k) for k, n in names.items()})
    cfg = Wav2Vec2Config(**config)
    if do_normalize is None:
        do_normalize = _preprocessor_normalize(where)
    target = parse_weight_dtype(dtype)
    policy = storage_policy(target or torch.float32, torch.float32, lambda k: False)
    model = build_and_fill(lambda: Wav2Vec2Model(cfg), source, names.get, "wav2vec2 audio encoder", policy,
                           torch.device(device))
    model.eval().requires_grad_(False)
    return AudioEncoder(model, bool(do_normalize), where)


def _preprocessor_normalize(where: Optional[str]) -> bool:
    if not where:
        return False
    folder = where if os.path.isdir(where) else os.path.dirname(where)
    p = os.path.join(folder, "preprocessor_config.json")
    if os.path.isfile(p):
        import json

        try:
            with open(p) as f:
                return bool(json.load(f).get("do_normalize", False))
        except (OSError, ValueError):
            return False
    return False
