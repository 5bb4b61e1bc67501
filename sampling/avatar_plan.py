"""What the SkyReels-V3 talking-avatar long-video loop does, decided before anything runs.

The official "keyframe-constrained" algorithm (``TalkingAvatarPipeline.generate``), as plain
bookkeeping with no tensors:

1. ``real = min(max_frames, T)`` video frames at 25 fps, one per audio feature frame.  Audio
   shorter than one window (``real < frame_num``) is one clip, cropped.  Otherwise the
   features are padded by their time-reversed tail (the last frame appears twice in a row)
   so that ``L - frame_num`` is a multiple of the stride ``frame_num - motion - drop``.
2. A keyframe pass (clip 0): the portrait, the user prompt, audio frames from 0.  Its frames
   are only the output for a single clip; otherwise a few of them become pseudo keyframes.
3. Keyframe indices ``[0, frame_num-1, frame_num-1+stride, ..., n-1]`` rescaled onto the
   keyframe-pass clip (numpy rounding, half to even), the first dropped: one per window.
4. Loop windows w = 0, 1, ... at audio start ``stride * w``.  The conditioning video is
   [motion frames; grey; 5 copies of the window's keyframe]: the portrait as one motion frame
   for window 0, the last ``motion`` kept frames of the previous window after that.  Windows
   after the first re-inject their motion latents during sampling.
5. Each window keeps its frames except the last ``drop`` (not for the last window) and the
   first ``motion`` (not for window 0); everything is cropped to ``real`` frames.

Frames are named ``"portrait"`` or ``(clip, local frame)``; clip 0 is the keyframe pass and
clip w + 1 is loop window w.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Tuple, Union

import numpy as np

FrameRef = Union[str, Tuple[int, int]]
PORTRAIT = "portrait"
PSEUDO_KEYFRAME_FRAMES = 5   # copies of the keyframe at the end of every loop window's conditioning
AUDIO_WINDOW = 5             # wav2vec2 frames around each video frame (positions -2 .. +2)
FPS = 25                     # one wav2vec2 feature frame per video frame
LATER_WINDOWS = ("official", "prompt_and_portrait")


@dataclass
class ClipPlan:
    index: int                      # 0 = keyframe pass, w + 1 = loop window w
    window: Optional[int]           # None for the keyframe pass
    audio_start: int
    audio_frames: List[int]         # feature index of positions audio_start - 2 .. audio_start + frame_num + 1
    text: str                       # "prompt" (the user's) or "connection" (the fixed connection prompt)
    clip_image: FrameRef            # the frame CLIP sees
    motion_frames: List[FrameRef]   # leading frames of the conditioning video
    zero_frames: int                # grey frames after them
    pseudo_keyframes: List[FrameRef]  # trailing frames (copies of the window's keyframe)
    keep: Tuple[int, int]           # local frames [first, end) that go to the output
    output_start: int               # where they go
    motion_latents: int             # latent frames re-injected during sampling (0 = none)

    @property
    def role(self) -> str:
        return "keyframe_pass" if self.window is None else "window"

    @property
    def frames_out(self) -> int:
        return self.keep[1] - self.keep[0]

    def pixel_mask(self, frame_num: int) -> List[int]:
        """1 on the given (motion and pseudo-keyframe) frames of the conditioning video."""
        m = [0] * frame_num
        for j in range(len(self.motion_frames)):
            m[j] = 1
        for j in range(frame_num - len(self.pseudo_keyframes), frame_num):
            m[j] = 1
        return m

    def latent_mask(self, frame_num: int, vae_scale: int = 4) -> List[List[int]]:
        """The 4 mask channels of each latent frame (Wan: frame 0 repeated, then groups of 4)."""
        m = self.pixel_mask(frame_num)
        m = [m[0]] * vae_scale + m[1:]
        return [m[i:i + vae_scale] for i in range(0, len(m), vae_scale)]


@dataclass
class AvatarPlan:
    num_audio_frames: int
    frame_num: int
    motion_frame: int
    drop_frame: int
    max_frames: int
    real: int                       # video frames made (= audio frames, capped)
    length: int                     # padded length covered by the windows
    is_clip: bool
    padded_source: List[int]        # feature index copied into padded positions T, T+1, ...
    keyframes: List[int] = field(default_factory=list)  # per loop window: its keyframe in the keyframe pass
    clips: List[ClipPlan] = field(default_factory=list)

    @property
    def stride(self) -> int:
        return self.frame_num - self.motion_frame - self.drop_frame

    @property
    def windows(self) -> int:
        return len(self.clips) - 1

    @property
    def output_length(self) -> int:
        return sum(c.frames_out for c in self.clips)

    def output_segments(self) -> List[Tuple[int, int, int, int]]:
        """(clip, first local frame, end local frame, first output frame) of every kept piece."""
        return [(c.index, c.keep[0], c.keep[1], c.output_start) for c in self.clips if c.frames_out > 0]

    def feature_index(self) -> List[int]:
        """Index into the (unpadded) features of every padded position."""
        return list(range(self.num_audio_frames)) + list(self.padded_source)

    def audio_frames(self, start: int) -> List[int]:
        """Feature index of positions ``start - 2 .. start + frame_num + 1`` (padded, clamped):
        video frame j of a clip starting at ``start`` hears ``audio_frames[j:j + 5]``."""
        source = self.feature_index()
        last = len(source) - 1
        half = AUDIO_WINDOW // 2
        return [source[min(max(p, 0), last)] for p in range(start - half, start + self.frame_num + half)]


def keyframe_indices(n: int, frame_num: int, stride: int) -> List[int]:
    """Frames of the keyframe-pass clip used as pseudo keyframes, one per loop window."""
    if n <= frame_num:
        idx = [0, n - 1]
    else:
        idx = [0]
        k = frame_num - 1
        while k < n - 1:
            idx.append(k)
            k += stride
        if idx[-1] != n - 1:
            idx.append(n - 1)
    first, last = idx[0], idx[-1]
    scaled = np.asarray(idx, dtype=np.float64) * (frame_num - 1) / (last - first)
    rounded = np.clip(np.round(scaled), 0, frame_num - 1).astype(np.int64)
    return [int(v) for v in rounded[1:]]


def plan_avatar(num_audio_frames: int, frame_num: int = 81, motion_frame: int = 5, drop_frame: int = 12,
                max_frames: int = 5000, later_windows: str = "official", vae_scale: int = 4) -> AvatarPlan:
    """The whole plan for ``num_audio_frames`` feature frames (25 per second of audio).

    ``later_windows``: "official" (loop windows use the connection prompt and CLIP of their first
    motion frame) or "prompt_and_portrait" (the user's prompt and the portrait throughout).
    Raises ValueError where the official code fails (features longer than ``max_frames`` whose
    capped length needs padding: trim the features to ``max_frames`` first)."""
    T, fn, mo, dr = int(num_audio_frames), int(frame_num), int(motion_frame), int(drop_frame)
    stride = fn - mo - dr
    if T < 1:
        raise ValueError("the audio is empty (no feature frames)")
    if (fn - 1) % vae_scale:
        raise ValueError("frames per window must be %d k + 1, got %d" % (vae_scale, fn))
    if mo < 1 or dr < 0 or stride < 1:
        raise ValueError("motion frames (%d) + dropped frames (%d) must leave a positive stride in a window of %d"
                         % (mo, dr, fn))
    if fn - PSEUDO_KEYFRAME_FRAMES - mo < 0:
        raise ValueError("a window of %d frames cannot hold %d motion frames and %d keyframe copies"
                         % (fn, mo, PSEUDO_KEYFRAME_FRAMES))
    if later_windows not in LATER_WINDOWS:
        raise ValueError("later_windows must be one of %s, got %r" % (", ".join(LATER_WINDOWS), later_windows))
    real = min(int(max_frames), T)
    padded: List[int] = []
    if real < fn:
        is_clip, length = True, fn
    else:
        is_clip = False
        r = (real - fn) % stride
        length = real
        if r:
            if T != real:
                raise ValueError(
                    "the official code fails for %d audio frames capped at %d (the capped length needs padding); "
                    "trim the audio features to %d frames first" % (T, real, real))
            length = real + stride - r
            padded = [T - 1 - i for i in range(length - T)]
    plan = AvatarPlan(T, fn, mo, dr, int(max_frames), real, length, is_clip, padded)
    key = ClipPlan(0, None, 0, plan.audio_frames(0), "prompt", PORTRAIT, [PORTRAIT], fn - 1, [],
                   (0, real) if is_clip else (0, 0), 0, 0)
    plan.clips.append(key)
    if is_clip:
        return plan

    plan.keyframes = keyframe_indices(min(int(max_frames), T + len(padded)), fn, stride)
    official = later_windows == "official"
    out = 0
    w = 0
    while True:
        start = stride * w
        last = start + fn >= length
        if w == 0:
            motion: List[FrameRef] = [PORTRAIT]
            clip_image: FrameRef = PORTRAIT
        else:
            motion = [(w, stride + j) for j in range(mo)]
            clip_image = motion[0] if official else PORTRAIT
        kf = (0, plan.keyframes[min(w, len(plan.keyframes) - 1)])
        first = 0 if w == 0 else mo
        end = fn if last else fn - dr
        end = max(first, min(end, first + real - out))
        clip = ClipPlan(w + 1, w, start, plan.audio_frames(start), "connection" if official else "prompt", clip_image,
                        motion, fn - len(motion) - PSEUDO_KEYFRAME_FRAMES, [kf] * PSEUDO_KEYFRAME_FRAMES,
                        (first, end), out, 0 if w == 0 else 1 + (mo - 1) // vae_scale)
        plan.clips.append(clip)
        out += end - first
        if last:
            break
        w += 1
    return plan


def window_features(features, audio_frames: List[int]):
    """Features [T, layers, channels] -> the clip's windows [frames, 5, layers, channels]."""
    import torch

    idx = torch.as_tensor(audio_frames, dtype=torch.long, device=features.device)
    picked = features.index_select(0, idx)                      # [frames + 4, S, C]
    return picked.unfold(0, AUDIO_WINDOW, 1).permute(0, 3, 1, 2)  # [frames, 5, S, C]


# The portrait's size: the bucket of the nearest aspect ratio (height / width) of the official
# tables (``avatar_util.ASPECT_RATIO_627`` for 480P, ``ASPECT_RATIO_960`` for 720P): (ratio, height, width).
BUCKETS = {
    "480P": (("0.26", 320, 1216), ("0.38", 384, 1024), ("0.50", 448, 896), ("0.577", 480, 832), ("0.67", 512, 768),
             ("0.82", 576, 704), ("1.00", 640, 640), ("1.22", 704, 576), ("1.50", 768, 512), ("1.86", 832, 448),
             ("1.73", 832, 480), ("2.00", 896, 448), ("2.50", 960, 384), ("2.83", 1088, 384), ("3.60", 1152, 320),
             ("3.80", 1216, 320), ("4.00", 1280, 320)),
    "720P": (("0.22", 448, 2048), ("0.29", 512, 1792), ("0.36", 576, 1600), ("0.45", 640, 1408), ("0.55", 704, 1280),
             ("0.56", 720, 1280), ("0.63", 768, 1216), ("0.76", 832, 1088), ("0.88", 896, 1024), ("1.00", 960, 960),
             ("1.14", 1024, 896), ("1.31", 1088, 832), ("1.50", 1152, 768), ("1.58", 1216, 768), ("1.82", 1280, 704),
             ("1.78", 1280, 720), ("1.91", 1344, 704), ("2.20", 1408, 640), ("2.30", 1472, 640), ("2.67", 1536, 576),
             ("2.89", 1664, 576), ("3.62", 1856, 512), ("3.75", 1920, 512)),
}


def bucket_size(height: int, width: int, resolution: str = "720P") -> Tuple[int, int]:
    """(width, height) of the official bucket for a portrait of ``height x width`` (nearest ratio,
    the first on a tie)."""
    if resolution not in BUCKETS:
        raise ValueError("resolution must be one of %s, got %r" % (", ".join(BUCKETS), resolution))
    ratio = height / width
    best = min(BUCKETS[resolution], key=lambda b: abs(float(b[0]) - ratio))
    return best[2], best[1]
