"""Frame accounting of a long diffusion-forcing video (spec section 4.5.4 and 4.5.5).

A video of ``num_frames`` pixel frames is made in chunks of at most ``base_num_frames``;
every chunk after the first starts from the last ``overlap_history`` frames of what exists
(as clean prefix latents) and adds new frames.  With the official numbers this gives exactly
the requested length: 257 = 97 + 80 + 80, 737 = 97 + 8 x 80, 377 = 97 + 3 x 80 + 40.

All sizes are checked here, so a bad combination fails before any model runs, with a
message that says which numbers would work.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional

from .df_schedule import expected_rows


class DFPlanError(ValueError):
    """A combination of frame counts that diffusion forcing cannot produce."""


def latent_frames(pixel_frames: int) -> int:
    return (pixel_frames - 1) // 4 + 1


def pixel_frames(latents: int) -> int:
    return 4 * latents - 3


@dataclass
class ChunkPlan:
    index: int
    latent_frames: int        # latents the model denoises together (prefix included)
    prefix_latents: int       # clean prefix latents at the start (image, overlap or input video)
    new_pixel_frames: int     # pixel frames this chunk adds to the output
    end_frame: bool = False   # the end image latent is appended to this chunk

    def rows(self, steps: int, ar_step: int, causal_block_size: int) -> int:
        c = causal_block_size
        return expected_rows(steps, self.latent_frames // c, self.prefix_latents // c, ar_step)


@dataclass
class DFVideoPlan:
    chunks: List[ChunkPlan]
    num_frames: int            # pixel frames generated (the output, without an extended input video)
    overlap_frames: int        # pixel overlap between chunks (0 for one chunk)
    overlap_latents: int
    base_latents: int
    extension: bool = False

    def total_rows(self, steps: int, ar_step: int, causal_block_size: int) -> int:
        return sum(c.rows(steps, ar_step, causal_block_size) for c in self.chunks)


def _check_4k1(name: str, n: int) -> None:
    if n < 1 or (n - 1) % 4:
        lo = max(1, n - (n - 1) % 4)
        raise DFPlanError("%s must be 4k+1 (the video VAE packs 4 frames per latent), got %d; use %d or %d"
                          % (name, n, lo, lo + 4))


def check_window(base_num_frames: int, overlap_history: Optional[int]) -> None:
    """The chunk window alone: both 4k+1, the overlap shorter than the window."""
    _check_4k1("base_num_frames", base_num_frames)
    if overlap_history is not None:
        _check_4k1("overlap_history", overlap_history)
        if latent_frames(overlap_history) >= latent_frames(base_num_frames):
            raise DFPlanError("overlap_history (%d) must be shorter than base_num_frames (%d)"
                              % (overlap_history, base_num_frames))


def plan_df_video(num_frames: int, base_num_frames: int = 97, overlap_history: Optional[int] = 17,
                  causal_block_size: int = 1, start_image: bool = False, end_image: bool = False,
                  extension: bool = False, _suggestions: bool = True) -> DFVideoPlan:
    """Plan the chunks of a diffusion-forcing video.

    Args:
        num_frames: pixel frames to generate.  Text/image-to-video: the whole video (4k+1; with a
            start image, the image is frame 0).  Extension: the NEW frames appended after the
            input video (a multiple of 4 with an overlap of 4k+1 frames).
        base_num_frames: the window of one chunk in pixel frames (97 at 540P, 121 at 720P).
        overlap_history: pixel frames carried from one chunk into the next (17 or 37 are the
            official suggestions); None makes one chunk of the whole video.
        causal_block_size: latent frames per block; every chunk's latent length must be a
            multiple of it.
        start_image: the first chunk starts from one clean image latent.
        end_image: the last chunk ends on a clean image latent.
        extension: continue an input video: every chunk, the first too, starts from the last
            ``overlap_history`` frames of the video so far.
    """
    for name, v in (("num_frames", num_frames), ("base_num_frames", base_num_frames),
                    ("causal_block_size", causal_block_size), ("overlap_history", overlap_history)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int)):
            raise DFPlanError("%s must be a whole number, got %r" % (name, v))
    c = int(causal_block_size)
    if c < 1:
        raise DFPlanError("causal_block_size must be at least 1, got %d" % c)
    _check_4k1("base_num_frames", base_num_frames)
    if num_frames < 1:
        raise DFPlanError("num_frames must be positive, got %d" % num_frames)
    lb = latent_frames(base_num_frames)
    if lb % c:
        raise DFPlanError("base_num_frames %d gives %d latent frames, not a multiple of causal_block_size %d"
                          % (base_num_frames, lb, c))
    if extension:
        if overlap_history is None:
            raise DFPlanError("extending a video needs overlap_history (17 is the official choice)")
        _check_4k1("overlap_history", overlap_history)
        if num_frames % 4:
            raise DFPlanError("when extending, num_frames counts the new frames and must be a multiple of 4, got %d;"
                              " use %d or %d" % (num_frames, num_frames - num_frames % 4 or 4,
                                                 num_frames - num_frames % 4 + 4))
        total = num_frames + overlap_history  # the official num_frames of extend_video
    else:
        _check_4k1("num_frames", num_frames)
        total = num_frames

    L = latent_frames(total)
    if overlap_history is None or (total <= base_num_frames and not extension):
        if L % c:
            raise DFPlanError(_multiple_msg(num_frames, L, c))
        prefix = 1 if start_image else 0
        if prefix >= L:
            raise DFPlanError("a video of %d frame(s) from a start image leaves nothing to generate" % num_frames)
        return DFVideoPlan(chunks=[ChunkPlan(0, L, prefix, pixel_frames(L), end_image)], num_frames=num_frames,
                           overlap_frames=0, overlap_latents=0, base_latents=lb)

    _check_4k1("overlap_history", overlap_history)
    lo = latent_frames(overlap_history)
    if lo >= lb:
        raise DFPlanError("overlap_history (%d) must be shorter than base_num_frames (%d)" % (overlap_history, base_num_frames))
    if lo % c:
        raise DFPlanError("overlap_history %d gives %d latent frames, not a multiple of causal_block_size %d; use %d"
                          % (overlap_history, lo, c, pixel_frames((lo // c + 1) * c)))
    step = lb - lo
    chunks: List[ChunkPlan] = []
    if extension:
        n_iter = 1 + (L - lb - 1) // step + 1 if L > lb else 1
        for i in range(n_iter):
            left = L - (i * step + lo)
            f = min(left + lo, lb)
            chunks.append(ChunkPlan(i, f, lo, pixel_frames(f) - overlap_history))
    else:
        n_iter = 2 + (L - lb - 1) // step
        chunks.append(ChunkPlan(0, lb, 1 if start_image else 0, pixel_frames(lb)))
        for i in range(1, n_iter):
            left = L - (i * step + lo)
            f = min(left + lo, lb)
            chunks.append(ChunkPlan(i, f, lo, pixel_frames(f) - overlap_history))
    for ch in chunks:
        if ch.latent_frames % c:
            raise DFPlanError("chunk %d would have %d latent frames, not a multiple of causal_block_size %d. %s"
                              % (ch.index + 1, ch.latent_frames, c,
                                 _suggest(num_frames, base_num_frames, overlap_history, c, extension)
                                 if _suggestions else ""))
        if ch.new_pixel_frames <= 0:
            raise DFPlanError("chunk %d would add no frames" % (ch.index + 1))
    if end_image:
        chunks[-1].end_frame = True
    made = sum(ch.new_pixel_frames for ch in chunks)
    if made != num_frames:  # cannot happen with 4k+1 sizes; guard the arithmetic
        raise DFPlanError("internal frame accounting error: %d planned, %d requested" % (made, num_frames))
    return DFVideoPlan(chunks=chunks, num_frames=num_frames, overlap_frames=overlap_history, overlap_latents=lo,
                       base_latents=lb, extension=extension)


def _multiple_msg(num_frames: int, L: int, c: int) -> str:
    lo_ok = (L // c) * c
    hi_ok = lo_ok + c
    opts = [pixel_frames(x) for x in (lo_ok, hi_ok) if x > 0]
    return ("%d frames are %d latent frames, not a multiple of causal_block_size %d; use num_frames %s"
            % (num_frames, L, c, " or ".join(str(o) for o in opts)))


def _suggest(num_frames: int, base: int, overlap: int, c: int, extension: bool) -> str:
    """Nearest num_frames on both sides that plan cleanly."""
    found = []
    stride = 4
    for direction in (-1, 1):
        n = num_frames
        for _ in range(200):
            n += direction * stride
            if n < 1:
                break
            try:
                plan_df_video(n, base, overlap, c, extension=extension, _suggestions=False)
            except DFPlanError:
                continue
            found.append(n)
            break
    return ("Try num_frames %s." % " or ".join(str(n) for n in sorted(found))) if found else ""
