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
from . import handles
from .base import (CONDITIONING, LOADERS, MAX_RESOLUTION, MEDIA, SAMPLING, NodeError, check_chunk_folder,
                   chunk_folder_input, model_list, model_names, resolve_chunk_folder, seed_input)
from .loading import DiTLoaderNode, check_model, dit_inputs, dit_optional, dtype_of, load_dit, path_input, resolve_path
from .validation import check_size

NO_DETECTOR = "none"
# Where the workflows expect the release's face landmarker (see landmarker_choices).
DEFAULT_DETECTOR = "SkyReels-A1/mediapipe/face_landmarker_v2_with_blendshapes.task"
DETECTOR_KINDS = ("diffusion_models", "mediapipe")
NOT_FOUND = "no model was found in the %s folders; put the SkyReels-A1 folder there or type a full path into 'path'"


def landmarker_choices(first=()) -> list:
    """The MediaPipe .task files in the model folders, the release's place first (listed even when
    absent, so saved workflows stay valid; choosing it without the file says where it goes)."""
    found = model_names(DETECTOR_KINDS, extensions=(".task",), include_folders=False)
    return list(first) + [DEFAULT_DETECTOR] + [f for f in found if f != DEFAULT_DETECTOR]


def resolve_landmarker(choice: str, override: str, missing: str) -> str:
    """The full path of the chosen .task file (``override``: a name or path inside the model
    folders); ``missing``: the message when the listed choice is not there."""
    override = (override or "").strip()
    if override:
        task = resolve_path(DETECTOR_KINDS, "", override)
    else:
        try:
            task = resolve_path(DETECTOR_KINDS, choice)
        except NodeError:
            raise NodeError(missing) from None
    if not os.path.isfile(task):
        raise NodeError("face landmarker file not found: %s" % task)
    return task


class A1Loader(DiTLoaderNode):
    DESCRIPTION = ("Loads the SkyReels-A1 transformer (CogVideoX-5B-I2V based, 48 input channels, SigLIP face tokens) "
                   "from the release's transformer/ folder, the whole SkyReels-A1-5B folder, or a single file (bf16, "
                   "fp16, fp8, scaled fp8).")
    RETURN_TYPES = (handles.A1_MODEL,)
    OUTPUT_TOOLTIPS = ("The A1 transformer with its detected configuration and memory settings.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": dit_inputs(
                "The A1 transformer in ComfyUI's models/diffusion_models: SkyReels-A1/SkyReels-A1-5B/transformer (the "
                "release folder), or a single file.",
                weights_note=" The A1 transformer takes 11.3 GB in bf16.", compute_note=" bf16 is the official dtype.",
                budget_note=" (8-12 GB cards). Leave about 2 GB for the two VAEs."),
            "optional": dit_optional(),
        }

    def load(self, model, weight_dtype, compute_dtype, attention, vram_budget_gb, path="", compile=False):
        from ..models.cogvideox.loader import load_cogvideox_transformer

        dit, cfg, full = load_dit(load_cogvideox_transformer, model, path, weight_dtype, compute_dtype, attention,
                                  compile)
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
                "model": (model_list(cls.KINDS), {
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
                "path": path_input(cls.KINDS),
            },
        }

    @classmethod
    def VALIDATE_INPUTS(cls, model=None, path=None, **_):
        return check_model(cls.KINDS, model, path)

    def load(self, model, dtype, tiled, path=""):
        from ..models.cogvideox.vae import VAETiling
        from ..models.cogvideox.vae_loader import load_cogvideox_vae
        from ..models.loading.checkpoint import CheckpointError

        full = resolve_path(self.KINDS, model, path, NOT_FOUND % " / ".join(self.KINDS))
        try:
            vae, cfg = load_cogvideox_vae(full, dtype=dtype_of(dtype), device=host.offload_device(), component=None)
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

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "siglip": (model_list(cls.KINDS), {
                    "tooltip": "SkyReels-A1/SkyReels-A1-5B/siglip-so400m-patch14-384 (the release folder), or a "
                               "SigLIP so400m file in models/clip_vision."}),
                "face_detector": (landmarker_choices(first=[NO_DETECTOR]), {
                    "default": DEFAULT_DETECTOR,
                    "tooltip": "MediaPipe's face_landmarker_v2_with_blendshapes.task (the release's mediapipe/ "
                               "folder, e.g. SkyReels-A1/mediapipe/...): finds the eyes, nose and mouth corners the "
                               "face is aligned by (official). none: the centre square of the portrait is used as "
                               "the face, for portraits already cropped to the face."}),
                "dtype": (["fp32", "bf16", "fp16"], {"default": "fp32",
                                                     "tooltip": "SigLIP's precision (the official code runs fp32)."}),
            },
            "optional": {
                "path": path_input(cls.KINDS, overrides="siglip", what="SigLIP's file or folder"),
                "detector_path": path_input(DETECTOR_KINDS, overrides="face_detector", what="The .task file"),
            },
        }

    def load(self, siglip, face_detector, dtype, path="", detector_path=""):
        from ..models.loading.checkpoint import CheckpointError
        from ..models.vision.siglip import load_siglip

        full = resolve_path(self.KINDS, siglip, path, NOT_FOUND % " / ".join(self.KINDS))
        try:
            enc = load_siglip(full, dtype=dtype_of(dtype), device=host.offload_device())
        except (CheckpointError, ImportError) as e:
            raise NodeError(str(e)) from e
        det = None
        if (detector_path or "").strip() or face_detector != NO_DETECTOR:
            det = resolve_landmarker(
                face_detector, detector_path,
                "the face detector %s was not found: put the SkyReels-A1 release's mediapipe/ folder "
                "(face_landmarker_v2_with_blendshapes.task) under models/diffusion_models/SkyReels-A1/, give its path "
                "in 'detector_path', or choose 'none' (the portrait's centre square is used as the face)"
                % face_detector)
        return (handles.A1FaceEncoderHandle(enc, full, det),)


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
                "chunk_folder": chunk_folder_input("49-frame window", "windows"),
            },
        }

    @classmethod
    def VALIDATE_INPUTS(cls, width=None, height=None, chunk_folder=None, **_):
        ok = check_chunk_folder(chunk_folder)
        return ok if ok is not True else check_size(width, height, None)

    def sample(self, model, vae, pose_guider, portrait, control_video, face_embedding, width, height, seed, steps, cfg,
               chunk_folder=""):
        from ..models.a1.portrait import frame_portrait, image_to_uint8, uint8_to_image
        from ..sampling.a1_video import A1Codec, A1VideoSettings, generate_a1_video
        from ..sampling.chunk_store import CollectFrames
        from .model_session import dit_session, run_identity

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
        folder = resolve_chunk_folder(chunk_folder)
        settings = A1VideoSettings(width=width, height=height, steps=steps, guidance=cfg, seed=seed)
        sink = CollectFrames()
        with dit_session(model, ((settings.window_frames - 1) // 4 + 1, height // 8, width // 8)) as dit:
            device = dit.device
            # The VAEs visit the device one at a time, without asking the host for room: that
            # could unload the transformer in the middle of the run (budget: leave ~1 GB for them).
            codec = A1Codec(vae.vae, pose_guider.vae, device, vae.tiling, pose_guider.tiling,
                            place=lambda m: _visit(m, device))
            try:
                res = generate_a1_video(dit, codec, settings, framed, control, face, sink, chunk_dir=folder or None,
                                        identity=run_identity(model, vae=vae, pose_guider=pose_guider))
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
