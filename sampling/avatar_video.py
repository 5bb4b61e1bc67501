"""SkyReels-V3 talking avatar: a portrait and a voice in, a lip-synced video of any length out.

The loop follows :mod:`.avatar_plan` (the official keyframe-constrained algorithm): a keyframe
pass, then windows of ``frame_num`` frames, each conditioned on motion frames, a pseudo
keyframe and its slice of the audio, sampled with the A2V Euler grid and the audio-aware
guidance (:class:`.guidance.AudioGuidance`), decoded, colour-matched to the portrait per frame
and handed to the sinks.  Only the current clip lives on the device, so memory does not grow
with the length of the audio.

Every finished clip can go to a chunk folder (:class:`.resumable.PieceRun`): the kept
frames, the latents and what later clips need from it (the keyframe-pass frames used as
pseudo keyframes; a window's last kept frames, the next window's motion frames).  A cancelled
or crashed run resumes after the last saved clip; each clip has its own noise stream, so the
resumed video is the one an uninterrupted run makes.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable, Dict, Optional

import torch

from ..host import check_interrupt, log
from .a2v_sampler import sample_a2v_clip
from .avatar_plan import LATER_WINDOWS, PORTRAIT, AvatarPlan, ClipPlan, plan_avatar, window_features
from .chunk_store import ChunkSink, FinishedChunk
from .guidance import AudioGuidance, ModelInputs
from .noise import NoiseSource, chunk_seed
from .resumable import PieceRun
from .sigmas import a2v_schedule
from .video_codec import VideoCodec

# The shipped (distilled) setting and the pipeline's full setting.
PRESETS: Dict[str, Dict[str, float]] = {
    "distilled": dict(steps=4, shift=11.0, text_scale=1.0, audio_scale=1.0),
    "full": dict(steps=40, shift=5.0, text_scale=5.0, audio_scale=4.0),
}
CONNECTION_PROMPT = "a person is talking"
# The talking-avatar configuration's negative prompt (``sample_neg_prompt``): the SkyReels-V2 one with a
# lower-case first letter.
NEGATIVE_PROMPT = (
    "bright tones, overexposed, static, blurred details, subtitles, style, works, paintings, images, static, "
    "overall gray, worst quality, low quality, JPEG compression residue, ugly, incomplete, extra fingers, "
    "poorly drawn hands, poorly drawn faces, deformed, disfigured, misshapen limbs, fused fingers, still picture, "
    "messy background, three legs, many people in the background, walking backwards")


@dataclass
class AvatarSettings:
    width: int = 832
    height: int = 480
    steps: int = 4
    shift: float = 11.0
    text_scale: float = 1.0
    audio_scale: float = 1.0
    frame_num: int = 81
    motion_frame: int = 5
    drop_frame: int = 12
    max_frames: int = 5000
    seed: int = 0
    later_windows: str = "official"
    color_match_strength: float = 1.0

    @classmethod
    def preset(cls, name: str, **kw) -> "AvatarSettings":
        if name not in PRESETS:
            raise ValueError("unknown preset %r; choose one of %s" % (name, ", ".join(PRESETS)))
        values = dict(PRESETS[name])
        values.update(kw)
        return cls(**values)

    def check(self) -> None:
        if self.width % 16 or self.height % 16:
            raise ValueError("width and height must be multiples of 16, got %dx%d" % (self.width, self.height))
        if self.later_windows not in LATER_WINDOWS:
            raise ValueError("later_windows must be one of %s" % ", ".join(LATER_WINDOWS))


@dataclass
class AvatarConditioning:
    portrait: torch.Tensor                      # IMAGE [1, H, W, 3], already at width x height
    features: torch.Tensor                      # wav2vec2 features [T, layers, hidden], one per video frame
    prompt: torch.Tensor                        # text context of the user's prompt [1, L, text_dim]
    connection: Optional[torch.Tensor] = None   # text context of the connection prompt (official later windows)
    negative: Optional[torch.Tensor] = None     # text context of the negative prompt (text guidance > 1)


@dataclass
class AvatarResult:
    plan: AvatarPlan
    frames_made: int
    resumed_clips: int


ClipEncoder = Callable[[torch.Tensor], torch.Tensor]  # IMAGE [1, H, W, 3] -> CLIP tokens [1, 257, 1280]


def generate_avatar_video(model, codec: VideoCodec, encode_clip: ClipEncoder, settings: AvatarSettings,
                          cond: AvatarConditioning, sink: ChunkSink, chunk_dir: Optional[str] = None,
                          color_match: Optional[Callable] = None) -> AvatarResult:
    """Make the whole video; its frames go to ``sink`` in order (and every clip to ``chunk_dir``).

    ``model`` is an A2V DiT; ``encode_clip`` gives the CLIP tokens of one frame; ``color_match``
    (frames, reference, strength) -> frames defaults to the official per-frame Lab transfer."""
    s = settings
    s.check()
    if getattr(getattr(model, "config", None), "audio", None) is None:
        raise ValueError("this DiT has no audio adapter; the talking avatar needs a SkyReels-V3 A2V model")
    _check_portrait(cond.portrait, s)
    official = s.later_windows == "official"
    if official and cond.connection is None:
        raise ValueError("later_windows 'official' needs the connection prompt ('%s') encoded" % CONNECTION_PROMPT)
    if s.text_scale > 1 and cond.negative is None:
        raise ValueError("text guidance above 1 needs a negative prompt")
    feats = cond.features.float().cpu()
    if feats.dim() != 3:
        raise ValueError("audio features must be [frames, layers, hidden], got %s" % list(feats.shape))
    feats = feats[: s.max_frames]  # the official code fails when longer features need padding
    plan = plan_avatar(feats.shape[0], s.frame_num, s.motion_frame, s.drop_frame, s.max_frames, s.later_windows)
    if color_match is None:
        from ..media.color_match import match_colors_per_frame as color_match
    schedule = a2v_schedule(s.steps, s.shift)
    device = model.device
    h, w = s.height // 8, s.width // 8
    latent_frames = (s.frame_num - 1) // 4 + 1

    calls = {"none": 1, "text": 2, "audio": 2, "both": 3}[_regime(s)]
    log("talking avatar: %d frames (%.2f s) in %d window(s) of %d frames, plus the keyframe pass; %d steps, "
        "%d model call(s) per step" % (plan.real, plan.real / 25.0, plan.windows, s.frame_num, s.steps, calls))
    portrait_tokens = None
    keyframes: Dict[int, torch.Tensor] = {}   # keyframe-pass frame -> IMAGE [1, H, W, 3]
    motion: Optional[torch.Tensor] = None     # the previous window's last kept frames
    made = 0
    with PieceRun(sink, chunk_dir, _signature(s, cond), asdict(s), len(plan.clips) * s.steps,
                  "talking avatar") as run:
        for clip in plan.clips:
            saved = run.saved(clip.index)
            if saved is not None:
                keyframes, motion = _restore(clip, saved, plan, keyframes, motion)
                run.replay(saved, s.steps)
                made += saved.frames.shape[0]
                continue
            frames_cond = _conditioning_frames(clip, plan, cond.portrait, keyframes, motion)
            y_latent = codec.encode(frames_cond)
            mask = torch.tensor(clip.latent_mask(s.frame_num), dtype=torch.float32)  # [F, 4]
            mask = mask.t()[None, :, :, None, None].expand(1, 4, latent_frames, h, w)
            y = torch.cat([mask.to(y_latent.device), y_latent], dim=1)
            if clip.clip_image == PORTRAIT:
                if portrait_tokens is None:
                    portrait_tokens = encode_clip(cond.portrait).float().cpu()
                tokens = portrait_tokens
            else:
                tokens = encode_clip(frames_cond[:1]).float().cpu()  # the first motion frame
            text = cond.prompt if clip.text == "prompt" else cond.connection
            positive = ModelInputs(context=text, clip_fea=tokens, y=y).to(model)
            negative = ModelInputs(context=cond.negative, clip_fea=tokens, y=y).to(model) \
                if cond.negative is not None else None
            audio = window_features(feats, clip.audio_frames)[None]      # [1, Fv, 5, layers, hidden]
            guide = AudioGuidance(model, positive, negative, audio.to(device), s.text_scale, s.audio_scale)
            noise = NoiseSource(chunk_seed(s.seed, clip.index))
            x = noise.randn((1, 16, latent_frames, h, w), device=device)
            z_motion = y_latent[:, :, :clip.motion_latents] if clip.motion_latents else None
            with torch.no_grad():
                z = sample_a2v_clip(guide, x, schedule, z_motion, noise if z_motion is not None else None,
                                    run.progress)
            check_interrupt()
            decoded = color_match(codec.decode(z), cond.portrait, s.color_match_strength)
            del x, y, y_latent, guide
            keep = decoded[clip.keep[0]:clip.keep[1]]
            history = _history(clip, plan, decoded)
            if clip.window is None:
                keyframes = {k: decoded[k:k + 1] for k in sorted(set(plan.keyframes))}
            else:
                motion = history
            run.finish(FinishedChunk(clip.index, keep.clone(), z.cpu(), history))
            made += keep.shape[0]
            if clip.window is not None:
                log("talking avatar: window %d of %d done (%d frames so far)" % (clip.window + 1, plan.windows, made))
            del decoded, z
    return AvatarResult(plan=plan, frames_made=made, resumed_clips=run.replayed)


# --------------------------------------------------------------------------- helpers


def _regime(s: AvatarSettings) -> str:
    t, a = s.text_scale > 1, s.audio_scale > 1
    return "both" if t and a else "text" if t else "audio" if a else "none"


def _check_portrait(img: torch.Tensor, s: AvatarSettings) -> None:
    if not isinstance(img, torch.Tensor) or img.dim() != 4 or img.shape[-1] < 3:
        raise ValueError("the portrait must be an IMAGE [1, height, width, 3]")
    if img.shape[1] != s.height or img.shape[2] != s.width:
        raise ValueError("the portrait is %dx%d; it must be resized to %dx%d first"
                         % (img.shape[2], img.shape[1], s.width, s.height))


def _frame(ref, portrait, keyframes, motion, plan: AvatarPlan) -> torch.Tensor:
    if ref == PORTRAIT:
        return portrait[:1, ..., :3]
    clip, local = ref
    if clip == 0:
        return keyframes[local]
    return motion[local - plan.stride: local - plan.stride + 1]


def _conditioning_frames(clip: ClipPlan, plan: AvatarPlan, portrait, keyframes, motion) -> torch.Tensor:
    """IMAGE [frame_num, H, W, 3]: motion frames, grey (0 in [-1, 1]), pseudo keyframes."""
    lead = [_frame(r, portrait, keyframes, motion, plan) for r in clip.motion_frames]
    tail = [_frame(r, portrait, keyframes, motion, plan) for r in clip.pseudo_keyframes]
    H, W = portrait.shape[1], portrait.shape[2]
    grey = torch.full((clip.zero_frames, H, W, 3), 0.5)
    return torch.cat([f.float().cpu() for f in lead] + [grey] + [f.float().cpu() for f in tail], dim=0)


def _history(clip: ClipPlan, plan: AvatarPlan, decoded: torch.Tensor) -> Optional[torch.Tensor]:
    """What later clips need from this one: the pseudo keyframes (keyframe pass) or the next
    window's motion frames (a window that is not the last)."""
    if clip.window is None:
        if plan.is_clip:
            return None
        return torch.cat([decoded[k:k + 1] for k in sorted(set(plan.keyframes))]).clone()
    if clip.index == len(plan.clips) - 1:
        return None
    return decoded[plan.stride:plan.stride + plan.motion_frame].clone()


def _restore(clip: ClipPlan, fin: FinishedChunk, plan: AvatarPlan, keyframes, motion):
    if clip.window is None:
        if fin.history is not None:
            keys = sorted(set(plan.keyframes))
            keyframes = {k: fin.history[i:i + 1] for i, k in enumerate(keys)}
    else:
        motion = fin.history
    return keyframes, motion


def _signature(s: AvatarSettings, cond: AvatarConditioning) -> dict:
    def digest(t):
        if t is None:
            return None
        t = t.float().cpu()
        return [list(t.shape), round(float(t.sum()), 3), round(float((t * t).sum()), 3)]

    return {"settings": asdict(s), "portrait": digest(cond.portrait), "features": digest(cond.features),
            "prompt": digest(cond.prompt), "connection": digest(cond.connection), "negative": digest(cond.negative)}
