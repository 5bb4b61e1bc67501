"""How a DiT fits a VRAM budget: which blocks stay on the GPU and which are streamed.

A pure function of sizes, so it can be tested without a GPU:

* the weights outside the blocks (embeddings, head) always live on the device;
* the activations of one forward pass are estimated from the latent size
  (:func:`activation_bytes`);
* every block that does not stay resident is streamed: its weights are copied in just before
  it runs and dropped after, so the device needs room for the streamed copies in flight (two
  with prefetching: the one computing and the next one, one without).

The streamed blocks are spread evenly over the depth instead of taking the last ones, so that
every streamed block follows resident blocks whose compute hides its copy.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import torch

GB = 1 << 30


def gib(n: float) -> str:
    return "%.2f GB" % (n / GB)


@dataclass(frozen=True)
class ResidencyPlan:
    """Result of :func:`plan_residency` (all sizes in bytes)."""

    resident: Tuple[int, ...]      # block indices kept on the device for the whole run
    streamed: Tuple[int, ...]      # block indices copied in just in time
    budget: int
    non_block: int                 # weights outside the blocks
    activations: int               # activation estimate of one forward pass
    resident_blocks: int           # bytes of the resident blocks
    streaming_room: int            # bytes for the streamed copies in flight
    prefetch: bool

    @property
    def peak(self) -> int:
        """Estimated peak device use."""
        return self.non_block + self.resident_blocks + self.streaming_room + self.activations

    @property
    def fits(self) -> bool:
        return self.peak <= self.budget

    @property
    def num_blocks(self) -> int:
        return len(self.resident) + len(self.streamed)

    def describe(self) -> str:
        """One line for the user."""
        mode = "prefetching" if self.prefetch else "no prefetch"
        line = ("VRAM budget %s: %d of %d blocks resident, %d streamed (%s); estimated peak %s "
                "(weights %s, activations %s, streaming room %s)"
                % (gib(self.budget), len(self.resident), self.num_blocks, len(self.streamed), mode,
                   gib(self.peak), gib(self.non_block + self.resident_blocks), gib(self.activations),
                   gib(self.streaming_room)))
        if not self.fits:
            line += ("; the budget is below the minimum of %s for this latent size, so every block "
                     "streams and the run may still run out of memory" % gib(self.peak))
        return line


def spread_streamed(num_blocks: int, num_streamed: int) -> Tuple[int, ...]:
    """Indices of ``num_streamed`` blocks spread evenly over ``num_blocks`` (the first block
    stays resident whenever at least one does)."""
    if not 0 <= num_streamed <= num_blocks:
        raise ValueError("cannot stream %d of %d blocks" % (num_streamed, num_blocks))
    return tuple(i for i in range(num_blocks)
                 if (i + 1) * num_streamed // num_blocks - i * num_streamed // num_blocks == 1)


def plan_residency(block_bytes: Sequence[int], non_block_bytes: int, activation_bytes: int,
                   budget_gb: float, prefetch: bool = True) -> ResidencyPlan:
    """Keep as many blocks resident as fit in ``budget_gb``; stream the rest.

    Args:
        block_bytes: weight bytes of each block, in order.
        non_block_bytes: weight bytes outside the blocks (always resident).
        activation_bytes: activation estimate of one forward pass (:func:`activation_bytes`).
        budget_gb: the device memory the model may use, in GiB (> 0).
        prefetch: room for two streamed copies (the running one and the next) instead of one.

    When even streaming every block does not fit, the plan streams every block and its
    ``fits`` is False (the caller says so to the user).
    """
    if budget_gb is None or not budget_gb > 0:
        raise ValueError("the VRAM budget must be a positive number of GB, got %r" % (budget_gb,))
    sizes = [int(b) for b in block_bytes]
    if any(b < 0 for b in sizes) or non_block_bytes < 0 or activation_bytes < 0:
        raise ValueError("byte counts must not be negative")
    budget = int(budget_gb * GB)
    n = len(sizes)
    copies = 2 if prefetch else 1

    def make(num_streamed: int) -> ResidencyPlan:
        streamed = spread_streamed(n, num_streamed)
        streamed_set = set(streamed)
        resident = tuple(i for i in range(n) if i not in streamed_set)
        in_flight = sorted((sizes[i] for i in streamed), reverse=True)[:copies]
        return ResidencyPlan(resident=resident, streamed=streamed, budget=budget,
                             non_block=int(non_block_bytes), activations=int(activation_bytes),
                             resident_blocks=sum(sizes[i] for i in resident),
                             streaming_room=sum(in_flight), prefetch=prefetch)

    plan = make(0)
    for num_streamed in range(0, n + 1):
        plan = make(num_streamed)
        if plan.fits:
            return plan
    return plan  # streams everything, does not fit


# --------------------------------------------------------------------------- activations


def _itemsize(dtype: torch.dtype) -> int:
    return torch.empty((), dtype=dtype).element_size()


def activation_bytes(config, latent_shape: Sequence[int], batch: int = 1,
                     compute_dtype: torch.dtype = torch.bfloat16, teacache: bool = False,
                     text_len: Optional[int] = None, chunk_tokens: Optional[int] = None) -> int:
    """Estimated peak activation bytes of one DiT forward pass for a latent ``(F, H, W)``.

    The Wan blocks (``models/wan/dit.py``) update the float32 residual stream in place; the
    only other tensors that span the whole sequence are self-attention's q, k, v in the compute
    dtype, and they are freed before the feed-forward.  Everything else lives for one chunk of
    whole latent frames of at most ``chunk_tokens`` tokens (default: the Wan DiT's
    ``TOKEN_CHUNK``).  So the peak is the residual stream plus the larger of

    * self-attention: q, k, v of every token plus one chunk's temporaries (the modulated norm,
      a projection with its float32 RMS norm, rotated in place; or the attention output, its
      [T, D] copy and the output projection);
    * cross-attention and feed-forward of one chunk (the float32 norm and its compute-dtype
      copy, q and its norm; the hidden layer before and after GELU);

    plus the complex RoPE table, the text tokens and, with TeaCache, the block input kept for
    the cache and the two cached residuals (one per CFG branch).  Attention itself is assumed
    to run in O(L) memory (flash / memory-efficient SDPA).  A 10 % margin covers allocator
    slack.
    """
    if len(latent_shape) != 3:
        raise ValueError("latent_shape must be (frames, height, width) of the latent, got %s"
                         % (list(latent_shape),))
    f, h, w = (int(v) for v in latent_shape)
    pt, ph, pw = config.patch_size
    per_frame = max(h // ph, 1) * max(w // pw, 1)
    tokens = max(f // pt, 1) * per_frame
    if chunk_tokens is None:
        from ..models.wan.dit import TOKEN_CHUNK as chunk_tokens
    chunk = min(tokens, per_frame * max(1, int(chunk_tokens) // per_frame))
    d, ffn = config.dim, config.ffn_dim
    c = _itemsize(compute_dtype)
    projection = (2 * c + 8) * d                      # input + projection, float32 copy + RMS norm
    self_attention = tokens * 3 * c * d + chunk * max(projection, 3 * c * d)
    per_token = chunk * max(projection, c * d + 2 * c * ffn)  # cross-attention; FFN input + hidden x 2
    total = batch * (tokens * 4 * d + max(self_attention, per_token))
    total += tokens * config.head_dim * 4             # RoPE table (complex64, head_dim / 2 per token)
    total += batch * (text_len or config.text_len) * d * c * 2
    if teacache:
        total += 3 * batch * tokens * d * 4           # block input kept for the cache + 2 cached residuals
    return int(total * 1.1)
