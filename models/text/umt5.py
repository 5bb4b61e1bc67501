"""The umT5 encoder: the text encoder of Wan2.1 and SkyReels-V2 / A2 / V3 (umT5-XXL).

Same network as the official ``T5Encoder`` of ``skyreels_v2_infer/modules/t5.py``:

* token embedding, then ``num_layers`` pre-norm blocks, then a final norm;
* each block has its **own** relative position bias table (bidirectional buckets,
  ``num_buckets`` 32, max distance 128), added to the attention logits;
* attention logits are **not** scaled by 1/sqrt(head_dim); padded keys are masked out;
* feed-forward ``fc2(fc1(x) * gelu_tanh(gate(x)))``;
* T5 RMS norm (no mean subtraction, no bias), eps 1e-6.

Parameter names are the official ones (``blocks.0.attn.q.weight``,
``blocks.0.pos_embedding.embedding.weight`` ...); ``umt5_keys`` maps the transformers naming.
The residual stream and the norms run in float32, the matrix products in ``compute_dtype``
with the stored weights (fp32 / bf16 / fp16 / fp8) cast one layer at a time.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Dict, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...host import check_interrupt
from ..common import ops


@dataclass
class UMT5Config:
    """Sizes of a umT5 encoder.  The defaults are umT5-XXL."""

    vocab: int = 256384
    dim: int = 4096
    dim_attn: int = 4096
    dim_ffn: int = 10240
    num_heads: int = 64
    num_layers: int = 24
    num_buckets: int = 32
    max_distance: int = 128
    eps: float = 1e-6

    @property
    def head_dim(self) -> int:
        return self.dim_attn // self.num_heads

    def validate(self) -> None:
        if self.dim_attn % self.num_heads:
            raise ValueError("dim_attn %d is not divisible by num_heads %d" % (self.dim_attn, self.num_heads))
        if self.num_buckets < 4 or self.num_buckets % 2:
            raise ValueError("num_buckets must be an even number >= 4, not %d" % self.num_buckets)

    @classmethod
    def from_official(cls, cfg: Dict[str, Any]) -> "UMT5Config":
        """From the official ``T5Encoder`` constructor fields (vocab, dim, dim_attn ...)."""
        dim = int(cfg.get("dim", 4096))
        return cls(
            vocab=int(cfg.get("vocab", cfg.get("vocab_size", 256384))),
            dim=dim,
            dim_attn=int(cfg.get("dim_attn", dim)),
            dim_ffn=int(cfg.get("dim_ffn", 10240)),
            num_heads=int(cfg.get("num_heads", 64)),
            num_layers=int(cfg.get("num_layers", cfg.get("encoder_layers", 24))),
            num_buckets=int(cfg.get("num_buckets", 32)),
        )

    @classmethod
    def from_transformers(cls, cfg: Dict[str, Any]) -> "UMT5Config":
        """From a transformers ``UMT5Config`` (``config.json`` of a ``text_encoder/`` folder)."""
        heads = int(cfg.get("num_heads", 64))
        d_model = int(cfg.get("d_model", 4096))
        return cls(
            vocab=int(cfg.get("vocab_size", 256384)),
            dim=d_model,
            dim_attn=int(cfg.get("d_kv", d_model // heads)) * heads,
            dim_ffn=int(cfg.get("d_ff", 10240)),
            num_heads=heads,
            num_layers=int(cfg.get("num_layers", 24)),
            num_buckets=int(cfg.get("relative_attention_num_buckets", 32)),
            max_distance=int(cfg.get("relative_attention_max_distance", 128)),
            eps=float(cfg.get("layer_norm_epsilon", 1e-6)),
        )

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------- position bias


def relative_position_buckets(lq: int, lk: int, num_buckets: int = 32, max_distance: int = 128) -> torch.Tensor:
    """[lq, lk] int64 bucket of every (query, key) pair, bidirectional T5 bucketing.

    Half the buckets are for keys after the query.  Within each half, distances below
    ``num_buckets // 4`` get a bucket each; larger ones share log-spaced buckets up to
    ``max_distance``.  Computed on the CPU in float32 with the same operations as the official
    code, so the bucket boundaries match it exactly.
    """
    rel = torch.arange(lk).unsqueeze(0) - torch.arange(lq).unsqueeze(1)  # key - query
    half = num_buckets // 2
    buckets = (rel > 0).long() * half
    dist = rel.abs()
    max_exact = half // 2
    large = max_exact + (torch.log(dist.clamp(min=1).float() / max_exact)
                         / math.log(max_distance / max_exact) * (half - max_exact)).long()
    large = large.clamp(max=half - 1)
    return buckets + torch.where(dist < max_exact, dist, large)


class RelativePositionBias(nn.Module):
    """Learned per-head bias for every bucket: ``embedding.weight`` [num_buckets, num_heads]."""

    def __init__(self, num_buckets: int, num_heads: int, max_distance: int = 128):
        super().__init__()
        self.num_buckets = num_buckets
        self.max_distance = max_distance
        self.embedding = ops.Embedding(num_buckets, num_heads)

    def forward(self, buckets: torch.Tensor) -> torch.Tensor:
        """[Lq, Lk] buckets -> [1, H, Lq, Lk] float32 bias."""
        return self.embedding(buckets).permute(2, 0, 1).unsqueeze(0)


# --------------------------------------------------------------------------- layers


class TokenEmbedding(ops.Embedding):
    """Looks rows up in the stored dtype, then upcasts only those rows to float32.

    The umT5-XXL table is 256384 x 4096; upcasting it whole would cost 4 GB per call.
    """

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        w = self.weight
        rows = w.index_select(0, ids.reshape(-1).to(w.device)).float()
        scale = getattr(self, "scale_weight", None)
        if scale is not None:
            rows = rows * scale.float().to(rows.device)
        return rows.reshape(*ids.shape, w.shape[1]).to(ids.device)


class T5Attention(nn.Module):
    """Multi-head self-attention without logit scaling; the bias carries positions and mask."""

    def __init__(self, dim: int, dim_attn: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.q = ops.Linear(dim, dim_attn, bias=False)
        self.k = ops.Linear(dim, dim_attn, bias=False)
        self.v = ops.Linear(dim, dim_attn, bias=False)
        self.o = ops.Linear(dim_attn, dim, bias=False)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        B, L, _ = x.shape
        n = self.num_heads
        q = self.q(x).view(B, L, n, -1).transpose(1, 2)
        k = self.k(x).view(B, L, n, -1).transpose(1, 2)
        v = self.v(x).view(B, L, n, -1).transpose(1, 2)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=1.0)
        return self.o(out.transpose(1, 2).reshape(B, L, -1))


class T5FeedForward(nn.Module):
    """``fc2(fc1(x) * gelu_tanh(gate(x)))``; ``gate`` is a one-layer Sequential as in the official."""

    def __init__(self, dim: int, dim_ffn: int):
        super().__init__()
        self.gate = nn.Sequential(ops.Linear(dim, dim_ffn, bias=False))
        self.fc1 = ops.Linear(dim, dim_ffn, bias=False)
        self.fc2 = ops.Linear(dim_ffn, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc1(x) * F.gelu(self.gate[0](x), approximate="tanh")
        if h.dtype == torch.float16:  # umT5 activations can exceed the fp16 range
            h = h.clamp(-65000.0, 65000.0)
        return self.fc2(h)


class T5Block(nn.Module):
    def __init__(self, cfg: UMT5Config):
        super().__init__()
        self.norm1 = ops.RMSNorm(cfg.dim, cfg.eps)
        self.attn = T5Attention(cfg.dim, cfg.dim_attn, cfg.num_heads)
        self.norm2 = ops.RMSNorm(cfg.dim, cfg.eps)
        self.ffn = T5FeedForward(cfg.dim, cfg.dim_ffn)
        self.pos_embedding = RelativePositionBias(cfg.num_buckets, cfg.num_heads, cfg.max_distance)

    def forward(self, x: torch.Tensor, buckets: torch.Tensor, key_mask: Optional[torch.Tensor],
                dtype: torch.dtype) -> torch.Tensor:
        bias = self.pos_embedding(buckets).to(dtype)  # [1, H, L, L]
        if key_mask is not None:
            bias = bias.masked_fill(~key_mask, torch.finfo(dtype).min)  # [B, H, L, L]
        x = x + self.attn(self.norm1(x).to(dtype), bias).float()
        x = x + self.ffn(self.norm2(x).to(dtype)).float()
        return x


# --------------------------------------------------------------------------- encoder


class UMT5Encoder(nn.Module):
    """``forward(ids [B, L], mask [B, L]) -> [B, L, dim]`` float32, after the final norm.

    ``mask`` is 1 for real tokens (EOS included) and 0 for padding; padded keys are excluded
    from attention.  Rows at padded positions are still computed (they are not zero); callers
    that need the official ``context`` multiply by the mask (see ``prompt.encode_token_ids``).
    """

    def __init__(self, cfg: UMT5Config):
        super().__init__()
        cfg.validate()
        self.config = cfg
        self.token_embedding = TokenEmbedding(cfg.vocab, cfg.dim)
        self.blocks = nn.ModuleList([T5Block(cfg) for _ in range(cfg.num_layers)])
        self.norm = ops.RMSNorm(cfg.dim, cfg.eps)
        self.compute_dtype: torch.dtype = torch.float32
        self._bucket_cache: Dict[tuple, torch.Tensor] = {}

    @property
    def device(self) -> torch.device:
        return self.norm.weight.device

    def buckets(self, length: int, device: torch.device) -> torch.Tensor:
        key = (length, str(device))
        if key not in self._bucket_cache:
            self._bucket_cache = {key: relative_position_buckets(
                length, length, self.config.num_buckets, self.config.max_distance).to(device)}
        return self._bucket_cache[key]

    def forward(self, ids: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        if ids.dim() != 2:
            raise ValueError("ids must be [batch, length] token ids, got shape %s" % list(ids.shape))
        if mask is not None and tuple(mask.shape) != tuple(ids.shape):
            raise ValueError("mask shape %s does not match ids shape %s" % (list(mask.shape), list(ids.shape)))
        if int(ids.max()) >= self.config.vocab or int(ids.min()) < 0:
            raise ValueError("token ids must lie in [0, %d); found %d..%d"
                             % (self.config.vocab, int(ids.min()), int(ids.max())))
        device = ids.device
        dtype = self.compute_dtype
        x = self.token_embedding(ids)
        buckets = self.buckets(ids.shape[1], device)
        key_mask = None if mask is None else mask.to(device).bool()[:, None, None, :]
        for block in self.blocks:
            check_interrupt()
            x = block(x, buckets, key_mask, dtype)
        return self.norm(x)
