"""The text/image-to-video sampler node path: core conditioning accepted, seeds, cancel."""
import pytest
import torch

from fakes import tiny_df_dit
from skyreels_pack import host
from skyreels_pack.sampling import conditioning as cond
from skyreels_pack.sampling.guidance import ModelInputs
from skyreels_pack.sampling.video_sampler import SampleSettings, sample_video


@pytest.fixture(scope="module")
def dit():
    return tiny_df_dit()


def test_comfyui_umt5_conditioning_is_padded_to_512(dit):
    model, c, _ = dit
    core = [[torch.randn(1, 77, 4096), {"pooled_output": None, "attention_mask": torch.ones(1, 77)}]]
    (ctx,) = cond.contexts(core, 4096, 512)
    assert ctx.shape == (1, 512, 4096) and torch.equal(ctx[:, 77:], torch.zeros(1, 435, 4096))
    with pytest.raises(ValueError, match="width 768 but this model expects 4096"):
        cond.contexts([[torch.randn(1, 77, 768), {}]], 4096, 512)
    out = sample_video(model, (1, 16, 2, 4, 4), ModelInputs(ctx), None, SampleSettings(steps=2, cfg=1.0))
    assert out.shape == (1, 16, 2, 4, 4) and torch.isfinite(out).all()


def test_same_seed_same_video_other_seed_differs(dit):
    model, c, u = dit
    s = SampleSettings(steps=2, cfg=5.0, seed=11)
    a = sample_video(model, (1, 16, 2, 4, 4), ModelInputs(c), ModelInputs(u), s)
    b = sample_video(model, (1, 16, 2, 4, 4), ModelInputs(c), ModelInputs(u), s)
    s.seed = 12
    d = sample_video(model, (1, 16, 2, 4, 4), ModelInputs(c), ModelInputs(u), s)
    assert torch.equal(a, b) and not torch.allclose(a, d)


def test_cancel_stops_sampling(dit):
    model, c, u = dit
    host.request_interrupt()
    with pytest.raises(host.Interrupted):
        sample_video(model, (1, 16, 2, 4, 4), ModelInputs(c), ModelInputs(u), SampleSettings(steps=3))


def test_image_condition_from_core_style_conditioning():
    raw = torch.randn(1, 16, 3, 4, 4)
    mask = torch.ones(1, 1, 3, 4, 4)
    mask[:, :, 0] = 0
    c = cond.set_values([[torch.zeros(1, 512, 8), {}]], {"concat_latent_image": raw, "concat_mask": mask})
    y = cond.image_condition(c, 3, 4, 4, lambda t: t * 2)
    assert y.shape == (1, 20, 3, 4, 4)
    assert torch.equal(y[:, :4, 0], torch.ones(1, 4, 4, 4)) and torch.equal(y[:, :4, 1:], torch.zeros(1, 4, 2, 4, 4))
    assert torch.equal(y[:, 4:], raw * 2)
