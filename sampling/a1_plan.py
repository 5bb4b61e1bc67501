"""Frame bookkeeping of SkyReels-A1 long videos (``inference_long_video.py``): which control frames
each 49-frame window sees and which generated frames make the output.

A control video is ``[reference landmarks, driving frame 0 .. V-1]`` at 12 fps.  Window k:

* starts at driving frame s_k = 40 k (stride = 49 - 1 - overlap 8);
* sees ``[reference, s_k .. s_k + 47]``, indices past the end repeating the last frame
  (padding); windows continue while s_k + 48 < V, the window with s_k + 48 >= V is the last;
* receives, from window k-1, its latents after each step (fusion at steps 4..7 on latent
  frames 1..2, the overlap 8 // 4, with weights 1 and 0.5 on the previous window);
* keeps generated frames 1..48 (window 0) or 9..48 (later windows: frames 1..8 repeat the
  previous window's last 8).

The output is then cut to V frames (the padding removed).  With FILM smoothing (not done
here; the plan still says where it would go) the last 2 kept frames of the video so far and
the first 2 of a new window are replaced by interpolated frames; the length is unchanged.

``short_control_indices`` is the single-clip rule of ``inference.py`` (the first driving frame
doubled, the 48th dropped).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Tuple

WINDOW_FRAMES = 49
OVERLAP_FRAMES = 8
FUSION_INTERVAL = (3, 8)
FILM_PICK = (1, 4, 5, 8)
FILM_SMOOTH = 2


@dataclass(frozen=True)
class A1Window:
    index: int
    start: int                    # first driving frame s_k
    control: Tuple[int, ...]      # the window's control frames as driving indices, -1 = reference frame
    is_last: bool
    fused: bool                   # receives the previous window's step cache
    keep_from: int                # first generated frame that goes to the output
    padding: int                  # control entries past the end of the driving video

    @property
    def kept(self) -> int:
        return self.frame_count - self.keep_from

    @property
    def frame_count(self) -> int:
        return len(self.control)


@dataclass
class A1VideoPlan:
    driving_frames: int           # V
    window_frames: int
    overlap_frames: int
    windows: List[A1Window] = field(default_factory=list)

    @property
    def stride(self) -> int:
        return self.window_frames - 1 - self.overlap_frames

    @property
    def padding(self) -> int:
        return self.windows[-1].padding if self.windows else 0

    @property
    def output_frames(self) -> int:
        return self.driving_frames

    @property
    def fusion_latents(self) -> int:
        """Latent frames blended from the previous window (overlap // 4)."""
        return self.overlap_frames // 4

    def frames_to_emit(self, k: int) -> Tuple[int, int]:
        """[first, end) of window k's generated frames that reach the output (padding removed)."""
        w = self.windows[k]
        end = w.frame_count - (w.padding if w.is_last else 0)
        return w.keep_from, max(end, w.keep_from)

    def output(self, interpolation: bool = False) -> List[list]:
        """The output frames in order: ['gen', k, j] or ['film', join, position]."""
        out: List[list] = []
        for k, w in enumerate(self.windows):
            new = [["gen", k, j] for j in range(w.keep_from, w.frame_count)]
            if interpolation and k > 0:
                film = [["film", k - 1, p] for p in FILM_PICK]
                out = out[:-FILM_SMOOTH] + film + new[FILM_SMOOTH:]
            else:
                out += new
        if self.padding:
            out = out[:-self.padding]
        return out


def plan_a1_video(driving_frames: int, window_frames: int = WINDOW_FRAMES,
                  overlap_frames: int = OVERLAP_FRAMES) -> A1VideoPlan:
    """The official window plan for ``driving_frames`` (V >= 1) driving frames."""
    if driving_frames < 1:
        raise ValueError("the control video needs at least one driving frame after the reference frame")
    if window_frames < 2 or (window_frames - 1) % 4:
        raise ValueError("the window must have 4k+1 frames, got %d" % window_frames)
    if overlap_frames % 4 or not 0 <= overlap_frames < window_frames - 1:
        raise ValueError("the overlap must be a multiple of 4 below %d, got %d" % (window_frames - 1, overlap_frames))
    span = window_frames - 1
    stride = span - overlap_frames
    plan = A1VideoPlan(driving_frames, window_frames, overlap_frames)
    k = 0
    while True:
        s = k * stride
        last = s + span >= driving_frames
        control = (-1,) + tuple(min(i, driving_frames - 1) for i in range(s, s + span))
        plan.windows.append(A1Window(index=k, start=s, control=control, is_last=last, fused=k > 0,
                                     keep_from=1 if k == 0 else 1 + overlap_frames,
                                     padding=max(0, s + span - driving_frames) if last else 0))
        if last:
            return plan
        k += 1


def short_control_indices(resampled: List[int], frames: int = WINDOW_FRAMES - 1) -> List[int]:
    """``inference.py``'s 48 driving entries from the resampled indices (first doubled, the
    48th dropped; a shorter video repeats its last frame)."""
    c = list(resampled[:frames])
    if not c:
        raise ValueError("no driving frames")
    if len(c) == frames:
        return [c[0], c[0]] + c[1:frames - 1]
    return [c[0], c[0]] + c[1:len(c) - 1] + [c[-1]] * (frames - len(c))
