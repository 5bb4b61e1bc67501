"""What the model sockets of the pack carry.

Each loader returns one typed handle (never an untyped dict): the loaded module, its detected
configuration and the run-time settings chosen on the loader.  Socket type names carry the
``SKYREELS_`` prefix so they never collide with ComfyUI's or another pack's.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

DIT = "SKYREELS_DIT"
TEXT_ENCODER = "SKYREELS_TEXT_ENCODER"
CLIP_VISION = "SKYREELS_CLIP_VISION"
VAE = "SKYREELS_VAE"
DF_OPTIONS = "SKYREELS_DF_OPTIONS"
STEP_CACHE = "SKYREELS_STEP_CACHE"


@dataclass
class DiTHandle:
    model: torch.nn.Module          # models.wan.dit.WanDiT
    config: object                  # models.wan.dit_config.WanDiTConfig
    path: str
    vram_budget_gb: float = 0.0     # 0 = no budget (the whole model on the GPU when it fits)
    compile: bool = False

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


@dataclass
class DFOptions:
    """Rarely touched diffusion-forcing settings (the DF options node)."""

    base_num_frames: int = 97
    overlap_history: int = 17
    addnoise_condition: int = 20
    fps: float = 24.0
    history: str = "latent"
    color_match: str = "none"
    color_match_strength: float = 1.0
    causal_attention: bool = False
    solver: str = "unipc"
    sigma_grid: str = "official"
    chunk_folder: str = ""
    auto_orient: bool = True
