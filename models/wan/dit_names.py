"""Official <-> diffusers names of the Wan DiT's parameters (shapes are identical).

Below the model and its key handling: the model gives the diffusers spelling of its names
as aliases (LoRAs made for diffusers' transformer), ``dit_keys`` renames diffusers files.
"""
from __future__ import annotations

import re
from typing import Optional

# official -> diffusers, for names outside the blocks (longest match first).
_TOP_O2D = [
    ("time_embedding.0.", "condition_embedder.time_embedder.linear_1."),
    ("time_embedding.2.", "condition_embedder.time_embedder.linear_2."),
    ("text_embedding.0.", "condition_embedder.text_embedder.linear_1."),
    ("text_embedding.2.", "condition_embedder.text_embedder.linear_2."),
    ("time_projection.1.", "condition_embedder.time_proj."),
    ("img_emb.proj.0.", "condition_embedder.image_embedder.norm1."),
    ("img_emb.proj.1.", "condition_embedder.image_embedder.ff.net.0.proj."),
    ("img_emb.proj.3.", "condition_embedder.image_embedder.ff.net.2."),
    ("img_emb.proj.4.", "condition_embedder.image_embedder.norm2."),
    ("fps_projection.0.", "fps_projection.net.0.proj."),
    ("fps_projection.2.", "fps_projection.net.2."),
    ("head.head.", "proj_out."),
]
_TOP_EXACT_O2D = {
    "head.modulation": "scale_shift_table",
    "img_emb.emb_pos": "condition_embedder.image_embedder.pos_embed",
}
# inside blocks.{i}.
_BLOCK_O2D = [
    ("self_attn.q.", "attn1.to_q."), ("self_attn.k.", "attn1.to_k."), ("self_attn.v.", "attn1.to_v."),
    ("self_attn.o.", "attn1.to_out.0."), ("self_attn.norm_q.", "attn1.norm_q."),
    ("self_attn.norm_k.", "attn1.norm_k."),
    ("cross_attn.q.", "attn2.to_q."), ("cross_attn.k.", "attn2.to_k."), ("cross_attn.v.", "attn2.to_v."),
    ("cross_attn.o.", "attn2.to_out.0."), ("cross_attn.norm_q.", "attn2.norm_q."),
    ("cross_attn.norm_k.", "attn2.norm_k."),
    ("cross_attn.k_img.", "attn2.add_k_proj."), ("cross_attn.v_img.", "attn2.add_v_proj."),
    ("cross_attn.norm_k_img.", "attn2.norm_added_k."),
    ("norm3.", "norm2."),
    ("ffn.0.", "ffn.net.0.proj."), ("ffn.2.", "ffn.net.2."),
]
_BLOCK_EXACT_O2D = {"modulation": "scale_shift_table"}

# Other spellings seen in circulation (diffusers single-file converter keeps fps_projection.N).
_EXTRA_D2O = [("fps_projection.0.", "fps_projection.0."), ("fps_projection.2.", "fps_projection.2.")]

BLOCK_RE = re.compile(r"^blocks\.(\d+)\.(.*)$")


def _swap(rest: str, table, exact) -> Optional[str]:
    if rest in exact:
        return exact[rest]
    for a, b in table:
        if rest.startswith(a):
            return b + rest[len(a):]
    return None


def official_to_diffusers(key: str) -> str:
    m = BLOCK_RE.match(key)
    if m:
        new = _swap(m.group(2), _BLOCK_O2D, _BLOCK_EXACT_O2D)
        return "blocks.%s.%s" % (m.group(1), new if new is not None else m.group(2))
    new = _swap(key, _TOP_O2D, _TOP_EXACT_O2D)
    return new if new is not None else key


def _invert(table):
    return [(b, a) for a, b in table]


_TOP_D2O = sorted(_invert(_TOP_O2D) + _EXTRA_D2O, key=lambda p: -len(p[0]))
_TOP_EXACT_D2O = {v: k for k, v in _TOP_EXACT_O2D.items()}
_BLOCK_D2O = sorted(_invert(_BLOCK_O2D), key=lambda p: -len(p[0]))
_BLOCK_EXACT_D2O = {v: k for k, v in _BLOCK_EXACT_O2D.items()}


def diffusers_to_official(key: str) -> str:
    m = BLOCK_RE.match(key)
    if m:
        new = _swap(m.group(2), _BLOCK_D2O, _BLOCK_EXACT_D2O)
        return "blocks.%s.%s" % (m.group(1), new if new is not None else m.group(2))
    new = _swap(key, _TOP_D2O, _TOP_EXACT_D2O)
    return new if new is not None else key
