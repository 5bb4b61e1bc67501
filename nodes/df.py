"""The diffusion-forcing sampler node (long video, any length) and its options node."""
from __future__ import annotations

import torch

from .. import host
from ..models.wan import latent_space
from ..sampling import conditioning as cond
from ..sampling.chunk_store import CollectFrames
from ..sampling.df_video import HISTORY_MODES, DFConditioning, DFVideoSettings, generate_df_video
from ..sampling.video_sampler import GRID_CHOICES, SOLVER_CHOICES
from . import handles
from .base import (SAMPLING, NodeError, check_chunk_folder, chunk_folder_input, resolve_chunk_folder, seed_input,
                   size_inputs)
from .model_session import dit_and_codec, run_identity, step_caches
from .validation import check_size

COLOR_MATCH = ["none", "mean_std_lab", "mean_std_rgb"]


class DFOptions:
    DESCRIPTION = "Less used diffusion-forcing settings, with the official defaults. Connect to the DF sampler."
    CATEGORY = SAMPLING
    RETURN_TYPES = (handles.DF_OPTIONS,)
    RETURN_NAMES = ("options",)
    OUTPUT_TOOLTIPS = ("Connect to the 'options' input of the SkyReels DF sampler.",)
    FUNCTION = "make"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "base_num_frames": ("INT", {
                    "default": 97, "min": 5, "max": 1001, "step": 4,
                    "tooltip": "Frames the model makes at once (one chunk): 97 at 540P, 121 at 720P. Lower (77, 57) "
                               "needs less memory."}),
                "overlap_history": ("INT", {
                    "default": 17, "min": 1, "max": 997, "step": 4,
                    "tooltip": "Frames each chunk takes over from the previous one (4k+1; official 17 or 37). "
                               "More overlap = smoother, fewer new frames per chunk."}),
                "addnoise_condition": ("INT", {
                    "default": 20, "min": 0, "max": 999,
                    "tooltip": "Noise added to the carried-over frames the model sees (official 20; keep under 50). "
                               "Helps long videos stay consistent."}),
                "fps": ("FLOAT", {"default": 24.0, "min": 1.0, "max": 120.0, "step": 1.0,
                                  "tooltip": "Frame rate the DF-1.3B model is told (16 or other) and the "
                                             "frame rate of the video."}),
                "history": (list(HISTORY_MODES), {
                    "default": "latent",
                    "tooltip": "How the overlap is carried. latent: the chunk's last latents as they are (no VAE "
                               "round trip; cheaper, no colour shift from re-encoding). pixel: the official way: "
                               "decode, then re-encode the last overlap frames (one extra VAE encode per chunk)."}),
                "color_match": (COLOR_MATCH, {
                    "default": "none",
                    "tooltip": "Match each chunk's colours to the first chunk (mean and spread in Lab or RGB) "
                               "against brightness and colour drift."}),
                "color_match_strength": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.05,
                                                   "tooltip": "0 = off, 1 = full colour match."}),
                "causal_attention": ("BOOLEAN", {
                    "default": False,
                    "tooltip": "Block-causal self-attention over latent frames (blocks of causal_block_size), the "
                               "official --causal_attention flag. Off = full attention inside a chunk (official default)."}),
                "solver": (list(SOLVER_CHOICES), {
                    "default": "unipc", "tooltip": "unipc (official), euler, or lcm for step-distilled models and LoRAs."}),
                "sigma_grid": (list(GRID_CHOICES), {
                    "default": "official", "tooltip": "Sigma grid (official for V2; simple for step-distilled LoRAs)."}),
                "chunk_folder": chunk_folder_input("chunk", "chunks"),
                "auto_orient": ("BOOLEAN", {
                    "default": True,
                    "tooltip": "Swap width and height when the start image is portrait and the size landscape "
                               "(official rule)."}),
            },
        }

    @classmethod
    def VALIDATE_INPUTS(cls, base_num_frames=None, overlap_history=None, chunk_folder=None, **_):
        from ..sampling.df_plan import DFPlanError, check_window

        if base_num_frames is not None and overlap_history is not None:
            try:
                check_window(base_num_frames, overlap_history)
            except DFPlanError as e:
                return str(e)
        return check_chunk_folder(chunk_folder)

    def make(self, **kw):
        return (handles.DFOptions(**kw),)


class DFSampler:
    DESCRIPTION = ("SkyReels-V2 diffusion forcing: videos of any length in chunks, synchronous (ar_step 0) or "
                   "asynchronous (ar_step 5, causal_block_size 5), from text, a start image, start and end images, "
                   "or a video to extend; a prompt per chunk ('|' in the prompt). Decodes as it goes, so memory "
                   "does not grow with the length.")
    CATEGORY = SAMPLING
    RETURN_TYPES = ("IMAGE", "LATENT")
    RETURN_NAMES = ("images", "latent")
    OUTPUT_TOOLTIPS = ("The video frames (an extended video includes the input frames first).",
                       "Latents of the generated frames, raw Wan VAE space.")
    FUNCTION = "sample"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": (handles.DIT, {"lazy": True, "tooltip": "A SkyReels-V2-DF model (DF-1.3B or DF-14B)."}),
                "vae": (handles.VAE, {"lazy": True, "tooltip": "The Wan2.1 VAE (decodes each chunk, encodes images and videos)."}),
                "positive": ("CONDITIONING", {"lazy": True, "tooltip": "The prompt; 'a | b | c' gives chunks their own prompts."}),
                "negative": ("CONDITIONING", {"lazy": True, "tooltip": "The negative prompt."}),
                **size_inputs(960, 544, 257, frames_tip=(
                    "Frames to make, 4k+1 (257 = 10 s, 737 = 30 s at 24 fps). When extending a video: the new "
                    "frames to add, a multiple of 4."), frames_step=1),
                "seed": seed_input(),
                "steps": ("INT", {"default": 30, "min": 1, "max": 200, "tooltip": "Denoising steps per chunk (30)."}),
                "cfg": ("FLOAT", {"default": 6.0, "min": 0.0, "max": 30.0, "step": 0.1,
                                  "tooltip": "Guidance scale (official 6). 1 skips the negative pass."}),
                "shift": ("FLOAT", {"default": 8.0, "min": 0.0, "max": 100.0, "step": 0.1,
                                    "tooltip": "Sigma shift (official 8; 5 is suggested for image-to-video)."}),
                "ar_step": ("INT", {"default": 0, "min": 0, "max": 100,
                                    "tooltip": "0 = synchronous. >0 = asynchronous: each block of frames starts "
                                               "ar_step rows after the previous one (official 5). Slower; may follow "
                                               "the prompt better."}),
                "causal_block_size": ("INT", {"default": 1, "min": 1, "max": 64,
                                              "tooltip": "Latent frames per block (1 sync, 5 async). Every chunk's "
                                                         "latent length must be a multiple of it."}),
            },
            "optional": {
                "start_image": ("IMAGE", {"tooltip": "First frame (image-to-video by a clean first latent)."}),
                "end_image": ("IMAGE", {"tooltip": "Last frame to reach (start-and-end-frame video)."}),
                "video": ("IMAGE", {"tooltip": "A video to extend; it must have at least overlap_history frames."}),
                "options": (handles.DF_OPTIONS, {"tooltip": "The DF options node (defaults are the official ones)."}),
                "cache": (handles.STEP_CACHE, {"tooltip": "TeaCache settings."}),
            },
        }

    @classmethod
    def VALIDATE_INPUTS(cls, width=None, height=None, shift=None, **_):
        if shift is not None and shift <= 0:
            return "'shift' must be above 0 (official 8, or 5 for image-to-video), got %s" % shift
        return check_size(width, height, None)

    def check_lazy_status(self, model=None, vae=None, positive=None, negative=None, **kw):
        """Runs before the models are loaded (they are lazy inputs): an impossible frame plan,
        a chunk folder that cannot be used, or settings that cannot work stop the run here."""
        _plan(**{k: v for k, v in kw.items() if k in _PLAN_ARGS})
        return [name for name, v in (("model", model), ("vae", vae), ("positive", positive), ("negative", negative))
                if v is None]

    def sample(self, model, vae, positive, negative, width, height, num_frames, seed, steps, cfg, shift, ar_step,
               causal_block_size, start_image=None, end_image=None, video=None, options=None, cache=None):
        from ..media.frames import center_crop_resize, orient_like, resize_frames

        opt = options or handles.DFOptions()
        plan, settings, chunk_dir = _plan(width, height, num_frames, seed, steps, cfg, shift, ar_step,
                                          causal_block_size, start_image, end_image, video, options)
        if start_image is not None and opt.auto_orient:
            width, height = orient_like(width, height, start_image)
            settings.width, settings.height = width, height
        for what, v in (("model", model), ("vae", vae), ("positive", positive), ("negative", negative)):
            if v is None:
                raise NodeError("the %s input is not connected" % what)
        cfg_model = model.config
        if cfg_model.image_dim:
            raise NodeError("%s is an image-to-video model; diffusion forcing needs a SkyReels-V2-DF model "
                            "(it does image-to-video by a clean first frame)" % model.name)
        if cfg_model.variant != "df":
            host.log("%s is not marked as a DF model; diffusion forcing works best with SkyReels-V2-DF" % model.name)
        # only the prompts the chunks use are encoded (a prompt may have more '|' parts than chunks)
        prompts = cond.model_inputs(positive, cfg_model.text_dim, cfg_model.text_len, "positive",
                                    count=len(plan.chunks))
        neg = cond.model_inputs(negative, cfg_model.text_dim, cfg_model.text_len, "negative", count=1)[0]
        start = center_crop_resize(start_image[:1], width, height) if start_image is not None else None
        end = center_crop_resize(end_image[-1:], width, height) if end_image is not None else None
        clip = resize_frames(video, width, height) if video is not None else None
        folder = resolve_chunk_folder(chunk_dir)
        identity = run_identity(model, cache, vae=vae)
        sink = CollectFrames()
        chunk_latents = (min(num_frames, opt.base_num_frames) - 1) // 4 + 2  # + an end frame
        latent = (chunk_latents, height // 8, width // 8)
        with dit_and_codec(model, vae, latent, teacache=cache is not None) as (dit, codec):
            res = generate_df_video(
                dit, codec, settings, DFConditioning([p.to(dit) for p in prompts], neg.to(dit), start, end, clip),
                sink, chunk_dir=folder, identity=identity,
                cache_factory=(lambda rows: step_caches(cache, cfg_model, rows, (height // 8, width // 8)))
                if cache is not None else None,
                color_match=_color_match)
        images = sink.images()
        if clip is not None:
            images = torch.cat([clip, images], dim=0)
        return (images, {"samples": latent_space.denormalize(res.latents)})


_PLAN_ARGS = ("width", "height", "num_frames", "seed", "steps", "cfg", "shift", "ar_step", "causal_block_size",
              "start_image", "end_image", "video", "options")


def _plan(width, height, num_frames, seed, steps, cfg, shift, ar_step, causal_block_size, start_image=None,
          end_image=None, video=None, options=None):
    """(plan, settings, chunk folder name): every check that needs no model, or a NodeError."""
    from ..sampling.df_plan import DFPlanError
    from ..sampling.df_video import plan_for

    opt = options or handles.DFOptions()
    if video is not None and start_image is not None:
        raise NodeError("give either a video to extend or a start image, not both")
    settings = DFVideoSettings(
        width=width, height=height, num_frames=num_frames, base_num_frames=opt.base_num_frames,
        overlap_history=opt.overlap_history, steps=steps, shift=shift, guidance=cfg, ar_step=ar_step,
        causal_block_size=causal_block_size, addnoise_condition=opt.addnoise_condition, fps=opt.fps, seed=seed,
        solver=opt.solver, sigma_grid=opt.sigma_grid, history=opt.history, causal_attention=opt.causal_attention,
        color_match=opt.color_match, color_match_strength=opt.color_match_strength)
    try:
        plan = plan_for(settings, start_image is not None, end_image is not None,
                        int(video.shape[0]) if video is not None else None)
    except (DFPlanError, ValueError) as e:
        raise NodeError(str(e)) from e
    chunk_dir = (opt.chunk_folder or "").strip()
    if chunk_dir:
        from ..sampling.chunk_store import ChunkFolder

        try:
            host.check_output_dir(chunk_dir, "chunk_folder")
            ChunkFolder.check_usable(host.resolve_output_dir(chunk_dir, create=False, what="chunk_folder"))
        except ValueError as e:
            raise NodeError(str(e)) from e
    return plan, settings, chunk_dir


def _color_match(frames, reference, method, strength):
    from ..media.color_match import match_colors

    return match_colors(frames, reference, method=method, strength=strength)


NODES = [
    ("SkyReelsDFSampler", DFSampler, "SkyReels Diffusion Forcing Sampler"),
    ("SkyReelsDFOptions", DFOptions, "SkyReels Diffusion Forcing Options"),
]
