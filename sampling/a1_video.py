"""SkyReels-A1 portrait animation of any length: a portrait, a control video, a face embedding.

The control video is ``[reference landmarks, driving frame 0 .. V-1]`` at 12 fps (the A1
landmark driver makes it; any tool that draws the same kind of frames will do).  The output
has V frames at 12 fps.  The video is made in 49-frame windows (``a1_plan``): each window
sees the reference frame and 48 driving frames, is denoised with the previous window's step
cache fused into its first latent frames (``a1_sampler``), decoded, and its new frames are
handed to the sinks.  Memory does not grow with the length: only the current window's
latents and the small fusion cache live on the device.

Finished windows can be saved to a folder as they come (``resumable``): a crashed or
cancelled run started again with the same inputs and settings resumes after the last saved
window, with the same result, because each window draws its noise from its own seeded stream.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, Optional

import torch

from ..host import check_interrupt
from .a1_plan import OVERLAP_FRAMES, WINDOW_FRAMES, A1VideoPlan, plan_a1_video
from .a1_sampler import A1SampleSettings, sample_a1_window
from .alphas import vp_schedule
from .chunk_store import ChunkSink, FinishedChunk
from .noise import NoiseSource, chunk_seed
from .resumable import PieceRun

LATENT_CHANNELS = 16


@dataclass
class A1VideoSettings:
    width: int = 720
    height: int = 480
    steps: int = 10
    guidance: float = 3.0
    seed: int = 43
    window_frames: int = WINDOW_FRAMES
    overlap_frames: int = OVERLAP_FRAMES
    fusion_interval: tuple = (3, 8)

    def check(self) -> None:
        if self.width % 16 or self.height % 16:
            raise ValueError("width and height must be multiples of 16, got %dx%d" % (self.width, self.height))
        if self.steps < 1:
            raise ValueError("steps must be at least 1")

    def sample_settings(self) -> A1SampleSettings:
        return A1SampleSettings(steps=self.steps, guidance=self.guidance, fusion_interval=tuple(self.fusion_interval),
                                fusion_latents=self.overlap_frames // 4)


class A1Codec:
    """The two CogVideoX VAEs seen from the sampler.  Frames are IMAGE [T, H, W, 3] in [0, 1];
    latents are in the pipeline's layout [1, F, 16, h, w] and scale (x scaling factor).

    ``place(module)`` is a context manager that puts a VAE on the compute device for one call
    (the node passes one that cooperates with the host's memory manager)."""

    def __init__(self, vae, pose_guider, device, vae_tiling=None, pose_tiling=None, place=None):
        self.vae = vae
        self.pose_guider = pose_guider
        self.device = torch.device(device)
        self.vae_tiling = vae_tiling
        self.pose_tiling = pose_tiling
        self.place = place

    def _on(self, module):
        import contextlib

        if self.place is None:
            return contextlib.nullcontext()
        return self.place(module)

    @staticmethod
    def _video(frames: torch.Tensor, device) -> torch.Tensor:
        """IMAGE [T, H, W, 3] -> [1, 3, T, H, W] in [-1, 1]."""
        return (frames[..., :3].float().to(device) * 2 - 1).permute(3, 0, 1, 2).unsqueeze(0)

    def image_moments(self, image: torch.Tensor):
        """The posterior (mean, std) of one frame [1, H, W, 3], each [1, 1, 16, h, w] (unscaled)."""
        with self._on(self.vae):
            mean, logvar = self.vae.encode(self._video(image[:1], self.device), self.vae_tiling)
        return mean.permute(0, 2, 1, 3, 4).cpu(), torch.exp(0.5 * logvar).permute(0, 2, 1, 3, 4).cpu()

    def encode_control(self, frames: torch.Tensor) -> torch.Tensor:
        """Control frames -> the scaled posterior mode [1, F, 16, h, w]."""
        with self._on(self.pose_guider):
            mean, _ = self.pose_guider.encode(self._video(frames, self.device), self.pose_tiling)
        return (self.pose_guider.config.scaling_factor * mean).permute(0, 2, 1, 3, 4)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Scaled latents [1, F, 16, h, w] -> IMAGE [T, H, W, 3] in [0, 1] on the CPU."""
        z = latents.permute(0, 2, 1, 3, 4) / self.vae.config.scaling_factor
        with self._on(self.vae):
            video = self.vae.decode(z.to(self.device), self.vae_tiling, to_cpu=True)
        return (video[0] / 2 + 0.5).clamp(0, 1).permute(1, 2, 3, 0).contiguous()

    @property
    def scaling_factor(self) -> float:
        return self.vae.config.scaling_factor


@dataclass
class A1VideoResult:
    plan: A1VideoPlan
    frames_made: int
    resumed_windows: int
    info: Dict = field(default_factory=dict)


def check_control(control: torch.Tensor, portrait: torch.Tensor) -> None:
    for name, t in (("control video", control), ("portrait", portrait)):
        if not isinstance(t, torch.Tensor) or t.dim() != 4 or t.shape[-1] < 3:
            raise ValueError("the %s must be an IMAGE [frames, height, width, 3]" % name)
    if control.shape[0] < 2:
        raise ValueError("the control video needs the reference-landmark frame and at least one driving frame "
                         "(got %d frame)" % control.shape[0])


def generate_a1_video(model: Callable, codec: A1Codec, settings: A1VideoSettings, portrait: torch.Tensor,
                      control: torch.Tensor, face: torch.Tensor, sink: ChunkSink, chunk_dir: Optional[str] = None,
                      device=None) -> A1VideoResult:
    """Animate ``portrait`` (IMAGE [1, H, W, 3], already framed at width x height) with ``control``
    (IMAGE [1 + V, H, W, 3] at width x height) and the face tokens ``face`` [1, L, C]; the V new
    frames go to ``sink`` window by window (and to ``chunk_dir`` if given).

    ``model(x [B, F, 48, h, w], t [B], face [B, L, C]) -> v [B, F, 16, h, w]``."""
    settings.check()
    s = settings
    check_control(control, portrait)
    for name, t in (("portrait", portrait), ("control video", control)):
        if (t.shape[1], t.shape[2]) != (s.height, s.width):
            raise ValueError("the %s is %dx%d; it must be %dx%d" % (name, t.shape[2], t.shape[1], s.width, s.height))
    driving = control.shape[0] - 1
    plan = plan_a1_video(driving, s.window_frames, s.overlap_frames)
    device = torch.device(device) if device is not None else codec.device
    sample_settings = s.sample_settings()
    schedule = vp_schedule(s.steps)
    h, w = s.height // 8, s.width // 8
    latent_frames = (s.window_frames - 1) // 4 + 1
    fusion_steps = sample_settings.fusion_steps()
    face = face.to(device)

    signature = {"settings": asdict(s), "portrait": _digest(portrait), "control": _digest(control),
                 "face": _digest(face)}
    made = 0
    moments = None
    fusion = None
    with PieceRun(sink, chunk_dir, signature, asdict(s), len(plan.windows) * s.steps, "SkyReels-A1") as run:
        for win in plan.windows:
            saved = run.saved(win.index)
            if saved is not None:
                run.replay(saved, s.steps)
                fusion = _unpack_cache(saved.history, fusion_steps)
                made += saved.frames.shape[0]
                continue
            if moments is None:
                moments = codec.image_moments(portrait)
            noise_src = NoiseSource(chunk_seed(s.seed, win.index))
            noise = noise_src.randn((1, latent_frames, LATENT_CHANNELS, h, w))
            eps = noise_src.randn((1, 1, LATENT_CHANNELS, h, w))
            image_latent = codec.scaling_factor * (moments[0] + moments[1] * eps)
            frames = control[[0] + [1 + i for i in win.control[1:]]]
            control_latent = codec.encode_control(frames)
            check_interrupt()
            x, cache = sample_a1_window(model, noise.to(device), control_latent.to(device), image_latent.to(device),
                                        face, sample_settings, fusion=fusion if win.fused else None,
                                        keep_cache=not win.is_last, schedule=schedule, progress=run.progress)
            check_interrupt()
            a, b = plan.frames_to_emit(win.index)
            new = codec.decode(x)[a:b]
            history = _pack_cache(cache, fusion_steps)
            run.finish(FinishedChunk(win.index, new, x.cpu(), history))
            fusion = cache
            made += new.shape[0]
            del x, control_latent
    return A1VideoResult(plan=plan, frames_made=made, resumed_windows=run.replayed)


def _pack_cache(cache: Optional[Dict[int, torch.Tensor]], steps) -> Optional[torch.Tensor]:
    if not cache:
        return None
    return torch.stack([cache[i].float().cpu() for i in steps])


def _unpack_cache(history: Optional[torch.Tensor], steps) -> Optional[Dict[int, torch.Tensor]]:
    if history is None:
        return None
    return {i: history[k] for k, i in enumerate(steps)}


def _digest(t: torch.Tensor):
    t = t.float().cpu()
    return [list(t.shape), round(float(t.sum()), 3), round(float((t * t).sum()), 3)]
