"""The text/image-to-video sampler node and the TeaCache settings node."""
from __future__ import annotations

from .. import host
from ..models.wan import latent_space
from ..sampling import conditioning as cond
from ..sampling.video_sampler import GRID_CHOICES, SOLVER_CHOICES, SampleSettings, sample_video
from . import handles
from .base import SAMPLING, NodeError, seed_input
from .model_session import dit_session, step_caches


class Sampler:
    DESCRIPTION = ("Samples a SkyReels-V2 / Wan video: flow matching with the official UniPC solver and "
                   "classifier-free guidance. Text-to-video from an empty latent, image-to-video from the "
                   "image-to-video conditioning, SkyReels-A2 and V3 reference-to-video from the reference "
                   "injector nodes (R2V: the official three-pass guidance when cfg is above 1).")
    CATEGORY = SAMPLING
    RETURN_TYPES = ("LATENT",)
    RETURN_NAMES = ("latent",)
    OUTPUT_TOOLTIPS = ("The video latent in raw Wan VAE space (ComfyUI's VAE Decode reads it too).",)
    FUNCTION = "sample"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": (handles.DIT, {"tooltip": "From the SkyReels DiT loader."}),
                "positive": ("CONDITIONING", {"tooltip": "The prompt (ours or ComfyUI's umT5 text encode)."}),
                "negative": ("CONDITIONING", {"tooltip": "The negative prompt."}),
                "latent": ("LATENT", {"tooltip": "Sets the size: an empty latent (text-to-video) or the latent "
                                                 "of the image-to-video node."}),
                "seed": seed_input(),
                "steps": ("INT", {"default": 30, "min": 1, "max": 200,
                                  "tooltip": "Denoising steps (official default 30)."}),
                "cfg": ("FLOAT", {"default": 6.0, "min": 0.0, "max": 30.0, "step": 0.1,
                                  "tooltip": "Guidance scale: 6 for text-to-video, 5 for image-to-video (official). "
                                             "1 skips the negative pass (twice as fast)."}),
                "shift": ("FLOAT", {"default": 8.0, "min": 0.0, "max": 100.0, "step": 0.1,
                                    "tooltip": "Sigma shift: 8 for text-to-video, 5 for image-to-video (official)."}),
                "solver": (list(SOLVER_CHOICES), {"default": "unipc",
                                                  "tooltip": "unipc: the official UniPC (order 2, bh2). euler: plain Euler. "
                                                             "lcm: for step-distilled models and LoRAs (lightx2v, CausVid): "
                                                             "predict the clean video, re-noise to the next step."}),
                "sigma_grid": (list(GRID_CHOICES), {
                    "default": "official",
                    "tooltip": "official: the FlowUniPC grid (sigma starts at 0.999, integer timesteps) of SkyReels-V2, "
                               "also what SkyReels-A2 and V3 R2V ran with (diffusers up to 0.36 built it). diffusers: "
                               "the grid of newer diffusers (starts at 1). simple: evenly spaced timesteps from 1000 "
                               "(4 steps: 1000, 750, 500, 250 before the shift, the step list of the lightx2v distilled "
                               "models and LoRAs)."}),
            },
            "optional": {
                "cache": (handles.STEP_CACHE, {"tooltip": "TeaCache settings: skip some steps' blocks when they "
                                                         "change little (faster, slightly lower quality)."}),
            },
        }

    @classmethod
    def VALIDATE_INPUTS(cls, shift=None, **_):
        if shift is not None and shift <= 0:
            return "'shift' must be above 0 (official 8 for text-to-video, 5 for image-to-video), got %s" % shift
        return True

    def sample(self, model, positive, negative, latent, seed, steps, cfg, shift, solver, sigma_grid, cache=None):
        samples = latent["samples"]
        if samples.dim() != 5 or samples.shape[1] != latent_space.CHANNELS:
            raise NodeError("the latent must be a Wan video latent [batch, 16, frames, h, w], got %s"
                            % list(samples.shape))
        B, _, F, h, w = samples.shape
        cfg_model = model.config
        y = cond.image_condition(positive, F, h, w, latent_space.normalize)
        clip = cond.clip_tokens(positive)
        refs, neg_refs = self._time_refs(model, positive, negative, h, w)
        if cfg_model.image_dim and (y is None or clip is None):
            raise NodeError("%s is an image-to-video model: connect the image-to-video node (with a CLIP vision "
                            "output), or for SkyReels-A2 the A2 elements node, between the text encode and the "
                            "sampler" % model.name)
        if not cfg_model.image_dim and y is not None:
            raise NodeError("%s is a text-to-video model but the conditioning carries a start image; use an "
                            "I2V model, or the diffusion-forcing sampler for image-to-video with DF models" % model.name)
        if y is not None and cfg_model.in_dim != 16 + y.shape[1]:
            raise NodeError("the model takes %d input channels; image conditioning gives %d"
                            % (cfg_model.in_dim, 16 + y.shape[1]))
        pos = cond.model_inputs(positive, cfg_model.text_dim, cfg_model.text_len, "positive", y=y, clip=clip,
                                refs=refs, count=1)[0]
        neg = cond.model_inputs(negative, cfg_model.text_dim, cfg_model.text_len, "negative", y=y, clip=clip,
                                refs=neg_refs, count=1)[0]
        settings = SampleSettings(steps=steps, cfg=cfg, shift=shift, seed=seed, solver=solver, sigma_grid=sigma_grid,
                                  cfg_img=cond.image_cfg(positive))
        frames_seen = F + (refs.shape[2] if refs is not None else 0)  # reference frames count in the budget
        with dit_session(model, (frames_seen, h, w), teacache=cache is not None) as dit:
            z = sample_video(dit, (B, latent_space.CHANNELS, F, h, w), pos.to(dit), neg.to(dit), settings,
                             step_caches(cache, model.config, steps, (h, w)))
        return ({"samples": latent_space.denormalize(z)},)


    @staticmethod
    def _time_refs(model, positive, negative, h, w):
        """Normalised time-axis references of the positive and the negative (V3 R2V), or (None, None).

        A negative without references uses the positive's: the official text-uncond pass keeps them."""
        try:
            refs = cond.time_refs(positive, h, w, latent_space.normalize)
            neg = cond.time_refs(negative, h, w, latent_space.normalize)
        except ValueError as e:
            raise NodeError(str(e)) from None
        if refs is None:
            if model.config.variant == "r2v":
                host.log("%s is the SkyReels-V3 reference-to-video model but no references are connected; "
                         "add the V3 references node for what it was made for" % model.name)
            return None, None
        if model.config.image_dim or model.config.in_dim != latent_space.CHANNELS:
            raise NodeError("%s is not a reference-to-video model (it takes %d input channels and %s image branch); "
                            "time-axis references need SkyReels-V3 R2V" % (
                                model.name, model.config.in_dim, "an" if model.config.image_dim else "no"))
        if model.config.variant != "r2v":
            host.log("%s was not recognised as SkyReels-V3 R2V (variant %s); the references are used anyway. Set "
                     "variant r2v on the loader if this is the R2V checkpoint" % (model.name, model.config.variant))
        return refs, (neg if neg is not None else refs)


class TeaCache:
    DESCRIPTION = ("TeaCache: reuses the block output of the previous step when the timestep embedding barely "
                   "changes, with the official per-model coefficients. 0.1 ~ 2x faster, 0.2 ~ 3x (official).")
    CATEGORY = SAMPLING
    RETURN_TYPES = (handles.STEP_CACHE,)
    RETURN_NAMES = ("cache",)
    OUTPUT_TOOLTIPS = ("Connect to a SkyReels sampler's 'cache' input.",)
    FUNCTION = "make"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "threshold": ("FLOAT", {"default": 0.2, "min": 0.0, "max": 2.0, "step": 0.01,
                                        "tooltip": "Accumulated relative change below which a step is skipped. "
                                                   "Higher = faster and lower quality (official 0.2; README 0.3)."}),
                "use_ret_steps": ("BOOLEAN", {"default": True,
                                              "tooltip": "Use the modulated input and retention steps (the official "
                                                         "recommendation: better quality at the same speed)."}),
            },
        }

    def make(self, threshold, use_ret_steps):
        return (handles.StepCacheSettings(threshold=threshold, use_ret_steps=use_ret_steps),)


NODES = [
    ("SkyReelsSampler", Sampler, "SkyReels Sampler"),
    ("SkyReelsTeaCache", TeaCache, "SkyReels TeaCache"),
]
