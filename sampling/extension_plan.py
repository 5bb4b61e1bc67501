"""Frame bookkeeping of SkyReels-V3 video extension (spec sections 8.3-8.4, golden v3_ext_plan).

**Single shot** (5-30 s, longer works too).  The last 25 frames of the video are the prefix:
7 latent frames (P).  The duration is cut into 5-second pieces and a remainder (12 s -> 5, 5,
2).  A piece of s seconds nominally makes L0 = 6 s new latent frames, but P + L must be a
multiple of 8, so L is rounded down or up to that, and a running padding budget p (start 0)
keeps the total close to nominal:

    r = (L0 + P) mod 8
    if r > p:  p += 8 - r;  L = L0 - r + 8      (round up, remember the extra)
    else:      p -= r;      L = L0 - r          (round down, spend the extra)

The model denoises L frames after the P clean ones; the decoder gives 1 + 4 (P + L - 1)
frames of which the first 25 (the prefix again) are dropped, so a piece adds 4 L frames and
the next piece starts from the last 25 frames made.  That is why durations are approximate:
3 s and 4 s both give 100 frames, because 18 + 7 = 25 and 24 + 7 = 31 latent frames both round
up to 32 while the budget is still empty, so both make L = 25 (4 x 25 = 100 frames).  The
third piece of an 11 s extension has a single latent frame (4 frames): the first two pieces
rounded up (33 instead of 30 each) and the budget pays it back.

**Shot switching** (2-5 s): one piece.  d seconds take 9 / 17 / 25 / 33 context frames
(P = 3 / 5 / 7 / 9 latents) and make F = 6 d + 1 latent frames, 24 d + 1 frames; only the new
latents are decoded.  The context sits at temporal RoPE positions from 1024.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Tuple

SINGLE_SHOT = "single_shot"
SHOT_SWITCH = "shot_switch"
MODES = (SINGLE_SHOT, SHOT_SWITCH)

SINGLE_SHOT_CONDITION_FRAMES = 25
PIECE_SECONDS = 5
LATENTS_PER_SECOND = 6
LATENT_MULTIPLE = 8          # prefix + new latent frames: a multiple of this (single shot)
SHOT_CONDITION_FRAMES = {2: 9, 3: 17, 4: 25, 5: 33}   # official SHOT_NUM_CONDITION_FRAMES_MAP
SHOT_CONTEXT_ROPE_START = 1024
FPS = 24


def latent_frames(pixel_frames: int) -> int:
    """Latent frames of ``pixel_frames`` (4k+1) pixel frames: (T - 1) // 4 + 1."""
    return (int(pixel_frames) - 1) // 4 + 1


def pixel_frames(latents: int) -> int:
    """Pixel frames the decoder makes from ``latents`` latent frames: 1 + 4 (F - 1)."""
    return 1 + 4 * (int(latents) - 1)


def split_seconds(duration: int, piece: int = PIECE_SECONDS) -> List[int]:
    """5-second pieces, then the remainder: 12 -> [5, 5, 2] (official ``split_m_n``)."""
    if int(duration) != duration or duration < 1:
        raise ValueError("the duration must be a whole number of seconds, at least 1, got %r" % (duration,))
    full, rest = divmod(int(duration), piece)
    return [piece] * full + ([rest] if rest else [])


@dataclass(frozen=True)
class ExtensionPiece:
    index: int
    seconds: int
    nominal_latents: int      # 6 s
    prefix_latents: int       # P: clean latent frames the model sees
    new_latents: int          # L (single shot) or F (shot switching)
    rest: int                 # (nominal + P) mod 8 (single shot; 0 for shot switching)
    padding_after: int        # the padding budget after this piece (single shot)
    rope_start_prefix: int    # temporal RoPE position of the first prefix / context frame
    rope_start_new: int       # ... of the first new frame
    decoded_frames: int       # what the VAE decodes
    dropped_frames: int       # decoded frames dropped (the prefix again)

    @property
    def model_frames(self) -> int:
        """Latent frames the model sees: prefix + new."""
        return self.prefix_latents + self.new_latents

    @property
    def kept_frames(self) -> int:
        return self.decoded_frames - self.dropped_frames

    def timestep_layout(self, t: int) -> List[Tuple[int, int]]:
        """Run-length [value, count] of the official per-frame timestep vector at step t."""
        if self.rope_start_prefix < self.rope_start_new:  # single shot: [prefix; noise]
            return [(0, self.prefix_latents), (t, self.new_latents)]
        return [(t, self.new_latents), (0, self.prefix_latents)]


@dataclass(frozen=True)
class ExtensionPlan:
    mode: str
    duration: int
    condition_frames: int     # pixel frames of the input taken as prefix / context
    pieces: Tuple[ExtensionPiece, ...]

    @property
    def output_frames(self) -> int:
        """New frames made (the input video not included)."""
        return sum(p.kept_frames for p in self.pieces)

    @property
    def max_model_frames(self) -> int:
        return max(p.model_frames for p in self.pieces)

    def describe(self) -> str:
        news = ", ".join(str(p.new_latents) for p in self.pieces)
        what = "single shot" if self.mode == SINGLE_SHOT else "shot switch"
        return "%s %d s: %d piece(s) of %s new latent frames, %d new frames (%.2f s at %d fps)" % (
            what, self.duration, len(self.pieces), news, self.output_frames, self.output_frames / FPS, FPS)


def plan_single_shot(duration: int, condition_frames: int = SINGLE_SHOT_CONDITION_FRAMES) -> ExtensionPlan:
    if condition_frames < 1 or (condition_frames - 1) % 4:
        raise ValueError("the prefix must be 4k+1 frames, got %d" % condition_frames)
    P = latent_frames(condition_frames)
    pieces = []
    budget = 0
    for i, s in enumerate(split_seconds(duration)):
        nominal = LATENTS_PER_SECOND * s
        rest = (nominal + P) % LATENT_MULTIPLE
        if rest > budget:
            budget += LATENT_MULTIPLE - rest
            L = nominal - rest + LATENT_MULTIPLE
        else:
            budget -= rest
            L = nominal - rest
        pieces.append(ExtensionPiece(
            index=i, seconds=s, nominal_latents=nominal, prefix_latents=P, new_latents=L, rest=rest,
            padding_after=budget, rope_start_prefix=0, rope_start_new=P,
            decoded_frames=pixel_frames(P + L), dropped_frames=condition_frames))
    return ExtensionPlan(SINGLE_SHOT, int(duration), condition_frames, tuple(pieces))


def plan_shot_switch(duration: int) -> ExtensionPlan:
    if duration not in SHOT_CONDITION_FRAMES:
        raise ValueError("shot switching makes 2, 3, 4 or 5 seconds, not %r" % (duration,))
    n = SHOT_CONDITION_FRAMES[duration]
    F = latent_frames(FPS * duration + 1)
    piece = ExtensionPiece(
        index=0, seconds=int(duration), nominal_latents=F, prefix_latents=latent_frames(n), new_latents=F, rest=0,
        padding_after=0, rope_start_prefix=SHOT_CONTEXT_ROPE_START, rope_start_new=0,
        decoded_frames=pixel_frames(F), dropped_frames=0)
    return ExtensionPlan(SHOT_SWITCH, int(duration), n, (piece,))


def plan_extension(mode: str, duration: int) -> ExtensionPlan:
    if mode == SINGLE_SHOT:
        return plan_single_shot(duration)
    if mode == SHOT_SWITCH:
        return plan_shot_switch(duration)
    raise ValueError("unknown extension mode %r; choose one of %s" % (mode, ", ".join(MODES)))
