"""The pack as a library: load any SkyReels / Wan component from a path, sample videos.

    dit, cfg = load_wan_dit("models/diffusion_models/SkyReels-V2-DF-1.3B-540P")
    v = dit(x, t, context, clip_fea=None, y=None, fps=None)     # [B, 16, F, H, W] velocity
    module, cfg = load("some/file.safetensors")                 # detects what the file is

See the README, "Use as a library".  Nothing here imports ComfyUI.
"""
from __future__ import annotations

from typing import Any, Optional, Tuple

from .models.hunyuan.dit import HunyuanDiT
from .models.hunyuan.dit_config import HunyuanDiTConfig
from .models.hunyuan.dit_loader import load_hunyuan_dit
from .models.hunyuan.text_encoder import HunyuanTextEncoder, load_clip_l, load_llama_encoder
from .models.hunyuan.vae import HunyuanVAE, HunyuanVAEConfig
from .models.hunyuan.vae_loader import load_hunyuan_vae
from .models.loading.checkpoint import CheckpointError, TensorSource, open_checkpoint
from .memory.offload import prepare_for_sampling, release
from .models.lora import apply_loras, load_lora, read_lora
from .models.refs.encode import a2_clip_tokens, a2_condition, r2v_references
from .models.refs.r2v import bucket_size as r2v_bucket_size
from .models.text.umt5_loader import TextEncoder, load_umt5
from .models.vision.clip_loader import ImageEncoder, load_clip_vision
from .models.wan.dit import LatentSegment, WanDiT
from .models.wan.dit_config import WanDiTConfig
from .models.wan.dit_loader import load_wan_dit
from .models.wan.latent_space import denormalize, normalize
from .models.wan.vae import WanVAE, WanVAEConfig
from .models.wan.vae_loader import load_wan_vae
from .sampling.chunk_store import ChunkFolder, CollectFrames
from .sampling.df_plan import DFPlanError, plan_df_video
from .sampling.df_video import DFConditioning, DFVideoSettings, generate_df_video
from .sampling.extension_plan import plan_extension
from .sampling.extension_video import ExtensionConditioning, ExtensionSettings, extend_video
from .sampling.guidance import Denoiser, HunyuanInputs, ModelInputs, ReferenceDenoiser
from .sampling.sigmas import flow_schedule
from .sampling.video_codec import VideoCodec
from .sampling.video_sampler import SampleSettings, sample_video
# talking avatar (SkyReels-V3 A2V)
from .models.audio.features import AudioFeatures, encode_waveform, to_mono_16k
from .models.audio.wav2vec2 import AudioEncoder, load_wav2vec2
from .sampling.avatar_plan import plan_avatar
from .sampling.avatar_video import AvatarConditioning, AvatarSettings, generate_avatar_video
from .models.cogvideox.loader import load_cogvideox_transformer
from .models.cogvideox.vae_loader import load_cogvideox_vae
from .sampling.a1_plan import plan_a1_video
from .sampling.a1_video import A1Codec, A1VideoSettings, generate_a1_video
from .models.a1.driver import DriverResult, DriverSettings, Models3D
from .models.a1.driver import drive as drive_landmarks
from .models.a1.face_align import align_face
from .models.a1.face_detect import FaceLandmarks, NoFaceError
from .models.a1.portrait import face_embedding, frame_portrait
from .models.vision.siglip import load_siglip

__all__ = [
    "load", "detect_component", "COMPONENTS", "CheckpointError", "TensorSource",
    "load_wan_dit", "WanDiT", "WanDiTConfig", "load_wan_vae", "WanVAE", "WanVAEConfig", "normalize", "denormalize",
    "load_umt5", "TextEncoder", "load_clip_vision", "ImageEncoder",
    "flow_schedule", "Denoiser", "ModelInputs", "SampleSettings", "sample_video", "VideoCodec",
    "plan_df_video", "DFPlanError", "DFVideoSettings", "DFConditioning", "generate_df_video",
    "CollectFrames", "ChunkFolder",
    "a2_condition", "a2_clip_tokens", "r2v_references", "r2v_bucket_size", "ReferenceDenoiser",
    "load_wav2vec2", "AudioEncoder", "AudioFeatures", "encode_waveform", "to_mono_16k", "plan_avatar",
    "AvatarSettings", "AvatarConditioning", "generate_avatar_video",
    "LatentSegment", "plan_extension", "ExtensionSettings", "ExtensionConditioning", "extend_video",
    "load_lora", "read_lora", "apply_loras", "prepare_for_sampling", "release",
    "load_cogvideox_transformer", "load_cogvideox_vae", "plan_a1_video", "A1Codec", "A1VideoSettings",
    "generate_a1_video", "load_siglip", "frame_portrait", "face_embedding", "align_face", "FaceLandmarks",
    "NoFaceError", "drive_landmarks", "DriverSettings", "DriverResult", "Models3D",
    "load_hunyuan_dit", "HunyuanDiT", "HunyuanDiTConfig", "load_hunyuan_vae", "HunyuanVAE", "HunyuanVAEConfig",
    "load_llama_encoder", "load_clip_l", "HunyuanTextEncoder", "HunyuanInputs",
]

COMPONENTS = ("dit", "vae", "umt5", "clip_vision", "v1_dit", "v1_vae", "v1_llama", "v1_clip_l")


def detect_component(path: str) -> str:
    """Which component a file or folder holds: "dit", "vae", "umt5" or "clip_vision"."""
    from .models.text import umt5_loader
    from .models.vision import clip_loader
    from .models.wan import dit_loader, vae_loader

    tried = []
    from .models.hunyuan import dit_loader as v1_dit, text_encoder as v1_text, vae_loader as v1_vae

    for kind, detect in (("dit", dit_loader.detect), ("vae", vae_loader.detect),
                         ("umt5", umt5_loader.detect), ("clip_vision", clip_loader.detect),
                         ("v1_dit", v1_dit.detect), ("v1_vae", lambda s: v1_vae.detect(s) is not None),
                         ("v1_llama", lambda s: v1_text.llama_prefix(s.keys()) is not None),
                         ("v1_clip_l", lambda s: v1_text.clip_prefix(s.keys()) is not None)):
        try:
            source = open_checkpoint(path, kind)
        except CheckpointError as e:
            tried.append(str(e))
            continue
        if detect(source):
            return kind
    raise CheckpointError("%s is none of: Wan/SkyReels DiT, Wan VAE, umT5 text encoder, CLIP vision encoder, "
                          "SkyReels-V1 DiT / VAE / Llama / CLIP-L%s"
                          % (path, (" (" + "; ".join(tried[:2]) + ")") if tried else ""))


def load(path: str, kind: Optional[str] = None, **kwargs) -> Tuple[Any, Any]:
    """Load whatever ``path`` holds (or the component ``kind``); returns (module, config).

    The DiT and the VAE return their module and config; the encoders return their wrapper
    (``TextEncoder`` / ``ImageEncoder``, with ``encode``) and its config.
    """
    kind = kind or detect_component(path)
    if kind == "dit":
        return load_wan_dit(path, **kwargs)
    if kind == "vae":
        return load_wan_vae(path, **kwargs)
    if kind == "umt5":
        enc = load_umt5(path, **kwargs)
        return enc, enc.config
    if kind == "clip_vision":
        enc = load_clip_vision(path, **kwargs)
        return enc, enc.config
    if kind == "v1_dit":
        return load_hunyuan_dit(path, **kwargs)
    if kind == "v1_vae":
        return load_hunyuan_vae(path, **kwargs)
    if kind == "v1_llama":
        enc = load_llama_encoder(path, **kwargs)
        return enc, enc.config
    if kind == "v1_clip_l":
        enc = load_clip_l(path, **kwargs)
        return enc, enc.config
    raise ValueError("unknown component %r; choose one of %s" % (kind, ", ".join(COMPONENTS)))
