"""Tiny stand-ins for the talking-avatar tests: an A2V DiT, features and a CLIP stub."""
import torch

from skyreels_pack.cli.demo.common import randomize
from skyreels_pack.models.wan.audio_adapter import AudioAdapterConfig
from skyreels_pack.models.wan.dit import WanDiT
from skyreels_pack.models.wan.dit_config import WanDiTConfig

AUDIO = AudioAdapterConfig(layers=2, channels=8, intermediate_dim=8, output_dim=16, context_tokens=4)
CONFIG = WanDiTConfig(dim=32, ffn_dim=64, num_heads=2, num_layers=2, in_dim=36, text_dim=16, text_len=8,
                      image_dim=24, variant="i2v", audio=AUDIO)


def tiny_a2v_dit(seed: int = 0) -> WanDiT:
    model = WanDiT(CONFIG)
    model.load_state_dict(randomize(model, seed))
    return model.eval().requires_grad_(False)


def features(frames: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(frames, AUDIO.layers, AUDIO.channels, generator=torch.Generator().manual_seed(seed))


def contexts(seed: int = 2):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(1, CONFIG.text_len, CONFIG.text_dim, generator=g) for _ in range(3)]


class ClipStub:
    """CLIP tokens [1, 3, 24] from an image's mean colour; records what it saw."""

    def __init__(self):
        self.seen = []

    def __call__(self, image):
        self.seen.append(image.clone())
        m = image[..., :3].float().mean(dim=(0, 1, 2))
        return m.repeat(8).view(1, 1, 24).expand(1, 3, 24).clone()


def portrait(width: int = 32, height: int = 32) -> torch.Tensor:
    y = torch.linspace(0, 1, height).view(1, height, 1, 1)
    x = torch.linspace(0, 1, width).view(1, 1, width, 1)
    return torch.cat([0.2 + 0.6 * x.expand(1, height, width, 1), 0.3 + 0.4 * y.expand(1, height, width, 1),
                      0.5 * (x * y).expand(1, height, width, 1)], dim=-1)
