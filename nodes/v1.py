"""SkyReels-V1 nodes (HunyuanVideo 13B, text-to-video and image-to-video).

Loaders for the DiT, the two text encoders and the VAE; text encode; image-to-video
conditioning; the sampler (flow-matching Euler, shift 7, true CFG with the negative prompt
and the embedded guidance); VAE decode.  The empty latent is SkyReels Empty Video Latent (the
HunyuanVideo latent has the Wan latent's shape).  CONDITIONING has the layout of ComfyUI's own
HunyuanVideo text encoder, and LATENT holds raw VAE latents, so core nodes connect both ways.
"""
from __future__ import annotations

import torch

from .. import host
from ..models.placement import on_device
from . import handles
from .base import CONDITIONING, LATENT, LOADERS, SAMPLING, NodeError, model_list, seed_input, size_inputs
from .loaders import ATTENTION, COMPUTE_DTYPES, WEIGHT_DTYPES, _compute_dtype, _path
from .model_session import dit_session
from .validation import check_size

DEFAULT_PROMPT = ("FPS-24, A woman in a red coat walks through a snowy city street at night, neon signs reflecting "
                  "on the wet pavement, she turns to the camera and smiles, cinematic lighting, shallow depth of field.")


def _negative() -> str:
    from ..models.hunyuan.text_encoder import NEGATIVE_PROMPT

    return NEGATIVE_PROMPT


class V1ModelLoader:
    DESCRIPTION = ("Loads the SkyReels-V1 diffusion transformer (HunyuanVideo 13B): Kijai's / Comfy-Org's single "
                   "files (bf16, fp8), ComfyUI checkpoints or the official diffusers folders. Text-to-video (16 "
                   "channels) or image-to-video (32) is read from the weights.")
    CATEGORY = LOADERS
    RETURN_TYPES = (handles.V1_DIT,)
    RETURN_NAMES = ("model",)
    OUTPUT_TOOLTIPS = ("The SkyReels-V1 DiT with its detected configuration.",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": (model_list("diffusion_models"), {
                    "tooltip": "A file or folder in ComfyUI's models/diffusion_models: skyreels_hunyuan_t2v_bf16 / "
                               "_fp8_e4m3fn, skyreels_hunyuan_i2v_* (.safetensors or .gguf), or the "
                               "Skywork/SkyReels-V1-Hunyuan-T2V / -I2V folder."}),
                "weight_dtype": (WEIGHT_DTYPES, {
                    "default": "auto",
                    "tooltip": "How weights are kept in memory. auto: fp8 files stay fp8, others in the compute dtype. "
                               "The 13B model needs about 26 GB in bf16, 13 GB in fp8, 7 GB in nf4."}),
                "compute_dtype": (COMPUTE_DTYPES, {
                    "default": "auto", "tooltip": "Precision of the matrix products (auto: bf16 on GPUs, fp32 on CPU)."}),
                "attention": (ATTENTION, {
                    "default": "auto",
                    "tooltip": "Attention kernel: auto picks SageAttention or flash-attention when installed, else SDPA."}),
                "vram_budget_gb": ("FLOAT", {
                    "default": 0.0, "min": 0.0, "max": 1024.0, "step": 0.5,
                    "tooltip": "GPU memory the DiT may use, in GB. 0 = the whole model on the GPU. With a budget, "
                               "blocks that do not fit stream in just in time (e.g. 10 on a 12 GB card with fp8). "
                               "Leave room for the VAE decode."}),
            },
            "optional": {
                "path": ("STRING", {"default": "", "tooltip": "A full path; overrides 'model' when not empty."}),
                "compile": ("BOOLEAN", {"default": False, "tooltip": "torch.compile the blocks (falls back when "
                                                                      "unsupported)."}),
            },
        }

    def load(self, model, weight_dtype, compute_dtype, attention, vram_budget_gb, path="", compile=False):
        from ..models.hunyuan.dit_loader import load_hunyuan_dit

        full = _path("diffusion_models", model, path)
        device = host.torch_device()
        quant = weight_dtype if weight_dtype in ("int8", "nf4") else None
        dit, cfg = load_hunyuan_dit(full, weight_dtype="bf16" if quant else weight_dtype,
                                    compute_dtype=_compute_dtype(compute_dtype, device), device=host.offload_device(),
                                    attention=attention, compute_device=device)
        if quant:
            from ..memory.quant import quantize_blocks

            quantize_blocks(dit, quant)
        if compile:
            from ..memory.compile import compile_blocks

            compile_blocks(dit)
        host.log("loaded %s: SkyReels-V1 %s (%s naming), %d + %d blocks, width %d"
                 % (full, cfg.variant.upper(), dit.naming, cfg.depth, cfg.depth_single_blocks, cfg.hidden_size))
        return (handles.DiTHandle(dit, cfg, full, float(vram_budget_gb), bool(compile)),)


class V1TextEncoderLoader:
    DESCRIPTION = ("Loads the SkyReels-V1 text encoders: llava-llama-3-8b (Comfy-Org llava_llama3_fp8_scaled / "
                   "_fp16, or a diffusers text_encoder folder) and CLIP-L (clip_l.safetensors or text_encoder_2). "
                   "Tokenizers come from a folder beside the files or from ComfyUI's own copies.")
    CATEGORY = LOADERS
    RETURN_TYPES = (handles.V1_TEXT_ENCODER,)
    RETURN_NAMES = ("text_encoder",)
    OUTPUT_TOOLTIPS = ("Both text encoders with their tokenizers.",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "llama": (model_list("text_encoders"), {
                    "tooltip": "llava-llama-3-8b in models/text_encoders: llava_llama3_fp8_scaled.safetensors, "
                               "llava_llama3_fp16.safetensors, or a diffusers text_encoder folder."}),
                "clip": (model_list("text_encoders"), {
                    "tooltip": "CLIP-L text encoder in models/text_encoders: clip_l.safetensors or a diffusers "
                               "text_encoder_2 folder."}),
                "weight_dtype": (["auto", "bf16", "fp16", "fp32", "fp8_e4m3fn"], {
                    "default": "auto", "tooltip": "How the Llama weights are kept (auto keeps the file's; fp8 ~ 9 GB)."}),
                "run_on_cpu": ("BOOLEAN", {
                    "default": False,
                    "tooltip": "Encode on the CPU (slower, no GPU memory): for cards that cannot hold the 8B Llama."}),
                "vram_budget_gb": ("FLOAT", {
                    "default": 0.0, "min": 0.0, "max": 1024.0, "step": 0.5,
                    "tooltip": "GPU memory the Llama may use while encoding, in GB. 0 = all of it on the GPU (about "
                               "7.5 GB in fp8, 15 GB in fp16). With a budget its layers stream in (e.g. 3 on an 8 GB "
                               "card)."}),
            },
            "optional": {
                "llama_tokenizer": ("STRING", {"default": "", "tooltip": "Folder with the Llama-3 tokenizer.json, "
                                                                        "if none is found beside the file."}),
                "clip_tokenizer": ("STRING", {"default": "", "tooltip": "Folder with CLIP's vocab.json and merges.txt, "
                                                                       "if none is found beside the file."}),
            },
        }

    def load(self, llama, clip, weight_dtype, run_on_cpu, vram_budget_gb, llama_tokenizer="", clip_tokenizer=""):
        from ..models.hunyuan.text_encoder import HunyuanTextEncoder, load_clip_l, load_llama_encoder
        from ..models.hunyuan.tokenizers import TokenizerError
        from ..models.loading.checkpoint import CheckpointError

        llama_path, clip_path = _path("text_encoders", llama, ""), _path("text_encoders", clip, "")
        # tokenizer folders given by name are read inside the text_encoders folders only
        llama_tokenizer = _path("text_encoders", "", llama_tokenizer) if (llama_tokenizer or "").strip() else ""
        clip_tokenizer = _path("text_encoders", "", clip_tokenizer) if (clip_tokenizer or "").strip() else ""
        device = torch.device("cpu") if run_on_cpu else host.torch_device()
        dt = _compute_dtype("auto", device)
        try:
            lm = load_llama_encoder(llama_path, weight_dtype=weight_dtype, compute_dtype=dt,
                                    device=host.offload_device(), tokenizer_path=llama_tokenizer or None)
            cl = load_clip_l(clip_path, compute_dtype=dt, device=host.offload_device(),
                             tokenizer_path=clip_tokenizer or None)
        except (CheckpointError, TokenizerError) as e:
            raise NodeError(str(e)) from e
        return (handles.V1TextEncoderHandle(HunyuanTextEncoder(lm, cl), llama_path, clip_path, bool(run_on_cpu),
                                            float(vram_budget_gb)),)


class V1TextEncode:
    DESCRIPTION = ("Encodes a prompt and a negative prompt for SkyReels-V1: llava-llama-3 states with the "
                   "HunyuanVideo template and CLIP-L pooled text. The prompt should start with 'FPS-24, ' (added "
                   "when missing).")
    CATEGORY = CONDITIONING
    RETURN_TYPES = ("CONDITIONING", "CONDITIONING")
    RETURN_NAMES = ("positive", "negative")
    OUTPUT_TOOLTIPS = ("The prompt, in the layout of ComfyUI's HunyuanVideo text encoder.", "The negative prompt.")
    FUNCTION = "encode"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "text_encoder": (handles.V1_TEXT_ENCODER, {"tooltip": "From the SkyReels V1 Text Encoder Loader."}),
                "prompt": ("STRING", {"multiline": True, "default": DEFAULT_PROMPT,
                                      "tooltip": "What the video shows. SkyReels-V1 was trained with an 'FPS-24, ' "
                                                 "prefix."}),
                "negative_prompt": ("STRING", {"multiline": True, "default": _negative(),
                                               "tooltip": "What to avoid; the default is the official one."}),
                "add_fps_prefix": ("BOOLEAN", {"default": True,
                                               "tooltip": "Put 'FPS-24, ' in front of the prompt when it does not "
                                                          "start with an FPS prefix (the official format)."}),
            },
        }

    def encode(self, text_encoder, prompt, negative_prompt, add_fps_prefix):
        from ..models.hunyuan.conditioning import make_conditioning
        from ..models.hunyuan.text_encoder import with_fps_prefix

        if not prompt.strip():
            raise NodeError("the prompt is empty")
        if add_fps_prefix:
            prompt = with_fps_prefix(prompt)
        enc = text_encoder.encoder
        prompts = (prompt, negative_prompt)
        if text_encoder.run_on_cpu:
            texts = [enc.llama.encode(p) for p in prompts]
        else:
            from ..memory.offload import prepare_for_sampling, release

            prepare_for_sampling(enc.llama.model, host.torch_device(), text_encoder.vram_budget_gb or None,
                                 latent_shape=(1, 1, 1))
            try:
                texts = [enc.llama.encode(p) for p in prompts]
            finally:
                release(enc.llama.model)
        with on_device(enc.clip.model, torch.device("cpu") if text_encoder.run_on_cpu else None):
            pooled = [enc.clip.encode(p) for p in prompts]
        (pos_text, neg_text), (pos_pooled, neg_pooled) = [t.float().cpu() for t in texts], pooled
        return (make_conditioning(pos_text, pos_pooled), make_conditioning(neg_text, neg_pooled))


class V1VAELoader:
    DESCRIPTION = "Loads the HunyuanVideo VAE used by SkyReels-V1 (hunyuan_video_vae_bf16.safetensors or a diffusers vae)."
    CATEGORY = LOADERS
    RETURN_TYPES = (handles.V1_VAE,)
    RETURN_NAMES = ("vae",)
    OUTPUT_TOOLTIPS = ("The VAE with its tiling settings.",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": (model_list("vae"), {"tooltip": "The HunyuanVideo VAE in ComfyUI's models/vae."}),
                "dtype": (["fp32", "bf16", "fp16"], {
                    "default": "fp32", "tooltip": "Precision of the VAE (the official code runs fp32; bf16 halves "
                                                  "its memory)."}),
                "tiling": (["official", "small tiles"], {
                    "default": "official",
                    "tooltip": "official: the official tiles (windows of 5 latent frames, 256 px tiles, in-place "
                               "cross-fades), about 6 GB of working memory in fp32 (bf16 about half). small tiles: ours, "
                               "any tile size (below; 128 px needs about 1.5 GB in fp32), blended seams; for 8 GB "
                               "cards."}),
                "tile_size": ("INT", {"default": 128, "min": 64, "max": 1024, "step": 32,
                                      "tooltip": "Tile size in pixels for 'small tiles'."}),
                "tile_overlap": ("INT", {"default": 48, "min": 0, "max": 512, "step": 8,
                                         "tooltip": "Overlap of neighbouring tiles in pixels for 'small tiles'."}),
            },
            "optional": {
                "path": ("STRING", {"default": "", "tooltip": "A full path; overrides 'model' when not empty."}),
            },
        }

    def load(self, model, dtype, tiling, tile_size, tile_overlap, path=""):
        from ..models.hunyuan.vae_loader import load_hunyuan_vae
        from ..models.loading.checkpoint import CheckpointError

        full = _path("vae", model, path)
        storage = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[dtype]
        try:
            vae, _ = load_hunyuan_vae(full, dtype=storage, device=host.offload_device())
        except CheckpointError as e:
            raise NodeError(str(e)) from e
        tile = None
        if tiling == "small tiles":
            from ..models.wan.vae_tiling import VAETiling

            if tile_overlap >= tile_size:
                raise NodeError("tile_overlap (%d) must be smaller than tile_size (%d)" % (tile_overlap, tile_size))
            tile = VAETiling(tile_px=tile_size, overlap_px=tile_overlap)
        return (handles.V1VAEHandle(vae, full, tile),)


class V1ImageToVideo:
    DESCRIPTION = ("Image-to-video conditioning for SkyReels-V1-I2V, as the official pipeline: the start image is "
                   "center-cropped to the video's aspect, resized (Lanczos), VAE-encoded (a posterior sample, seeded) "
                   "and attached to both conditionings; ComfyUI's own HunyuanVideo I2V models read it too.")
    CATEGORY = CONDITIONING
    RETURN_TYPES = ("CONDITIONING", "CONDITIONING", "LATENT")
    RETURN_NAMES = ("positive", "negative", "latent")
    OUTPUT_TOOLTIPS = ("Positive with the image latent.", "Negative with the image latent.",
                       "An empty latent of the video's size for the sampler.")
    FUNCTION = "encode"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "positive": ("CONDITIONING", {"tooltip": "From the SkyReels V1 Text Encode node."}),
                "negative": ("CONDITIONING", {"tooltip": "From the SkyReels V1 Text Encode node."}),
                "vae": (handles.V1_VAE, {"tooltip": "The HunyuanVideo VAE."}),
                "start_image": ("IMAGE", {"tooltip": "The first frame of the video."}),
                **size_inputs(960, 544, 97),
                "seed": seed_input("Seed of the VAE posterior sample of the image (the official code draws it from "
                                   "the global RNG; here it is seeded and the same on every device)."),
            },
        }

    @classmethod
    def VALIDATE_INPUTS(cls, width=None, height=None, num_frames=None, **_):
        return check_size(width, height, num_frames)

    def encode(self, positive, negative, vae, start_image, width, height, num_frames, seed):
        from ..media.frames import center_crop_resize
        from ..media.image_io import image_to_video_tensor
        from ..models.wan.latent_space import latent_shape
        from ..sampling.conditioning import set_values
        from ..sampling.noise import NoiseSource

        image = center_crop_resize(start_image[:1, :, :, :3], width, height, method="lanczos")
        model = vae.vae
        with on_device(model) as dev, torch.no_grad():
            moments = model.encode_moments(image_to_video_tensor(image, device=dev))
        mean, logvar = model.posterior(moments.cpu())
        raw = model.sample(mean, logvar, NoiseSource(seed).randn(mean.shape))
        values = {"concat_latent_image": raw}
        latent = {"samples": torch.zeros(latent_shape(width, height, num_frames))}
        return (set_values(positive, values), set_values(negative, values), latent)


class V1Sampler:
    DESCRIPTION = ("Samples a SkyReels-V1 video as the official pipeline: flow-matching Euler with shift 7, true "
                   "classifier-free guidance with the negative prompt (above cfg 1) and the embedded guidance. "
                   "Text-to-video from an empty latent, image-to-video from the V1 image-to-video node.")
    CATEGORY = SAMPLING
    RETURN_TYPES = ("LATENT",)
    RETURN_NAMES = ("latent",)
    OUTPUT_TOOLTIPS = ("The video latent in raw HunyuanVideo VAE space (ComfyUI's VAE Decode reads it too).",)
    FUNCTION = "sample"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": (handles.V1_DIT, {"tooltip": "From the SkyReels V1 DiT Loader."}),
                "positive": ("CONDITIONING", {"tooltip": "The prompt (SkyReels V1 Text Encode, or ComfyUI's text "
                                                         "encode with the hunyuan_video CLIP)."}),
                "negative": ("CONDITIONING", {"tooltip": "The negative prompt (used when cfg > 1)."}),
                "latent": ("LATENT", {"tooltip": "Sets the size: SkyReels Empty Video Latent (text-to-video) or the "
                                                 "latent of the V1 image-to-video node."}),
                "seed": seed_input(),
                "steps": ("INT", {"default": 30, "min": 1, "max": 200, "tooltip": "Denoising steps (official 30)."}),
                "cfg": ("FLOAT", {"default": 6.0, "min": 0.0, "max": 30.0, "step": 0.1,
                                  "tooltip": "True classifier-free guidance (official 6). At 1 or below the negative "
                                             "prompt is not used and each step is twice as fast."}),
                "embedded_guidance": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 30.0, "step": 0.1,
                                                "tooltip": "The distilled guidance fed to the model's guidance "
                                                           "embedder (official 1.0; HunyuanVideo itself used 6)."}),
                "shift": ("FLOAT", {"default": 7.0, "min": 0.0, "max": 100.0, "step": 0.1,
                                    "tooltip": "Sigma shift of the flow schedule (official 7)."}),
            },
            "optional": {
                "cache": (handles.STEP_CACHE, {"tooltip": "TeaCache (HunyuanVideo's official coefficients): 0.1 ~ "
                                                         "1.6x, 0.15 ~ 2.1x faster."}),
            },
        }

    def sample(self, model, positive, negative, latent, seed, steps, cfg, embedded_guidance, shift, cache=None):
        from ..models.hunyuan.conditioning import image_latents_for, raw_image_latent, text_inputs
        from ..models.hunyuan.vae import SCALING_FACTOR
        from ..sampling.guidance import HunyuanInputs
        from ..sampling.teacache import hunyuan_teacache_pair
        from ..sampling.video_sampler import SampleSettings, sample_video

        samples = latent["samples"]
        if samples.dim() != 5 or samples.shape[1] != 16:
            raise NodeError("the latent must be a video latent [batch, 16, frames, h, w], got %s" % list(samples.shape))
        B, C, F, h, w = samples.shape
        if h % 2 or w % 2:
            raise NodeError("the latent's height and width (%d x %d) must be even: use sizes that are multiples of 16"
                            % (h, w))
        mc = model.config
        try:
            text, mask, pooled = text_inputs(positive, "positive", mc.text_dim, mc.pooled_dim)
            raw = raw_image_latent(positive)
            if mc.variant == "i2v" and raw is None:
                raise NodeError("%s is the image-to-video model: put the SkyReels V1 Image to Video node between the "
                                "text encode and the sampler" % model.name)
            if mc.variant == "t2v" and raw is not None:
                raise NodeError("%s is a text-to-video model but the conditioning carries a start image; load the I2V "
                                "model (skyreels_hunyuan_i2v_*)" % model.name)
            image = None
            if raw is not None:
                if tuple(raw.shape[-2:]) != (h, w):
                    raise NodeError("the start image is %dx%d latents but the video %dx%d; use the latent of the "
                                    "image-to-video node" % (raw.shape[-1], raw.shape[-2], w, h))
                image = image_latents_for(raw, F)
            cond = HunyuanInputs(text, pooled, mask, embedded_guidance, image)
            uncond = None
            if cfg > 1.0:  # the official rule: true CFG only above 1
                ntext, nmask, npooled = text_inputs(negative, "negative", mc.text_dim, mc.pooled_dim)
                uncond = HunyuanInputs(ntext, npooled, nmask, embedded_guidance, image)
        except ValueError as e:
            raise NodeError(str(e)) from e
        settings = SampleSettings(steps=steps, cfg=cfg, shift=shift, seed=seed, solver="euler", sigma_grid="hunyuan")
        caches = (None, None)
        if cache is not None and cache.threshold > 0:
            caches = hunyuan_teacache_pair(cache.threshold, steps)
        with dit_session(model, (F, h, w), teacache=cache is not None) as dit:
            z = sample_video(dit, (B, C, F, h, w), cond.to(dit), None if uncond is None else uncond.to(dit), settings,
                             caches)
        return ({"samples": z / SCALING_FACTOR},)


class V1VAEDecode:
    DESCRIPTION = "Decodes a SkyReels-V1 (HunyuanVideo) latent into frames, with the tiling chosen on the VAE loader."
    CATEGORY = LATENT
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("images",)
    OUTPUT_TOOLTIPS = ("Frames [frames, height, width, 3] in 0..1.",)
    FUNCTION = "decode"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "vae": (handles.V1_VAE, {"tooltip": "The HunyuanVideo VAE."}),
            "latent": ("LATENT", {"tooltip": "A HunyuanVideo latent (raw VAE space, as the V1 sampler outputs it)."}),
        }}

    def decode(self, vae, latent):
        from ..media.image_io import video_tensor_to_image

        z = latent["samples"]
        if z.dim() != 5 or z.shape[1] != vae.vae.config.latent_channels:
            raise NodeError("expected a video latent [batch, 16, frames, h, w], got %s" % list(z.shape))
        frames = []
        with on_device(vae.vae) as dev:
            for b in range(z.shape[0]):
                video = vae.vae.decode(z[b:b + 1].to(dev, torch.float32), tile=vae.tile)
                frames.append(video_tensor_to_image(video))
                del video
        return (torch.cat(frames, dim=0),)


NODES = [
    ("SkyReelsV1ModelLoader", V1ModelLoader, "SkyReels V1 DiT Loader"),
    ("SkyReelsV1TextEncoderLoader", V1TextEncoderLoader, "SkyReels V1 Text Encoder Loader (Llama + CLIP-L)"),
    ("SkyReelsV1VAELoader", V1VAELoader, "SkyReels V1 VAE Loader"),
    ("SkyReelsV1TextEncode", V1TextEncode, "SkyReels V1 Text Encode"),
    ("SkyReelsV1ImageToVideo", V1ImageToVideo, "SkyReels V1 Image to Video"),
    ("SkyReelsV1Sampler", V1Sampler, "SkyReels V1 Sampler"),
    ("SkyReelsV1VAEDecode", V1VAEDecode, "SkyReels V1 VAE Decode"),
]
