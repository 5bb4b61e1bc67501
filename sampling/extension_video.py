"""SkyReels-V3 video extension: continue a video as one shot, or cut to a new shot of the
same scene (spec sections 8.3-8.4; the frame bookkeeping is in :mod:`.extension_plan`).

Both modes are the same loop; they differ only in where the conditioning frames sit:

* **single shot** (the ``transformer`` weights): the last 25 frames of the video, encoded
  to P = 7 clean latents at temporal RoPE positions 0 ... P - 1, the L new frames after them
  (P ... P + L - 1); one piece per 5 seconds;
* **shot switching** (the ``shot_transformer`` weights): the last 9 / 17 / 25 / 33 frames as
  context latents at RoPE positions 1024 ..., the new shot at 0 ... F - 1; one piece.

The conditioning latents are a :class:`~..models.wan.dit.LatentSegment` of the DiT: clean
(t = 0), patch-embedded on their own, no output.  Each piece is sampled by the ordinary flow
sampler (official: UniPC, 8 steps, shift 8, guidance 1 = one pass), decoded, handed to the
sink (and saved in the piece folder), and the next piece starts from the last 25 frames made.

Choices (see the README):

* The next prefix is **re-encoded from 8-bit frames**, as officially: the first prefix latent
  must be a lone-frame latent like the ones the model was trained on, which the last latents
  of a piece are not.  Frames are rounded to 8 bits (the official code truncates), which is
  also what the piece folder stores, so a resumed run continues exactly.
* **Every piece draws its own noise** (piece 0 from the seed itself, as officially; later
  pieces from their own streams).  The official loop re-seeds every piece with the same seed,
  so pieces of the same length start from identical noise.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import List, Optional, Sequence

import torch

from ..host import check_interrupt
from ..media.aspect_buckets import RESOLUTIONS
from ..models.wan.dit import LatentSegment
from .chunk_store import ChunkSink, FinishedChunk
from .extension_input import ExtensionInput, prepare_input, quantize
from .extension_plan import MODES, SHOT_SWITCH, SINGLE_SHOT, ExtensionPiece, ExtensionPlan, plan_extension
from .flow_sampler import sample_flow
from .guidance import Denoiser, ModelInputs
from .noise import NoiseSource, chunk_seed
from .resumable import PieceRun
from .sigmas import GRIDS, flow_schedule
from .video_codec import VideoCodec


@dataclass
class ExtensionSettings:
    mode: str = SINGLE_SHOT
    duration: int = 5             # seconds (single shot: any; shot switching: 2-5)
    resolution: str = "720P"      # bucket table of the official pipelines
    width: int = 0                # 0 = the bucket of the video's aspect at ``resolution``
    height: int = 0
    steps: int = 8
    shift: float = 8.0
    guidance: float = 1.0         # the released models are CFG-distilled: 1 = one pass
    seed: int = 42
    solver: str = "unipc"
    sigma_grid: str = "official"

    def check(self) -> None:
        if self.mode not in MODES:
            raise ValueError("mode must be one of %s, not %r" % (", ".join(MODES), self.mode))
        if self.resolution not in RESOLUTIONS:
            raise ValueError("resolution must be one of %s, not %r" % (", ".join(RESOLUTIONS), self.resolution))
        if self.sigma_grid not in GRIDS:
            raise ValueError("sigma_grid must be one of %s" % ", ".join(GRIDS))

    @property
    def size(self):
        return (self.width, self.height)


@dataclass
class ExtensionConditioning:
    video: torch.Tensor                     # IMAGE [T, H, W, 3], any size
    prompts: Sequence[ModelInputs]          # one per piece; the last repeats
    negative: Optional[ModelInputs] = None  # used only with guidance > 1

    def prompt_for(self, piece: int) -> ModelInputs:
        if not self.prompts:
            raise ValueError("no prompt given")
        return self.prompts[min(piece, len(self.prompts) - 1)]


@dataclass
class ExtensionResult:
    plan: ExtensionPlan
    input: ExtensionInput               # the input video at the working size
    frames_made: int
    resumed_pieces: int
    latents: List[torch.Tensor] = field(default_factory=list)  # per piece: its new latents (normalised, CPU)


def plan_and_input(settings: ExtensionSettings, video: torch.Tensor):
    """(plan, the input at the working size): everything decided before the model runs."""
    settings.check()
    plan = plan_extension(settings.mode, settings.duration)
    return plan, prepare_input(video, plan.condition_frames, settings.resolution, settings.size)


def extend_video(model, codec: VideoCodec, settings: ExtensionSettings, cond: ExtensionConditioning,
                 sink: ChunkSink, chunk_dir: Optional[str] = None) -> ExtensionResult:
    """Make the new frames; each finished piece goes to ``sink`` (and to ``chunk_dir`` if given)."""
    plan, inp = plan_and_input(settings, cond.video)
    schedule = flow_schedule(settings.steps, settings.shift, settings.sigma_grid)
    tail = inp.prefix  # the frames the next piece continues from
    n = plan.condition_frames
    made, latents = 0, []
    label = "V3 single-shot extension" if settings.mode == SINGLE_SHOT else "V3 shot switching"
    with PieceRun(sink, chunk_dir, _signature(settings, cond, inp), asdict(settings),
                  settings.steps * len(plan.pieces), label) as run:
        for piece in plan.pieces:
            fin = run.saved(piece.index)
            if fin is not None:
                run.replay(fin, settings.steps)
            else:
                fin = _make_piece(model, codec, piece, tail, settings, cond, schedule, run.progress)
                run.finish(fin)
            tail = quantize(torch.cat([tail, fin.frames[-n:]], dim=0)[-n:])
            latents.append(fin.latents)
            made += fin.frames.shape[0]
    return ExtensionResult(plan=plan, input=inp, frames_made=made, resumed_pieces=run.replayed, latents=latents)


def _make_piece(model, codec: VideoCodec, piece: ExtensionPiece, tail: torch.Tensor, settings: ExtensionSettings,
                cond: ExtensionConditioning, schedule, progress) -> FinishedChunk:
    device = model.device
    context = codec.encode(tail).to(device)  # [1, 16, P, h, w]
    if context.shape[2] != piece.prefix_latents:
        raise ValueError("the conditioning frames gave %d latent frames, expected %d"
                         % (context.shape[2], piece.prefix_latents))
    _, _, _, h, w = context.shape
    x = NoiseSource(chunk_seed(settings.seed, piece.index)).randn((1, 16, piece.new_latents, h, w), device=device)
    segment = LatentSegment(context, rope_start=piece.rope_start_prefix, t=0.0)

    def place(inputs: ModelInputs) -> ModelInputs:
        return replace(inputs.to(model), segments=(segment,), rope_frame_offset=piece.rope_start_new)

    # Official rule: guidance only above a scale of 1.
    negative = place(cond.negative) if cond.negative is not None and settings.guidance > 1 else None
    den = Denoiser(model, place(cond.prompt_for(piece.index)), negative, settings.guidance)
    with torch.no_grad():
        z = sample_flow(den, x, schedule, settings.solver, progress=progress)
    check_interrupt()
    if piece.dropped_frames:  # single shot: decode [prefix; new], drop the prefix frames (official)
        frames = codec.decode(torch.cat([context, z], dim=2))[piece.dropped_frames:]
    else:
        frames = codec.decode(z)
    if frames.shape[0] != piece.kept_frames:
        raise RuntimeError("piece %d decoded to %d new frames, expected %d"
                           % (piece.index, frames.shape[0], piece.kept_frames))
    return FinishedChunk(piece.index, frames, z.float().cpu(), None)


def tensor_digest(t: Optional[torch.Tensor]):
    """A short fingerprint of a tensor for the run signature: shape, sum and sum of squares."""
    if t is None:
        return None
    t = t.detach().float().cpu()
    return [list(t.shape), round(float(t.sum()), 3), round(float((t * t).sum()), 3)]


def _signature(s: ExtensionSettings, cond: ExtensionConditioning, inp: ExtensionInput) -> dict:
    return {
        "settings": asdict(s),
        "prompts": [tensor_digest(p.context) for p in cond.prompts],
        "negative": tensor_digest(cond.negative.context) if cond.negative is not None and s.guidance > 1 else None,
        "prefix": tensor_digest(inp.prefix),
    }


__all__ = ["ExtensionSettings", "ExtensionConditioning", "ExtensionResult", "extend_video", "plan_and_input",
           "SINGLE_SHOT", "SHOT_SWITCH"]
