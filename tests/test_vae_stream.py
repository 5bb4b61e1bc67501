"""Decoding a long latent in pieces with one causal state equals decoding it at once."""
import os

import torch

from golden_cases import DEFAULT_DIR, load_case
from skyreels_pack.models.wan.vae import StreamDecoder
from skyreels_pack.models.wan.vae_loader import load_wan_vae
from skyreels_pack.sampling.video_codec import VideoCodec


def tiny_vae():
    case = load_case(os.path.join(DEFAULT_DIR, "wan_vae_decode_b1.safetensors"))
    vae, _ = load_wan_vae(case.weights)
    return vae


def test_stream_decoder_equals_whole_decode():
    vae = tiny_vae()
    z = torch.randn(1, 16, 6, 4, 4, generator=torch.Generator().manual_seed(1))
    whole = vae.decode(z)
    s = StreamDecoder(vae)
    pieces = torch.cat([s.feed(z[:, :, :1]), s.feed(z[:, :, 1:4]), s.feed(z[:, :, 4:])], dim=2)
    assert pieces.shape == whole.shape == (1, 3, 21, 32, 32)
    assert torch.allclose(pieces, whole, atol=1e-5)


def test_codec_stream_matches_codec_decode_and_is_off_when_tiled():
    vae = tiny_vae()
    codec = VideoCodec(vae)
    z = torch.randn(1, 16, 5, 4, 4, generator=torch.Generator().manual_seed(2))
    stream = codec.stream()
    frames = torch.cat([stream.feed(z[:, :, :2]), stream.feed(z[:, :, 2:])], 0)
    assert torch.allclose(frames, codec.decode(z), atol=1e-5)
    from skyreels_pack.models.wan.vae_tiling import VAETiling

    assert VideoCodec(vae, tile=VAETiling()).stream() is None
