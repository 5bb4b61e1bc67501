"""SkyReels-V1 VAE beyond the golden cases: the framewise stream, our small-tile decode, checks."""
import pytest
import torch

from skyreels_pack.models.hunyuan.vae import HunyuanVAE, HunyuanVAEConfig, OfficialTiling
from skyreels_pack.models.hunyuan.vae_loader import load_hunyuan_vae
from skyreels_pack.models.loading.checkpoint import CheckpointError
from skyreels_pack.models.wan.vae_tiling import VAETiling

CFG = HunyuanVAEConfig(block_out_channels=(4, 8, 8, 8), layers_per_block=1, norm_num_groups=2)


@pytest.fixture(scope="module")
def vae():
    torch.manual_seed(0)
    model = HunyuanVAE(CFG)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name and name.endswith("weight"):
                p.fill_(1.0).add_(0.05 * torch.randn_like(p))
            elif name.endswith("weight") and p.dim() >= 2:
                p.normal_(0, 1.0 / p[0].numel() ** 0.5)
            else:
                p.normal_(0, 0.02)
    return model.eval()


def test_stream_covers_every_frame_once_and_matches_the_official_decode(vae):
    z = torch.randn(1, 16, 9, 3, 4)
    official = vae.decode(z)
    assert official.shape == (1, 3, 33, 24, 32)
    chunks = list(vae.decode_stream(z))
    starts = [p for p, _ in chunks]
    assert starts == sorted(starts) and starts[0] == 0
    assert sum(c.shape[2] for _, c in chunks) == 33
    assert all(a + ca.shape[2] == b for (a, ca), (b, _) in zip(chunks, chunks[1:]))
    assert torch.equal(torch.cat([c for _, c in chunks], dim=2), official)
    # windows of 5 latent frames every 3: frames 0-4, 3-7, 6-8 (0-based)
    assert vae._windows(9) == [0, 3, 6] and vae._windows(7) == [0, 3]


def test_small_tiles_equal_the_official_decode_when_one_tile_covers_the_frame(vae):
    z = torch.randn(1, 16, 6, 4, 5)
    assert torch.equal(vae.decode(z, tile=VAETiling(tile_px=64, overlap_px=16)), vae.decode(z))


def test_small_tiles_are_closer_than_official_tiles_of_the_same_size(vae):
    z = torch.randn(1, 16, 2, 12, 12)
    vae.tiling = OfficialTiling(use_tiling=False)
    try:
        ref = vae.decode(z)
        err = lambda v: ((v - ref).abs().mean() / ref.abs().mean()).item()  # noqa: E731
        for tile, overlap in ((64, 32), (64, 16)):
            ours = vae.decode(z, tile=VAETiling(tile_px=tile, overlap_px=overlap))
            vae.tiling = OfficialTiling(sample_min=tile, sample_stride=tile - overlap, official_width_threshold=False)
            official = vae.decode(z)
            vae.tiling = OfficialTiling(use_tiling=False)
            assert ours.shape == ref.shape and 0 < err(ours) < err(official)
        # the seams of blended tiles are far weaker than those of butt-joined ones
        seam = lambda v: (v[..., 47, :] - v[..., 48, :]).abs().mean().item()  # noqa: E731
        blended = vae.decode(z, tile=VAETiling(tile_px=64, overlap_px=32))
        butt = vae.decode(z, tile=VAETiling(tile_px=48, overlap_px=0))
        assert abs(seam(blended) - seam(ref)) < 0.5 * abs(seam(butt) - seam(ref))
    finally:
        vae.tiling = OfficialTiling()


def test_encode_decode_checks_and_posterior(vae):
    with pytest.raises(ValueError, match="4k\\+1"):
        vae.encode_moments(torch.zeros(1, 3, 6, 16, 16))
    with pytest.raises(ValueError, match="latent"):
        vae.decode(torch.zeros(1, 4, 2, 2, 2))
    moments = vae.encode_moments(torch.rand(1, 3, 5, 16, 24) * 2 - 1)
    assert moments.shape == (1, 32, 2, 2, 3)
    mean, logvar = vae.posterior(moments)
    assert torch.equal(vae.sample(mean, logvar, torch.zeros_like(mean)), mean)
    vae.tiling = OfficialTiling(use_tiling=False, framewise=False)
    try:
        assert vae.decode(torch.randn(1, 16, 6, 2, 2)).shape[2] == 21
    finally:
        vae.tiling = OfficialTiling()


def test_loader_detects_prefix_and_refuses_the_wan_vae(vae):
    sd = {"vae." + k: v for k, v in vae.state_dict().items()}
    model, cfg = load_hunyuan_vae(sd, config=CFG)
    assert cfg == CFG and torch.equal(model.decoder.conv_in.conv.weight, vae.decoder.conv_in.conv.weight)
    with pytest.raises(CheckpointError, match="Wan2.1 VAE"):
        load_hunyuan_vae({"decoder.conv1.weight": torch.zeros(1), "encoder.conv1.weight": torch.zeros(1)})
