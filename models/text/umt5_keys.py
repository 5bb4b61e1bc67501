"""State-dict naming of the umT5 encoder: official <-> transformers, detection, config inference.

* ``official``: ``models_t5_umt5-xxl-enc-bf16.pth`` (``token_embedding.weight``,
  ``blocks.0.attn.q.weight``, ``blocks.0.pos_embedding.embedding.weight``, ``norm.weight``).
* ``transformers``: ``UMT5EncoderModel`` / ``UMT5Model`` (diffusers ``text_encoder/`` folders and
  ComfyUI's ``umt5_xxl_fp16.safetensors`` / ``umt5_xxl_fp8_e4m3fn_scaled.safetensors``):
  ``shared.weight`` or ``encoder.embed_tokens.weight``, ``encoder.block.0.layer.0.SelfAttention.q.weight``,
  ``...relative_attention_bias.weight``, ``encoder.final_layer_norm.weight``.  Decoder keys,
  ``lm_head``, the ``spiece_model`` tokenizer bytes and the ``scaled_fp8`` marker are not weights
  of the encoder.

The model's own names are the official ones; shapes are identical in both namings.
"""
from __future__ import annotations

import re
from typing import Dict, Iterable, Mapping, Optional, Sequence, Tuple

from .umt5 import UMT5Config

# Prefixes other tools put in front of the names.
KNOWN_PREFIXES = ("", "text_encoder.", "model.", "t5xxl.transformer.", "umt5xxl.transformer.",
                  "text_encoders.umt5xxl.transformer.", "transformer.")

# official name inside ``blocks.{i}.`` -> transformers name inside ``encoder.block.{i}.layer.``
_BLOCK_O2T = {
    "norm1.weight": "0.layer_norm.weight",
    "attn.q.weight": "0.SelfAttention.q.weight",
    "attn.k.weight": "0.SelfAttention.k.weight",
    "attn.v.weight": "0.SelfAttention.v.weight",
    "attn.o.weight": "0.SelfAttention.o.weight",
    "pos_embedding.embedding.weight": "0.SelfAttention.relative_attention_bias.weight",
    "norm2.weight": "1.layer_norm.weight",
    "ffn.gate.0.weight": "1.DenseReluDense.wi_0.weight",
    "ffn.fc1.weight": "1.DenseReluDense.wi_1.weight",
    "ffn.fc2.weight": "1.DenseReluDense.wo.weight",
}
_BLOCK_T2O = {v: k for k, v in _BLOCK_O2T.items()}
_TOP_O2T = {"token_embedding.weight": "shared.weight", "norm.weight": "encoder.final_layer_norm.weight"}
_TOP_T2O = {v: k for k, v in _TOP_O2T.items()}
_TOP_T2O["encoder.embed_tokens.weight"] = "token_embedding.weight"  # the tied copy, same tensor

_OFFICIAL_BLOCK = re.compile(r"^blocks\.(\d+)\.(.+)$")
_TRANSFORMERS_BLOCK = re.compile(r"^encoder\.block\.(\d+)\.layer\.(.+)$")

OFFICIAL_MARKER = "blocks.0.pos_embedding.embedding.weight"
TRANSFORMERS_MARKER = "encoder.block.0.layer.0.SelfAttention.q.weight"
TOKENIZER_KEY = "spiece_model"


def official_to_transformers(key: str) -> Optional[str]:
    """Official name -> transformers name (None for a name outside the encoder)."""
    if key in _TOP_O2T:
        return _TOP_O2T[key]
    m = _OFFICIAL_BLOCK.match(key)
    if m and m.group(2) in _BLOCK_O2T:
        return "encoder.block.%s.layer.%s" % (m.group(1), _BLOCK_O2T[m.group(2)])
    return None


def transformers_to_official(key: str) -> Optional[str]:
    """Transformers name -> official name (None for decoder, lm_head and other keys)."""
    if key in _TOP_T2O:
        return _TOP_T2O[key]
    m = _TRANSFORMERS_BLOCK.match(key)
    if m and m.group(2) in _BLOCK_T2O:
        return "blocks.%s.%s" % (m.group(1), _BLOCK_T2O[m.group(2)])
    return None


def official_name(key: str) -> Optional[str]:
    """An official name as it is, or None when it is not a name of the encoder."""
    if key in _TOP_O2T:
        return key
    m = _OFFICIAL_BLOCK.match(key)
    return key if m and m.group(2) in _BLOCK_O2T else None


# --------------------------------------------------------------------------- detection


def detect_naming(keys: Iterable[str]) -> Optional[Tuple[str, str]]:
    """(naming, prefix) with naming "official" or "transformers"; None if not a umT5 encoder.

    A T5 v1.1 encoder (e.g. the Flux ``t5xxl``) shares one position table, stored in block 0
    only; it is not umT5 and is not detected.
    """
    keys = set(keys)
    for prefix in KNOWN_PREFIXES:
        if prefix + OFFICIAL_MARKER in keys and prefix + "blocks.0.attn.q.weight" in keys:
            return "official", prefix
        if prefix + TRANSFORMERS_MARKER in keys:
            return None if _shared_bias(keys, prefix) else ("transformers", prefix)
    return None


def _shared_bias(keys, prefix: str) -> bool:
    rel = prefix + "encoder.block.%d.layer.0.SelfAttention.relative_attention_bias.weight"
    has_second_block = prefix + "encoder.block.1.layer.0.SelfAttention.q.weight" in keys
    return rel % 0 in keys and has_second_block and rel % 1 not in keys


def is_shared_bias_t5(keys: Iterable[str]) -> bool:
    """True for a T5 v1.1-style encoder (position bias only in block 0): not umT5."""
    keys = set(keys)
    return any(_shared_bias(keys, p) for p in KNOWN_PREFIXES)


def key_converter(naming: str, prefix: str):
    """A function file key -> official key (None for keys that are not encoder weights)."""
    convert = transformers_to_official if naming == "transformers" else official_name

    def to_official(key: str) -> Optional[str]:
        if not key.startswith(prefix):
            return None
        return convert(key[len(prefix):])

    return to_official


def to_official_names(keys: Iterable[str], naming: str, prefix: str) -> Dict[str, str]:
    """file key -> official key for every encoder weight; the tied embedding copy is dropped."""
    keys = list(keys)
    convert = key_converter(naming, prefix)
    out: Dict[str, str] = {}
    for k in keys:
        ok = convert(k)
        if ok is not None:
            out[k] = ok
    if prefix + "shared.weight" in out and prefix + "encoder.embed_tokens.weight" in out:
        del out[prefix + "encoder.embed_tokens.weight"]
    return out


# --------------------------------------------------------------------------- config


def infer_config(shapes: Mapping[str, Sequence[int]]) -> UMT5Config:
    """Sizes from official-named shapes.  Every size of the encoder is visible in the shapes:
    the position tables are [num_buckets, num_heads]."""

    def need(k):
        if k not in shapes:
            raise KeyError(k)
        return list(shapes[k])

    vocab, dim = need("token_embedding.weight")
    dim_attn = need("blocks.0.attn.q.weight")[0]
    dim_ffn = need("blocks.0.ffn.fc1.weight")[0]
    num_buckets, num_heads = need("blocks.0.pos_embedding.embedding.weight")
    layers = 1 + max(int(m.group(1)) for k in shapes for m in [_OFFICIAL_BLOCK.match(k)] if m)
    return UMT5Config(vocab=vocab, dim=dim, dim_attn=dim_attn, dim_ffn=dim_ffn, num_heads=num_heads,
                      num_layers=layers, num_buckets=num_buckets)


def expected_shapes(cfg: UMT5Config) -> Dict[str, Tuple[int, ...]]:
    """Official key -> shape for a config (built on the meta device)."""
    import torch

    from .umt5 import UMT5Encoder

    with torch.device("meta"):
        m = UMT5Encoder(cfg)
    return {k: tuple(v.shape) for k, v in m.state_dict().items()}
