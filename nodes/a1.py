"""SkyReels-A1 portrait animation: loaders, the face encoder, the sampler, 12 fps resampling.

The A1 release is one folder (``SkyReels-A1-5B/``: ``transformer/``, ``vae/``, ``pose_guider/``,
``siglip-so400m-patch14-384/`` ...) plus ``mediapipe/``.  Put them under ComfyUI's
``models/diffusion_models``; each component folder then appears in the loaders' lists.
"""
from __future__ import annotations

import contextlib
import os

import torch

from .. import host
from ..models.common.ops import default_compute_dtype
from . import handles
from .base import CONDITIONING, LOADERS, MAX_RESOLUTION, MEDIA, SAMPLING, NodeError, model_list, seed_input
from .loaders import ATTENTION, COMPUTE_DTYPES, WEIGHT_DTYPES, _compute_dtype, _path
from .validation import check_size

NO_DETECTOR = "none"
# Where the workflows expect the release's face landmarker (listed even when absent, so saved
# workflows stay valid; choosing it without the file gives a message saying where it goes).
DEFAULT_DETECTOR = "SkyReels-A1/mediapipe/face_landmarker_v2_with_blendshapes.task"
_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def _listing(kinds, extensions=None, include_folders=True):
    names = []
    for kind in kinds:
        names += host.list_models(kind, include_folders=include_folders, extensions=extensions)
    return sorted(set(names))


def _choices(kinds):
    return _listing(kinds) or ["(no models found in %s)" % " or ".join(kinds)]


def _resolve(kinds, name: str, override: str = "") -> str:
    choice = (override or "").strip() or name
    if choice.startswith("(no models found"):
        raise NodeError("no model was found in the %s folders; put the SkyReels-A1 folder there or type a full path "
                        "into 'path'" % " / ".join(kinds))
    outside = []
    for kind in kinds:
        try:
            return host.resolve_model(kind, choice)
        except FileNotFoundError:
            continue
        except host.PathError as e:  # models are read inside the model folders only
            outside.append(str(e))
    if len(outside) == len(kinds):
        raise NodeError(outside[0])
    raise NodeError("%r was not found in the %s folders; check the name (a name, or a full path inside them)"
                    % (choice, " / ".join(kinds)))


def _dtype(name: str) -> torch.dtype:
    return default_compute_dtype(host.torch_device()) if name == "auto" else _DTYPES[name]


class A1Loader:
    DESCRIPTION = ("Loads the SkyReels-A1 transformer (CogVideoX-5B-I2V based, 48 input channels, SigLIP face tokens) "
                   "from the release's transformer/ folder, the whole SkyReels-A1-5B folder, or a single file (bf16, "
                   "fp16, fp8, scaled fp8).")
    CATEGORY = LOADERS
    RETURN_TYPES = (handles.A1_MODEL,)
    RETURN_NAMES = ("model",)
    OUTPUT_TOOLTIPS = ("The A1 transformer with its detected configuration and memory settings.",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": (model_list("diffusion_models"), {
                    "tooltip": "The A1 transformer in ComfyUI's models/diffusion_models: "
                               "SkyReels-A1/SkyReels-A1-5B/transformer (the release folder), or a single file."}),
                "weight_dtype": (WEIGHT_DTYPES, {
                    "default": "auto",
                    "tooltip": "How weights are kept in memory. auto: fp8 files stay fp8, others in the compute dtype "
                               "(11.3 GB in bf16). fp8 halves that at a small quality cost; int8 / nf4 go further."}),
                "compute_dtype": (COMPUTE_DTYPES, {
                    "default": "auto", "tooltip": "Precision of the matrix products. auto: bf16 (the official dtype) "
                                                  "on GPUs that have it, fp16 on older ones, fp32 on CPU."}),
                "attention": (ATTENTION, {
                    "default": "auto", "tooltip": "Attention kernel. auto picks SageAttention or flash-attention when "
                                                  "installed, else PyTorch SDPA."}),
                "vram_budget_gb": ("FLOAT", {
                    "default": 0.0, "min": 0.0, "max": 1024.0, "step": 0.5,
                    "tooltip": "GPU memory the transformer may use, in GB. 0 = the whole model on the GPU. With a "
                               "budget, as many blocks as fit stay on the GPU and the rest stream in just in time "
                               "(8-12 GB cards). Leave about 2 GB for the two VAEs."}),
            },
            "optional": {
                "path": ("STRING", {"default": "", "tooltip": "A full path to a file or folder; overrides 'model'."}),
                "compile": ("BOOLEAN", {"default": False, "tooltip": "torch.compile the blocks (falls back with a "
                                                                      "message where unsupported)."}),
            },
        }

    def load(self, model, weight_dtype, compute_dtype, attention, vram_budget_gb, path="", compile=False):
        from ..models.cogvideox.loader import load_cogvideox_transformer
        from ..models.loading.checkpoint import CheckpointError

        full = _path("diffusion_models", model, path)
        device = host.torch_device()
        quant = weight_dtype if weight_dtype in ("int8", "nf4") else None
        try:
            dit, cfg = load_cogvideox_transformer(
                full, weight_dtype="bf16" if quant else weight_dtype, compute_dtype=_compute_dtype(compute_dtype, device),
                device=host.offload_device(), attention=attention, compute_device=device)
        except CheckpointError as e:
            raise NodeError(str(e)) from e
        if quant:
            from ..memory.quant import quantize_blocks

            quantize_blocks(dit, quant)
        if compile:
            from ..memory.compile import compile_blocks

            compile_blocks(dit)
        host.log("loaded %s: CogVideoX %s, %d layers, width %d, %s positions, face tokens %s" % (
            full, cfg.size_name, cfg.num_layers, cfg.dim,
            "learned %dx%d" % (cfg.sample_width * 8, cfg.sample_height * 8) if cfg.use_learned_positional_embeddings
            else "RoPE", "%d x %s" % (cfg.face_tokens, cfg.face_embed_dim) if cfg.face_embed_dim else "none (text)"))
        return (handles.A1ModelHandle(dit, cfg, full, float(vram_budget_gb), bool(compile)),)


class CogVideoXVAELoader:
    DESCRIPTION = ("Loads a CogVideoX VAE: SkyReels-A1's vae/ (encodes the portrait, decodes the video) or its "
                   "pose_guider/ (encodes the control video); the same network with other weights.")
    CATEGORY = LOADERS
    RETURN_TYPES = (handles.COGVIDEOX_VAE,)
    RETURN_NAMES = ("vae",)
    OUTPUT_TOOLTIPS = ("The VAE with its tiling setting.",)
    FUNCTION = "load"
    KINDS = ("diffusion_models", "vae")

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": (_choices(cls.KINDS), {
                    "tooltip": "SkyReels-A1/SkyReels-A1-5B/vae or .../pose_guider (in models/diffusion_models), or a "
                               "CogVideoX VAE file in models/vae."}),
                "dtype": (["auto", "fp32", "bf16", "fp16"], {
                    "default": "auto", "tooltip": "auto: bf16 on GPUs (the official dtype), fp32 on CPU."}),
                "tiled": ("BOOLEAN", {
                    "default": True,
                    "tooltip": "Tiles of half the model's sample size (240x360 for A1) with blended seams, as the "
                               "official scripts run the VAE; off for the pose guider (official)."}),
            },
            "optional": {
                "path": ("STRING", {"default": "", "tooltip": "A full path; overrides 'model'."}),
            },
        }

    def load(self, model, dtype, tiled, path=""):
        from ..models.cogvideox.vae import VAETiling
        from ..models.cogvideox.vae_loader import load_cogvideox_vae
        from ..models.loading.checkpoint import CheckpointError

        full = _resolve(self.KINDS, model, path)
        try:
            vae, cfg = load_cogvideox_vae(full, dtype=_dtype(dtype), device=host.offload_device(), component=None)
        except CheckpointError as e:
            raise NodeError(str(e)) from e
        return (handles.CogVideoXVAEHandle(vae, full, VAETiling.official(cfg) if tiled else None),)


class A1FaceEncoderLoader:
    DESCRIPTION = ("Loads SkyReels-A1's face encoder: SigLIP so400m (transformers' SiglipVisionModel, local files "
                   "only) and the MediaPipe face landmarker that finds the 5 alignment points.")
    CATEGORY = LOADERS
    RETURN_TYPES = (handles.A1_FACE_ENCODER,)
    RETURN_NAMES = ("face_encoder",)
    OUTPUT_TOOLTIPS = ("SigLIP and the face detector.",)
    FUNCTION = "load"
    KINDS = ("diffusion_models", "clip_vision")
    DETECTOR_KINDS = ("diffusion_models", "mediapipe")

    @classmethod
    def INPUT_TYPES(cls):
        found = _listing(cls.DETECTOR_KINDS, extensions=(".task",), include_folders=False)
        detectors = [NO_DETECTOR, DEFAULT_DETECTOR] + [f for f in found if f != DEFAULT_DETECTOR]
        return {
            "required": {
                "siglip": (_choices(cls.KINDS), {
                    "tooltip": "SkyReels-A1/SkyReels-A1-5B/siglip-so400m-patch14-384 (the release folder), or a "
                               "SigLIP so400m file in models/clip_vision."}),
                "face_detector": (detectors, {
                    "default": DEFAULT_DETECTOR,
                    "tooltip": "MediaPipe's face_landmarker_v2_with_blendshapes.task (the release's mediapipe/ "
                               "folder, e.g. SkyReels-A1/mediapipe/...): finds the eyes, nose and mouth corners the "
                               "face is aligned by (official). none: the centre square of the portrait is used as "
                               "the face, for portraits already cropped to the face."}),
                "dtype": (["fp32", "bf16", "fp16"], {"default": "fp32",
                                                     "tooltip": "SigLIP's precision (the official code runs fp32)."}),
            },
            "optional": {
                "path": ("STRING", {"default": "", "tooltip": "A full path to SigLIP; overrides 'siglip'."}),
                "detector_path": ("STRING", {"default": "", "tooltip": "A full path to the .task file; overrides "
                                                                       "'face_detector'."}),
            },
        }

    def load(self, siglip, face_detector, dtype, path="", detector_path=""):
        from ..models.loading.checkpoint import CheckpointError
        from ..models.vision.siglip import load_siglip

        full = _resolve(self.KINDS, siglip, path)
        try:
            enc = load_siglip(full, dtype=_DTYPES[dtype], device=host.offload_device())
        except CheckpointError as e:
            raise NodeError(str(e)) from e
        except ImportError as e:
            raise NodeError(str(e)) from e
        det = (detector_path or "").strip()
        if det:  # a name or path inside the model folders only
            det = _resolve(self.DETECTOR_KINDS, "", det)
        elif face_detector != NO_DETECTOR:
            try:
                det = _resolve(self.DETECTOR_KINDS, face_detector)
            except NodeError:
                raise NodeError("the face detector %s was not found: put the SkyReels-A1 release's mediapipe/ folder "
                                "(face_landmarker_v2_with_blendshapes.task) under models/diffusion_models/SkyReels-A1/, "
                                "give its path in 'detector_path', or choose 'none' (the portrait's centre square is "
                                "used as the face)" % face_detector) from None
        if det and not os.path.isfile(det):
            raise NodeError("face detector file not found: %s" % det)
        return (handles.A1FaceEncoderHandle(enc, full, det or None),)


class A1FaceEncode:
    DESCRIPTION = ("The SkyReels-A1 face embedding: the portrait is framed like the sampler frames it (720x480), "
                   "the face aligned to 512x512 from 5 points (LMedS fit, as the official facexlib crop), then "
                   "SigLIP tokens (729 x 1152).")
    CATEGORY = CONDITIONING
    RETURN_TYPES = ("CLIP_VISION_OUTPUT", "IMAGE")
    RETURN_NAMES = ("face_embedding", "aligned_face")
    OUTPUT_TOOLTIPS = ("SigLIP last_hidden_state as CLIP_VISION_OUTPUT (core CLIP Vision Encode with a SigLIP "
                       "so400m model gives the same kind of output).", "The 512x512 face that was encoded.")
    FUNCTION = "encode"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "face_encoder": (handles.A1_FACE_ENCODER, {"tooltip": "From the SkyReels A1 Face Encoder Loader."}),
            "portrait": ("IMAGE", {"tooltip": "The portrait to animate (the same image the sampler gets)."}),
        }}

    def encode(self, face_encoder, portrait):
        from ..models.a1.face_detect import FaceLandmarks, NoFaceError
        from ..models.a1.portrait import face_embedding, frame_portrait, image_to_uint8, uint8_to_image
        from ..models.placement import on_device
        from ..sampling.conditioning import ClipVisionOutput

        framed = frame_portrait(image_to_uint8(portrait))
        detector = None
        try:
            if face_encoder.detector_path:
                detector = FaceLandmarks(face_encoder.detector_path)
            with on_device(face_encoder.encoder.model):
                tokens, face, _points = face_embedding(face_encoder.encoder, framed, detector)
        except NoFaceError as e:
            raise NodeError(str(e)) from e
        except (ImportError, ValueError) as e:
            raise NodeError("face encoding failed: %s" % e) from e
        finally:
            if detector is not None:
                detector.close()
        tokens = tokens.float().cpu()
        return (ClipVisionOutput(None, last_hidden_state=tokens), uint8_to_image(face))


class A1Sampler:
    DESCRIPTION = ("SkyReels-A1 portrait animation: the portrait moves as the control video (landmark drawings at "
                   "12 fps, frame 0 = the portrait's own landmarks) says. Official CogVideoX DDIM sampler, 49-frame "
                   "windows with overlap 8 and latent fusion for any length; decodes window by window, so memory "
                   "does not grow with the length.")
    CATEGORY = SAMPLING
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("images",)
    OUTPUT_TOOLTIPS = ("The animated frames at 12 fps, one per driving frame of the control video.",)
    FUNCTION = "sample"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": (handles.A1_MODEL, {"tooltip": "From the SkyReels A1 Transformer Loader."}),
                "vae": (handles.COGVIDEOX_VAE, {"tooltip": "The A1 vae/ (encodes the portrait, decodes the video)."}),
                "pose_guider": (handles.COGVIDEOX_VAE, {"tooltip": "The A1 pose_guider/ (encodes the control video)."}),
                "portrait": ("IMAGE", {"tooltip": "The portrait to animate; cut (too wide) or padded with black "
                                                  "(too tall) to width:height, then resized (official)."}),
                "control_video": ("IMAGE", {
                    "tooltip": "Frame 0: the portrait's own landmarks; frames 1..: the driving landmarks at 12 fps "
                               "(resample other frame rates with the A1 resample node). Framed like the portrait."}),
                "face_embedding": ("CLIP_VISION_OUTPUT", {"tooltip": "From SkyReels A1 Face Encode (729 SigLIP "
                                                                     "tokens)."}),
                "width": ("INT", {"default": 720, "min": 16, "max": MAX_RESOLUTION, "step": 16,
                                  "tooltip": "Video width. The released model has a learned position table for "
                                             "720x480 and runs only at that size."}),
                "height": ("INT", {"default": 480, "min": 16, "max": MAX_RESOLUTION, "step": 16,
                                   "tooltip": "Video height (480 for the released model)."}),
                "seed": seed_input(),
                "steps": ("INT", {"default": 10, "min": 1, "max": 200, "tooltip": "Denoising steps (official 10)."}),
                "cfg": ("FLOAT", {"default": 3.0, "min": 1.0, "max": 20.0, "step": 0.1,
                                  "tooltip": "Guidance on the face embedding against zeros (official 3). 1 skips the "
                                             "unconditional pass (twice as fast)."}),
            },
            "optional": {
                "chunk_folder": ("STRING", {
                    "default": "",
                    "tooltip": "Folder where each finished 49-frame window is saved. After a crash or a cancel, "
                               "running again with the same inputs resumes from the saved windows. Relative paths "
                               "are inside ComfyUI's output folder. Empty = off."}),
            },
        }

    @classmethod
    def VALIDATE_INPUTS(cls, width=None, height=None, chunk_folder=None, **_):
        if (chunk_folder or "").strip():
            try:
                host.check_output_dir(chunk_folder, "chunk_folder")
            except host.PathError as e:
                return str(e)
        return check_size(width, height, None)

    def sample(self, model, vae, pose_guider, portrait, control_video, face_embedding, width, height, seed, steps, cfg,
               chunk_folder=""):
        from ..models.a1.portrait import frame_portrait, image_to_uint8, uint8_to_image
        from ..sampling.a1_video import A1Codec, A1VideoSettings, generate_a1_video
        from ..sampling.chunk_store import CollectFrames
        from .model_session import dit_session

        mcfg = model.config
        if mcfg.use_learned_positional_embeddings and (height // 8, width // 8) != (mcfg.sample_height, mcfg.sample_width):
            raise NodeError("%s has a learned position table for %dx%d videos and runs only at that size; set width "
                            "%d and height %d" % (model.name, mcfg.sample_width * 8, mcfg.sample_height * 8,
                                                  mcfg.sample_width * 8, mcfg.sample_height * 8))
        face = _face_tokens(face_embedding, mcfg)
        if control_video.shape[0] < 2:
            raise NodeError("the control video has %d frame; it needs the reference-landmark frame and at least one "
                            "driving frame" % control_video.shape[0])
        framed = uint8_to_image(frame_portrait(image_to_uint8(portrait), width, height))
        control = _frame_video(control_video, width, height)
        folder = (chunk_folder or "").strip()
        if folder:  # inside the output folder only (host.resolve_output_dir refuses '..', paths elsewhere, links out)
            try:
                folder = host.resolve_output_dir(folder, create=True, what="chunk_folder")
            except host.PathError as e:
                raise NodeError(str(e)) from e
        settings = A1VideoSettings(width=width, height=height, steps=steps, guidance=cfg, seed=seed)
        sink = CollectFrames()
        with dit_session(model, ((settings.window_frames - 1) // 4 + 1, height // 8, width // 8)) as dit:
            device = dit.device
            # The VAEs visit the device one at a time, without asking the host for room: that
            # could unload the transformer in the middle of the run (budget: leave ~1 GB for them).
            codec = A1Codec(vae.vae, pose_guider.vae, device, vae.tiling, pose_guider.tiling,
                            place=lambda m: _visit(m, device))
            try:
                res = generate_a1_video(dit, codec, settings, framed, control, face, sink, chunk_dir=folder or None)
            except ValueError as e:
                raise NodeError(str(e)) from e
        host.log("SkyReels-A1: %d frames in %d windows%s" % (
            res.frames_made, len(res.plan.windows),
            " (%d resumed from %s)" % (res.resumed_windows, folder) if res.resumed_windows else ""))
        return (sink.images(),)


class A1Resample:
    DESCRIPTION = ("Resamples frames to 12 fps (or another rate) by the SkyReels-A1 rule, for driving or control "
                   "videos at other frame rates (it drops and repeats frames exactly as the official scripts do).")
    CATEGORY = MEDIA
    RETURN_TYPES = ("IMAGE", "FLOAT")
    RETURN_NAMES = ("images", "fps")
    OUTPUT_TOOLTIPS = ("The resampled frames.", "The new frame rate.")
    FUNCTION = "resample"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "images": ("IMAGE", {"tooltip": "Frames of a video."}),
            "fps": ("FLOAT", {"default": 30.0, "min": 0.1, "max": 1000.0, "step": 0.001,
                              "tooltip": "Their frame rate (the Load Video node outputs it)."}),
            "target_fps": ("FLOAT", {"default": 12.0, "min": 0.1, "max": 1000.0, "step": 0.001,
                                     "tooltip": "The new frame rate (SkyReels-A1 works at 12)."}),
        }}

    def resample(self, images, fps, target_fps):
        from ..media.frames import resample_frames

        return (resample_frames(images, fps, target_fps), float(target_fps))


@contextlib.contextmanager
def _visit(module: torch.nn.Module, device):
    """``module`` on ``device`` for one call, then back where it was."""
    home = next(module.parameters()).device
    module.to(device)
    try:
        yield
    finally:
        module.to(home)


def _face_tokens(output, cfg) -> torch.Tensor:
    """SigLIP tokens [1, L, C] from a CLIP_VISION_OUTPUT (ours or ComfyUI's)."""
    tokens = getattr(output, "last_hidden_state", None)
    if tokens is None and isinstance(output, dict):
        tokens = output.get("last_hidden_state")
    if not isinstance(tokens, torch.Tensor) or tokens.dim() != 3:
        raise NodeError("the face embedding has no last_hidden_state; connect SkyReels A1 Face Encode (or a core CLIP "
                        "Vision Encode with a SigLIP so400m model)")
    want = (cfg.context_tokens, cfg.context_dim)
    if tuple(tokens.shape[1:]) != want:
        raise NodeError("the face embedding is %d tokens of width %d; the A1 model takes %d x %d (SigLIP so400m at "
                        "384 px)" % (tokens.shape[1], tokens.shape[2], want[0], want[1]))
    return tokens[:1].float()


def _frame_video(frames: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """Frames at width x height, framed like the portrait when their size differs."""
    if frames.dim() != 4 or frames.shape[-1] < 3:
        raise NodeError("the control video must be an IMAGE [frames, height, width, 3]")
    if (frames.shape[1], frames.shape[2]) == (height, width):
        return frames[..., :3].float()
    from ..models.a1.portrait import frame_portrait

    out = torch.empty(frames.shape[0], height, width, 3)
    for i in range(frames.shape[0]):
        arr = (frames[i, :, :, :3].float().clamp(0, 1) * 255).round().to(torch.uint8).numpy()
        out[i] = torch.from_numpy(frame_portrait(arr, width, height)).float() / 255.0
    return out


NODES = [
    ("SkyReelsA1Loader", A1Loader, "SkyReels A1 Transformer Loader"),
    ("SkyReelsCogVideoXVAELoader", CogVideoXVAELoader, "SkyReels CogVideoX VAE Loader (A1 VAE / pose guider)"),
    ("SkyReelsA1FaceEncoderLoader", A1FaceEncoderLoader, "SkyReels A1 Face Encoder Loader (SigLIP + MediaPipe)"),
    ("SkyReelsA1FaceEncode", A1FaceEncode, "SkyReels A1 Face Encode"),
    ("SkyReelsA1Sampler", A1Sampler, "SkyReels A1 Sampler (portrait animation)"),
    ("SkyReelsA1Resample", A1Resample, "SkyReels A1 Resample Frames (12 fps)"),
]
