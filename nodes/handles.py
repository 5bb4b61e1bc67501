"""What the model sockets of the pack carry.

Each loader returns one typed handle (never an untyped dict): the loaded module, its detected
configuration and the run-time settings chosen on the loader.  Socket type names carry the
``SKYREELS_`` prefix so they never collide with ComfyUI's or another pack's.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import torch

from ..sampling.df_video import DFVideoSettings

DIT = "SKYREELS_DIT"
TEXT_ENCODER = "SKYREELS_TEXT_ENCODER"
CLIP_VISION = "SKYREELS_CLIP_VISION"
VAE = "SKYREELS_VAE"
DF_OPTIONS = "SKYREELS_DF_OPTIONS"
# SkyReels-V1 (HunyuanVideo): separate types, so a V1 model never reaches a Wan node.
V1_DIT = "SKYREELS_V1_DIT"
V1_TEXT_ENCODER = "SKYREELS_V1_TEXT_ENCODER"
V1_VAE = "SKYREELS_V1_VAE"
STEP_CACHE = "SKYREELS_STEP_CACHE"


@dataclass
class LoRASpec:
    """One LoRA on a DiT handle: the file matched against the model, and its strength."""

    name: str
    path: str
    strength: float
    resolved: object                # models.lora.targets.ResolvedLoRA


@dataclass
class DiTHandle:
    model: torch.nn.Module          # models.wan.dit.WanDiT
    config: object                  # models.wan.dit_config.WanDiTConfig
    path: str
    vram_budget_gb: float = 0.0     # 0 = no budget (the whole model on the GPU when it fits)
    compile: bool = False
    loras: Tuple[LoRASpec, ...] = ()  # applied at the start of each sampling job (LoRA nodes add to it)

    @property
    def name(self) -> str:
        import os

        return os.path.basename(self.path.rstrip("/\\"))


@dataclass
class TextEncoderHandle:
    encoder: object                 # models.text.umt5_loader.TextEncoder
    path: str


@dataclass
class ClipVisionHandle:
    encoder: object                 # models.vision.clip_loader.ImageEncoder
    path: str


@dataclass
class VAEHandle:
    vae: torch.nn.Module            # models.wan.vae.WanVAE
    path: str
    tile: Optional[object] = None   # models.wan.vae_tiling.VAETiling or None (untiled)


@dataclass
class StepCacheSettings:
    """TeaCache settings chosen on the TeaCache node."""

    threshold: float = 0.2
    use_ret_steps: bool = True


_DF = DFVideoSettings()  # the engine's defaults are the official ones; the options node repeats none


@dataclass
class DFOptions:
    """Rarely touched diffusion-forcing settings (the DF options node)."""

    base_num_frames: int = _DF.base_num_frames
    overlap_history: int = _DF.overlap_history
    addnoise_condition: int = _DF.addnoise_condition
    fps: float = _DF.fps
    history: str = _DF.history
    color_match: str = _DF.color_match
    color_match_strength: float = _DF.color_match_strength
    causal_attention: bool = _DF.causal_attention
    solver: str = _DF.solver
    sigma_grid: str = _DF.sigma_grid
    chunk_folder: str = ""
    auto_orient: bool = True


@dataclass
class V1TextEncoderHandle:
    """SkyReels-V1 text encoders: llava-llama-3 (Llama) and CLIP-L, with their tokenizers."""

    encoder: object                 # models.hunyuan.text_encoder.HunyuanTextEncoder
    llama_path: str
    clip_path: str
    run_on_cpu: bool = False
    vram_budget_gb: float = 0.0     # 0 = the whole Llama on the GPU while encoding


@dataclass
class V1VAEHandle:
    """The HunyuanVideo VAE; ``tile`` None = the official tiling, a VAETiling = ours."""

    vae: torch.nn.Module            # models.hunyuan.vae.HunyuanVAE
    path: str
    tile: Optional[object] = None


# --------------------------------------------------------------------------- SkyReels-A1

A1_MODEL = "SKYREELS_A1_MODEL"
COGVIDEOX_VAE = "SKYREELS_COGVIDEOX_VAE"
A1_FACE_ENCODER = "SKYREELS_A1_FACE_ENCODER"


@dataclass
class A1ModelHandle:
    model: torch.nn.Module          # models.cogvideox.transformer.CogVideoXTransformer
    config: object                  # models.cogvideox.config.CogVideoXConfig
    path: str
    vram_budget_gb: float = 0.0
    compile: bool = False

    @property
    def name(self) -> str:
        import os

        return os.path.basename(self.path.rstrip("/\\"))


@dataclass
class CogVideoXVAEHandle:
    vae: torch.nn.Module            # models.cogvideox.vae.CogVideoXVAE (the A1 VAE or its pose guider)
    path: str
    tiling: Optional[object] = None  # models.cogvideox.vae.VAETiling or None (untiled)


@dataclass
class A1FaceEncoderHandle:
    encoder: object                 # models.vision.siglip.SiglipFaceEncoder
    path: str
    detector_path: Optional[str] = None  # a MediaPipe FaceLandmarker .task; None = the portrait's centre square


# --------------------------------------------------------------------------- SkyReels-A1 landmark driver

A1_DRIVER = "SKYREELS_A1_DRIVER"


@dataclass
class A1DriverHandle:
    landmarker_path: str                     # a MediaPipe FaceLandmarker .task
    smirk: Optional[torch.nn.Module] = None  # models.a1.smirk.SmirkEncoder (3D retargeting)
    flame: Optional[torch.nn.Module] = None  # models.a1.flame.Flame
    bs2eye: Optional[object] = None          # numpy [52, 6] blendshape -> eye pose map, optional
    folder: str = ""                         # the A1 folder searched for smirk/ and FLAME/

    @property
    def has_3d(self) -> bool:
        return self.smirk is not None and self.flame is not None

# --------------------------------------------------------------------------- talking avatar (V3 A2V)

AUDIO_ENCODER = "SKYREELS_AUDIO_ENCODER"
AUDIO_FEATURES = "SKYREELS_AUDIO_FEATURES"  # carries models.audio.features.AudioFeatures
AVATAR_OPTIONS = "SKYREELS_AVATAR_OPTIONS"


@dataclass
class AudioEncoderHandle:
    encoder: object                 # models.audio.wav2vec2.AudioEncoder
    path: str


@dataclass
class AvatarOptions:
    """Rarely touched talking-avatar settings (the options node); 0 = the preset's / the bucket's."""

    steps: int = 0
    shift: float = 0.0
    text_guidance: float = 0.0
    audio_guidance: float = 0.0
    width: int = 0
    height: int = 0
    frames_per_window: int = 81
    motion_frames: int = 5
    drop_frames: int = 12
    max_frames: int = 5000
    color_match_strength: float = 1.0
    chunk_folder: str = ""
