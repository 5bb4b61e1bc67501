"""Load the umT5 text encoder and its tokenizer from any file in circulation.

Accepted: the official ``models_t5_umt5-xxl-enc-bf16.pth`` (read with ``weights_only=True``),
diffusers ``text_encoder/`` folders (transformers ``UMT5EncoderModel`` shards), ComfyUI's
``umt5_xxl_fp16.safetensors`` and ``umt5_xxl_fp8_e4m3fn_scaled.safetensors`` (scaled fp8 with
per-weight ``scale_weight``), in-memory state dicts and :class:`TensorSource` objects.  The
naming and the sizes are detected from the keys and shapes; the model is built on the meta
device and filled one tensor at a time.

The tokenizer is found, in order: ``tokenizer_path``; the ``spiece_model`` tensor embedded in
ComfyUI's files; a ``tokenizer/`` or ``google/umt5-xxl/`` folder (or a folder holding
``tokenizer.json`` / ``spiece.model``) beside the weights or one or two levels above them.
"""
from __future__ import annotations

import os
import re
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch

from ..common.ops import default_compute_dtype
from ..loading.checkpoint import CheckpointError, TensorSource, open_weights
from ..loading.materialize import build_and_fill, parse_weight_dtype, storage_policy
from . import umt5_keys
from .prompt import TEXT_LEN, encode_prompts, encode_token_ids, tokenize_prompts
from .tokenizer import TokenizerError, UMT5Tokenizer
from .umt5 import UMT5Config, UMT5Encoder

_FP8_ELIGIBLE = re.compile(r"^blocks\.\d+\.(attn\.[qkvo]|ffn\.(gate\.0|fc1|fc2))\.weight$")

# Folders that hold the umT5 tokenizer, relative to a folder beside or above the weights.
TOKENIZER_FOLDERS = ("tokenizer", os.path.join("google", "umt5-xxl"), "umt5-xxl", "")


def fp8_eligible(key: str) -> bool:
    """Weights stored in fp8 when asked: the Linear weights of the blocks."""
    return bool(_FP8_ELIGIBLE.match(key))


def detect(source: TensorSource) -> Optional[Tuple[str, str]]:
    """(naming, prefix) if ``source`` holds a umT5 encoder, else None."""
    return umt5_keys.detect_naming(source.keys())


class TextEncoder:
    """umT5 encoder + tokenizer + config.  ``encode(prompts)`` -> [B, 512, dim] float32, zero pad rows."""

    def __init__(self, model: UMT5Encoder, tokenizer: Optional[UMT5Tokenizer], config: UMT5Config,
                 text_len: int = TEXT_LEN):
        self.model = model
        self.tokenizer = tokenizer
        self.config = config
        self.text_len = text_len
        self.source_path: Optional[str] = None

    @property
    def device(self) -> torch.device:
        return self.model.device

    @property
    def dim(self) -> int:
        return self.config.dim

    def to(self, device) -> "TextEncoder":
        """Move the weights (e.g. to the offload device and back)."""
        self.model.to(device)
        self.model._bucket_cache = {}
        return self

    def tokenize(self, prompts: Union[str, Sequence[str]]) -> Tuple[torch.Tensor, torch.Tensor]:
        return tokenize_prompts(self._need_tokenizer(), prompts, self.text_len)

    def encode(self, prompts: Union[str, Sequence[str]], device=None) -> torch.Tensor:
        """[B, text_len, dim] float32 context; ``device`` is where the work runs (default: the weights')."""
        return encode_prompts(self.model, self._need_tokenizer(), prompts, self.text_len, device=device)

    def encode_ids(self, ids: torch.Tensor, mask: torch.Tensor, device=None) -> torch.Tensor:
        """Context for given token ids and mask [B, L]: encoder output with padded rows zeroed."""
        return encode_token_ids(self.model, ids, mask, device=device)

    def _need_tokenizer(self) -> UMT5Tokenizer:
        if self.tokenizer is None:
            raise TokenizerError("this text encoder was loaded without a tokenizer; pass tokenizer_path")
        return self.tokenizer


# --------------------------------------------------------------------------- model


def config_from_source(source: TensorSource, names: Dict[str, str], file_config: Optional[dict] = None) -> UMT5Config:
    shapes = {ok: source.shape(fk) for fk, ok in names.items()}
    try:
        cfg = umt5_keys.infer_config(shapes)
    except KeyError as e:
        raise CheckpointError("%s looks like a umT5 encoder but lacks the tensor %s" % (source.files[0], e)) from e
    if file_config and "relative_attention_max_distance" in file_config and "d_model" in file_config:
        declared = UMT5Config.from_transformers(file_config)
        if declared.dim == cfg.dim:
            cfg.max_distance = declared.max_distance
            cfg.eps = declared.eps
    cfg.validate()
    return cfg


def load_umt5_model(path: Union[str, Dict[str, torch.Tensor], TensorSource], *, weight_dtype: str = "auto",
                    compute_dtype: Optional[torch.dtype] = None, device: Union[str, torch.device] = "cpu",
                    config: Optional[UMT5Config] = None) -> Tuple[UMT5Encoder, UMT5Config]:
    """The encoder alone (no tokenizer).  Returns (model, config), eval mode, no gradients."""
    source, file_config, where = open_weights(path, "umt5")
    return _build(source, file_config, where, weight_dtype, compute_dtype, device, config)


def _build(source: TensorSource, file_config: Optional[dict], where: Optional[str], weight_dtype: str,
           compute_dtype: Optional[torch.dtype], device, config: Optional[UMT5Config] = None
           ) -> Tuple[UMT5Encoder, UMT5Config]:
    from ..loading.checkpoint import config_file, require_set

    if file_config and where:
        require_set(file_config, ("vocab_size", "d_model", "d_kv", "d_ff", "num_heads", "num_layers",
                                  "relative_attention_num_buckets", "relative_attention_max_distance",
                                  "layer_norm_epsilon"), config_file(where, "umt5"))
    device = torch.device(device)
    if compute_dtype is None:
        compute_dtype = default_compute_dtype(device)
    found = detect(source)
    if found is None:
        if umt5_keys.is_shared_bias_t5(source.keys()):
            raise CheckpointError(
                "%s is a T5 v1.1 encoder (one shared position table, e.g. Flux's t5xxl), not umT5-XXL. "
                "SkyReels / Wan need umt5-xxl (umt5_xxl_fp16.safetensors or models_t5_umt5-xxl-enc-bf16.pth)."
                % (where or source.files[0]))
        raise _not_umt5(where, source)
    naming, prefix = found
    names = umt5_keys.to_official_names(source.keys(), naming, prefix)
    if config is None:
        config = config_from_source(source, names, file_config)
    policy = storage_policy(parse_weight_dtype(weight_dtype), compute_dtype, fp8_eligible)
    model = build_and_fill(lambda: UMT5Encoder(config), source, names.get, "umT5 encoder (%s naming)" % naming,
                           policy, device)
    model.compute_dtype = compute_dtype
    model._bucket_cache = {}
    model.eval().requires_grad_(False)
    return model, config


# --------------------------------------------------------------------------- tokenizer


def embedded_tokenizer(source: TensorSource) -> Optional[UMT5Tokenizer]:
    """The tokenizer stored in a ComfyUI file as the ``spiece_model`` tensor, if any."""
    for k in source.keys():
        if k == umt5_keys.TOKENIZER_KEY or k.endswith("." + umt5_keys.TOKENIZER_KEY):
            return UMT5Tokenizer.from_tensor(source.get(k), "%s (embedded %s)" % (source.files[0], k))
    return None


def tokenizer_candidates(weights_path: str) -> List[str]:
    """Folders searched for a tokenizer, nearest first."""
    start = os.path.abspath(weights_path)
    base = start if os.path.isdir(start) else os.path.dirname(start)
    out: List[str] = []
    level = base
    for _ in range(3):  # beside the weights, one and two levels up
        for sub in TOKENIZER_FOLDERS:
            out.append(os.path.join(level, sub) if sub else level)
        parent = os.path.dirname(level)
        if parent == level:
            break
        level = parent
    return out


def find_tokenizer(source: TensorSource, weights_path: Optional[str],
                   tokenizer_path: Optional[str] = None) -> UMT5Tokenizer:
    """The tokenizer for these weights, or a TokenizerError that says where it looked."""
    if tokenizer_path:
        return UMT5Tokenizer.load(tokenizer_path)
    tok = embedded_tokenizer(source)
    if tok is not None:
        return tok
    looked: List[str] = []
    if weights_path:
        for folder in tokenizer_candidates(weights_path):
            if not any(os.path.isfile(os.path.join(folder, f)) for f in ("tokenizer.json", "spiece.model")):
                looked.append(folder)
                continue
            tok = UMT5Tokenizer.from_folder(folder)
            if tok.is_umt5_like():
                return tok
            looked.append(folder + " (a tokenizer, but not umT5's: ids 0/1 are not <pad>/</s>)")
    where = ", ".join(looked[:6]) + (", ..." if len(looked) > 6 else "") if looked else \
        "(no folder to search: the weights were given in memory)"
    raise TokenizerError(
        "no umT5 tokenizer found for %s: it has no embedded 'spiece_model' tensor and no umT5 tokenizer.json or "
        "spiece.model was found in: %s. Put the files of google/umt5-xxl in a 'tokenizer' folder beside the "
        "weights, or pass tokenizer_path." % (weights_path or "these weights", where))


def _not_umt5(where: Optional[str], source: TensorSource) -> CheckpointError:
    from ..loading.identify import wrong_component

    return wrong_component(where or source.files[0], source, "umt5",
                           "'blocks.0.attn.q.weight' (official) or 'encoder.block.0.layer.0.SelfAttention.q.weight' "
                           "(transformers / ComfyUI)")


def load_umt5(path: Union[str, Dict[str, torch.Tensor], TensorSource], *, weight_dtype: str = "auto",
              compute_dtype: Optional[torch.dtype] = None, device: Union[str, torch.device] = "cpu",
              tokenizer_path: Optional[str] = None) -> TextEncoder:
    """Load the umT5 encoder and its tokenizer.

    Args:
        path: a file, a model folder, a diffusers pipeline or ``text_encoder/`` folder, an
            in-memory state dict, or a :class:`TensorSource`.
        weight_dtype: storage of the weights: "auto" (fp8 files stay fp8, others in the
            compute dtype or narrower), "bf16", "fp16", "fp32", "fp8_e4m3fn", "fp8_e5m2".
        compute_dtype: dtype of the matrix products; default float32 on CPU, bf16 elsewhere.
        device: where the weights are placed.
        tokenizer_path: a tokenizer folder or file (``tokenizer.json`` / ``spiece.model``);
            default: the embedded one, else a folder found beside the weights.
    """
    source, file_config, where = open_weights(path, "umt5")
    if detect(source) is None and not umt5_keys.is_shared_bias_t5(source.keys()):
        raise _not_umt5(where, source)  # before the tokenizer search, which would only say "no tokenizer"
    tokenizer = find_tokenizer(source, where, tokenizer_path)  # fail early, before the big read
    model, config = _build(source, file_config, where, weight_dtype, compute_dtype, device)
    if tokenizer.vocab_size > config.vocab:
        raise TokenizerError("the tokenizer (%s) has %d tokens but the encoder's embedding only %d rows; they do "
                             "not belong together" % (tokenizer.source, tokenizer.vocab_size, config.vocab))
    enc = TextEncoder(model, tokenizer, config)
    enc.source_path = where
    return enc
