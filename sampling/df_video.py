"""Diffusion-forcing video of any length, synchronous or asynchronous (spec section 4.5).

The video is made chunk by chunk (``df_plan``).  Each chunk is denoised with one timestep
per latent frame (``df_chunk``), decoded, handed to the sinks, and forgotten except for the
overlap the next chunk starts from.  So device memory does not grow with the length.

Two ways to carry the overlap from one chunk to the next:

* ``"pixel"`` (official): decode the chunk, re-encode its last ``overlap_history`` pixel
  frames with the VAE as the next prefix.  Costs one VAE encode per chunk and a VAE round
  trip of the overlap, which can shift colours a little each time.
* ``"latent"``: keep the chunk's last overlap latents as they are, no VAE round trip.
  Cheaper, and the overlap the model sees is exactly what it made.

Conditioning: a prompt per chunk (the last one repeats), a start image (image-to-video by
a clean first latent), an end image (a clean latent after the last chunk's frames, pinned at
t = 0), or an input video to extend.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Callable, List, Optional, Sequence, Tuple

import torch

from ..host import check_interrupt, log
from .chunk_store import ChunkSink, FinishedChunk, module_fingerprint, tensor_digest
from .df_chunk import DFChunkSettings, sample_df_chunk
from .df_plan import DFVideoPlan, plan_df_video
from .finite import NonFiniteError
from .guidance import Denoiser, ModelInputs
from .noise import NoiseSource, chunk_seed
from .resumable import PieceRun
from .sigmas import flow_schedule
from .video_codec import VideoCodec

HISTORY_MODES = ("latent", "pixel")


@dataclass
class DFVideoSettings:
    width: int = 960
    height: int = 544
    num_frames: int = 97
    base_num_frames: int = 97
    overlap_history: Optional[int] = 17
    steps: int = 30
    shift: float = 8.0
    guidance: float = 6.0
    ar_step: int = 0
    causal_block_size: int = 1
    addnoise_condition: int = 20
    fps: float = 24.0
    seed: int = 0
    solver: str = "unipc"
    sigma_grid: str = "official"
    history: str = "latent"
    causal_attention: bool = False
    color_match: str = "none"
    color_match_strength: float = 1.0

    @property
    def fps_index(self) -> int:
        """Row of the DF-1.3B fps table: 0 for 16 fps, 1 for anything else (official rule)."""
        return 0 if round(self.fps) == 16 else 1

    def check(self) -> None:
        for name in ("width", "height", "num_frames", "base_num_frames", "steps", "ar_step", "causal_block_size",
                     "addnoise_condition", "seed"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int):
                raise ValueError("%s must be a whole number, got %r" % (name, v))
        for name in ("shift", "guidance", "fps", "color_match_strength"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ValueError("%s must be a finite number, got %r" % (name, v))
        if self.width < 16 or self.height < 16 or self.width % 16 or self.height % 16:
            raise ValueError("width and height must be multiples of 16, got %dx%d" % (self.width, self.height))
        if self.steps < 1:
            raise ValueError("steps must be at least 1, got %d" % self.steps)
        if self.ar_step < 0:
            raise ValueError("ar_step must be 0 (synchronous) or more, got %d" % self.ar_step)
        if self.causal_block_size < 1:
            raise ValueError("causal_block_size must be at least 1, got %d" % self.causal_block_size)
        if self.shift <= 0:
            raise ValueError("shift must be above 0, got %r" % self.shift)
        if self.fps <= 0:
            raise ValueError("fps must be above 0, got %r" % self.fps)
        if self.history not in HISTORY_MODES:
            raise ValueError("history must be one of %s" % ", ".join(HISTORY_MODES))
        if self.addnoise_condition < 0 or self.addnoise_condition >= 1000:
            raise ValueError("addnoise_condition must be in [0, 999]")
        if self.addnoise_condition > 60:
            log("addnoise_condition %d is high; the official advice is 20 (at most 50) for consistent long videos"
                % self.addnoise_condition)


@dataclass
class DFConditioning:
    prompts: Sequence[ModelInputs]             # one per chunk; the last repeats
    negative: Optional[ModelInputs] = None
    start_image: Optional[torch.Tensor] = None  # IMAGE [1, H, W, 3], already at width x height
    end_image: Optional[torch.Tensor] = None    # IMAGE [1, H, W, 3], already at width x height
    video: Optional[torch.Tensor] = None        # IMAGE [T, H, W, 3], already at width x height (extension)

    def prompt_for(self, chunk: int) -> ModelInputs:
        if not self.prompts:
            raise ValueError("no prompt given")
        return self.prompts[min(chunk, len(self.prompts) - 1)]


@dataclass
class DFVideoResult:
    plan: DFVideoPlan
    frames_made: int
    resumed_chunks: int
    latents: torch.Tensor = field(default=None)  # normalised latents of the generated frames [1, 16, F, h, w] (CPU)


CacheFactory = Callable[[int], Tuple[object, object]]


def plan_for(settings: DFVideoSettings, start_image: bool = False, end_image: bool = False,
             video_frames: Optional[int] = None) -> DFVideoPlan:
    """Check the settings and plan the chunks, before any model runs (nodes call it in their
    checks).  ``video_frames``: frames of the video to extend, None when not extending."""
    settings.check()
    s = settings
    extension = video_frames is not None
    plan = plan_df_video(s.num_frames, s.base_num_frames, s.overlap_history, s.causal_block_size,
                         start_image=start_image and not extension, end_image=end_image, extension=extension)
    if extension and video_frames < s.overlap_history:
        raise ValueError("the video to extend has %d frames; it needs at least overlap_history = %d"
                         % (video_frames, s.overlap_history))
    return plan


def generate_df_video(model, codec: VideoCodec, settings: DFVideoSettings, cond: DFConditioning,
                      sink: ChunkSink, chunk_dir: Optional[str] = None,
                      cache_factory: Optional[CacheFactory] = None,
                      color_match: Optional[Callable] = None, identity: Optional[dict] = None) -> DFVideoResult:
    """Make the whole video; finished chunks go to ``sink`` (and to ``chunk_dir`` if given).

    With ``chunk_dir``, a later call with the same everything resumes after the chunks saved
    there and gives the same video as an uninterrupted run.  The signature that decides
    "the same" covers the settings, the prompts, images and video (every value), the DiT's and
    the VAE's weights (a fingerprint), their dtypes, the VAE tiling, and ``identity``: what
    else the caller knows changes the result (file names, step-cache settings, ...)."""
    s = settings
    extension = cond.video is not None
    plan = plan_for(s, cond.start_image is not None, cond.end_image is not None,
                    cond.video.shape[0] if extension else None)
    _check_image(cond.start_image, s, "start image")
    _check_image(cond.end_image, s, "end image")
    _check_image(cond.video, s, "video to extend")

    schedule = flow_schedule(s.steps, s.shift, s.sigma_grid)
    chunk_settings = DFChunkSettings(ar_step=s.ar_step, causal_block_size=s.causal_block_size,
                                     addnoise_condition=s.addnoise_condition, solver=s.solver)
    device = model.device
    h, w = s.height // 8, s.width // 8
    model.causal_block_size = s.causal_block_size if s.causal_attention else None

    total_rows = plan.total_rows(s.steps, s.ar_step, s.causal_block_size)
    start_latent = codec.encode(cond.start_image) if cond.start_image is not None and not extension else None
    end_latent = codec.encode(cond.end_image) if cond.end_image is not None else None
    reference = None  # colour reference: the first chunk's frames
    history = cond.video[-plan.overlap_frames:].clone() if extension else None  # pixels, encoded on use
    latents_out: List[torch.Tensor] = []
    made = 0
    # Latent history, untiled: one causal decoder across all chunks.  After a resume it is
    # brought to the state it had after the saved chunks, so the frames that follow are those
    # of an uninterrupted run.
    stream = codec.stream() if s.history == "latent" else None
    fed: List[torch.Tensor] = []  # what the stream has been fed, for a resume
    signature = _signature(s, cond, model, codec, identity)
    with PieceRun(sink, chunk_dir, signature, asdict(s), total_rows, "diffusion forcing") as run:
        progress = run.progress
        for chunk in plan.chunks:
            fin = run.saved(chunk.index)
            if fin is not None:
                run.replay(fin, chunk.rows(s.steps, s.ar_step, s.causal_block_size))
                history = fin.history
                reference = fin.frames if reference is None else reference
                latents_out.append(_new_latents(fin.latents, chunk, plan))
                fed.append(fin.latents if chunk.index == 0 else fin.latents[:, :, plan.overlap_latents:])
                made += fin.frames.shape[0]
                continue
            if fed and stream is not None:
                stream.warm(torch.cat(fed, dim=2))
                fed = []

            noise = NoiseSource(chunk_seed(s.seed, chunk.index))
            x = noise.randn((1, 16, chunk.latent_frames, h, w), device=device)
            prefix = _prefix_latents(codec, chunk, history, start_latent)
            if prefix is not None:
                x[:, :, :prefix.shape[2]] = prefix.to(device, x.dtype)
            # Official DF rule: guidance only when the scale is above 1.
            negative = cond.negative.for_fps(s.fps_index) if cond.negative is not None and s.guidance > 1 else None
            den = Denoiser(model, cond.prompt_for(chunk.index).for_fps(s.fps_index), negative,
                           s.guidance, _caches(cache_factory, chunk, s))
            with torch.no_grad():
                try:
                    z = sample_df_chunk(den, x, chunk.prefix_latents, schedule, chunk_settings, noise,
                                        end_latent if chunk.end_frame else None, progress)
                except NonFiniteError as e:
                    raise NonFiniteError("chunk %d of %d: %s" % (chunk.index + 1, len(plan.chunks), e)) from None
            check_interrupt()
            new = _decode_new_frames(codec, stream, z, chunk, plan)
            if reference is None:
                reference = as_stored(new)  # what a resumed run reads back from the chunk file
            elif s.color_match != "none" and color_match is not None:
                new = color_match(new, reference, s.color_match, s.color_match_strength)
            history = _next_history(s, plan, z, history, new)
            fin = FinishedChunk(chunk.index, new, z.cpu(), history)
            run.finish(fin)
            latents_out.append(_new_latents(fin.latents, chunk, plan))
            made += new.shape[0]
            del z, x
    return DFVideoResult(plan=plan, frames_made=made, resumed_chunks=run.replayed,
                         latents=torch.cat(latents_out, dim=2) if latents_out else None)


# --------------------------------------------------------------------------- helpers


def _check_image(img: Optional[torch.Tensor], s: DFVideoSettings, what: str) -> None:
    if img is None:
        return
    if img.dim() != 4 or img.shape[-1] != 3:
        raise ValueError("%s must be an IMAGE [frames, height, width, 3], got %s" % (what, list(img.shape)))
    if img.shape[1] != s.height or img.shape[2] != s.width:
        raise ValueError("%s is %dx%d; it must be resized to %dx%d first"
                         % (what, img.shape[2], img.shape[1], s.width, s.height))


def _prefix_latents(codec: VideoCodec, chunk, history, start_latent):
    if chunk.prefix_latents == 0:
        return None
    if history is None:  # first chunk of a text/image-to-video
        return start_latent
    if history.dim() == 4:  # pixels [T, H, W, 3]
        z = codec.encode(history)
    else:
        z = history
    return z[:, :, :chunk.prefix_latents]


def _next_history(s: DFVideoSettings, plan: DFVideoPlan, z: torch.Tensor, history, new_frames: torch.Tensor):
    if plan.overlap_latents == 0:
        return None
    if s.history == "latent":
        return z[:, :, -plan.overlap_latents:].detach().cpu().clone()
    o = plan.overlap_frames
    if history is not None and history.dim() == 4 and new_frames.shape[0] < o:
        return torch.cat([history, new_frames], dim=0)[-o:].clone()
    return new_frames[-o:].clone()


def as_stored(frames: torch.Tensor) -> torch.Tensor:
    """Frames as a chunk file keeps them (8 bits), so a resumed run matches an uninterrupted one."""
    return (frames.clamp(0, 1) * 255).round() / 255.0


def _decode_new_frames(codec: VideoCodec, stream, z: torch.Tensor, chunk, plan: DFVideoPlan):
    """The chunk's new pixel frames.

    Latent history (untiled): the new latents continue one causal decode of the whole video,
    exactly as if it had been decoded in one piece (an extended video's stream starts at the
    first chunk's prefix, whose frames are the input's and are dropped).  Otherwise (pixel
    history, or tiles): the chunk is decoded from its start and the overlap frames are
    dropped (official).
    """
    first = chunk.index == 0 and not plan.extension
    if stream is not None:
        if chunk.index == 0 and plan.extension:
            stream.feed(z[:, :, :plan.overlap_latents])
        return stream.feed(z if first else z[:, :, plan.overlap_latents:])
    frames = codec.decode(z)
    return frames if first else frames[plan.overlap_frames:]


def _new_latents(z: torch.Tensor, chunk, plan: DFVideoPlan) -> torch.Tensor:
    """The chunk's latents without the prefix it shares with the previous chunk."""
    if chunk.index == 0 and not plan.extension:
        return z
    return z[:, :, plan.overlap_latents:]


def _caches(factory: Optional[CacheFactory], chunk, s: DFVideoSettings):
    if factory is None:
        return (None, None)
    return factory(chunk.rows(s.steps, s.ar_step, s.causal_block_size))


def _signature(s: DFVideoSettings, cond: DFConditioning, model=None, codec: Optional[VideoCodec] = None,
               identity: Optional[dict] = None) -> dict:
    """Everything that changes the video: a resume with another value would mix two runs."""
    def inputs(p: Optional[ModelInputs]):
        if p is None:
            return None
        return [tensor_digest(p.context), tensor_digest(p.clip_fea), tensor_digest(p.y), p.fps]

    vae = codec.vae if codec is not None else None
    return {
        "settings": asdict(s),
        "prompts": [inputs(p) for p in cond.prompts],
        "negative": inputs(cond.negative),
        "start": tensor_digest(cond.start_image), "end": tensor_digest(cond.end_image),
        "video": tensor_digest(cond.video),
        "dit": module_fingerprint(model) if isinstance(model, torch.nn.Module) else None,
        "dit_config": repr(getattr(model, "config", None)),
        "vae": module_fingerprint(vae) if isinstance(vae, torch.nn.Module) else None,
        "vae_tile": repr(codec.tile) if codec is not None else None,
        "identity": identity or {},
    }
