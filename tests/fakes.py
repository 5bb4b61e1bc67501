"""Small stand-ins for tests: a deterministic toy VAE and tiny DiT weights."""
import torch
import torch.nn.functional as F

from golden_cases import DEFAULT_DIR, load_case
import os


def random_weights(shapes, seed=0):
    """Seeded random weights for ``shapes`` (key -> shape), drawn in key order: norm weights near 1,
    matrices and convolutions scaled by their fan-in, the rest by 0.1."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, shape in sorted(shapes.items()):
        t = torch.randn(shape, generator=g)
        if "norm" in k and k.endswith("weight"):
            t = 1 + 0.1 * t
        elif k.endswith("weight") and len(shape) >= 2:
            t = t / torch.Size(shape[1:]).numel() ** 0.5
        else:
            t = 0.1 * t
        out[k] = t
    return out


class ToyVAE(torch.nn.Module):
    """Shape-correct, deterministic stand-in for the Wan VAE (x4 time, x8 space, 16 channels)."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.register_buffer("enc", torch.randn(16, 3, generator=g) * 0.5)
        self.register_buffer("dec", torch.linalg.pinv(self.enc))
        self.latents_mean = torch.zeros(16)
        self.latents_std = torch.ones(16)
        self.encode_calls = 0
        self.decode_calls = 0

    def _check(self, video):
        assert video.dim() == 5 and (video.shape[2] - 1) % 4 == 0, video.shape

    def encode(self, video, tile=None):
        self._check(video)
        self.encode_calls += 1
        first, rest = video[:, :, :1], video[:, :, 1:]
        if rest.shape[2]:
            b, c, t, h, w = rest.shape
            rest = rest.reshape(b, c, t // 4, 4, h, w).mean(3)
        v = torch.cat([first, rest], 2)
        v = F.avg_pool3d(v, (1, 8, 8))
        return torch.einsum("oc,bcthw->bothw", self.enc, v)

    def decode(self, z, tile=None, clamp=True):
        self.decode_calls += 1
        v = torch.einsum("co,bothw->bcthw", self.dec, z)
        v = F.interpolate(v, scale_factor=(1, 8, 8), mode="nearest")
        first, rest = v[:, :, :1], v[:, :, 1:]
        rest = rest.repeat_interleave(4, dim=2)
        out = torch.cat([first, rest], 2)
        return out.clamp(-1, 1) if clamp else out

    def normalize(self, mu):
        return mu

    def denormalize(self, z):
        return z


def tiny_df_dit():
    """The tiny official DF DiT of the golden cases (fps embedding, text_dim 4096)."""
    from skyreels_pack.models.wan.dit_config import WanDiTConfig
    from skyreels_pack.models.wan.dit_loader import load_wan_dit

    case = load_case(os.path.join(DEFAULT_DIR, "df_chunk_sync_prefix2.safetensors"))
    model, cfg = load_wan_dit(case.weights, config=WanDiTConfig.from_official(case.config), weight_dtype="fp32")
    return model, case.inputs["context_cond"], case.inputs["context_uncond"]
