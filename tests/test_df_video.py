"""The long-video diffusion-forcing loop, on the tiny DF DiT and a toy VAE."""
import pytest
import torch

from fakes import ToyVAE, tiny_df_dit
from skyreels_pack import host
from skyreels_pack.sampling.chunk_store import CollectFrames
from skyreels_pack.sampling.df_video import DFConditioning, DFVideoSettings, generate_df_video
from skyreels_pack.sampling.guidance import ModelInputs
from skyreels_pack.sampling.video_codec import VideoCodec


@pytest.fixture(scope="module")
def dit():
    return tiny_df_dit()


def settings(**kw):
    base = dict(width=32, height=32, num_frames=41, base_num_frames=17, overlap_history=5, steps=3, shift=8.0,
                guidance=5.0, addnoise_condition=20, seed=3)
    base.update(kw)
    return DFVideoSettings(**base)


def run(dit, s, **cond_kw):
    model, cond, uncond = dit
    sink = CollectFrames()
    codec = VideoCodec(ToyVAE())
    cond = DFConditioning(prompts=cond_kw.pop("prompts", [ModelInputs(cond)]), negative=ModelInputs(uncond), **cond_kw)
    res = generate_df_video(model, codec, s, cond, sink, **cond_kw.pop("extra", {}))
    return res, sink, codec


@pytest.mark.parametrize("history", ["latent", "pixel"])
def test_long_video_has_exactly_the_requested_frames(dit, history):
    res, sink, codec = run(dit, settings(history=history))
    assert [c.latent_frames for c in res.plan.chunks] == [5, 5, 5]
    assert sink.images().shape == (41, 32, 32, 3)
    assert res.frames_made == 41
    assert res.latents.shape[2] == (41 - 1) // 4 + 1
    # the official way re-encodes the overlap for every later chunk; the latent way never does
    assert codec.vae.encode_calls == (2 if history == "pixel" else 0)


def test_prompt_per_chunk_and_async(dit):
    model, cond, uncond = dit
    seen = []
    orig = model.forward

    def spy(x, t, context, **kw):
        seen.append(float(context.sum()))
        return orig(x, t, context, **kw)

    model.forward = spy
    try:
        prompts = [ModelInputs(cond), ModelInputs(cond * 0.5)]
        res, sink, _ = run(dit, settings(ar_step=1, causal_block_size=1), prompts=prompts)
    finally:
        del model.forward
    used = set(round(v, 3) for v in seen)
    assert round(float(cond.sum()), 3) in used and round(float((cond * 0.5).sum()), 3) in used
    assert sink.images().shape[0] == 41


def test_start_image_is_kept_and_end_image_not_output(dit):
    start = torch.rand(1, 32, 32, 3)
    end = torch.rand(1, 32, 32, 3)
    res, sink, codec = run(dit, settings(num_frames=17, causal_block_size=5, ar_step=0, addnoise_condition=0),
                           start_image=start, end_image=end)
    frames = sink.images()
    assert frames.shape[0] == 17
    # the start latent was pinned: the first decoded frame is the toy VAE's reconstruction of the image
    recon = codec.decode(codec.encode(start))[0]
    assert torch.allclose(frames[0], recon, atol=1e-5)


def test_extension_outputs_new_frames_only(dit):
    video = torch.rand(9, 32, 32, 3)
    res, sink, _ = run(dit, settings(num_frames=24, overlap_history=5), video=video)
    assert sink.images().shape[0] == 24
    assert all(c.prefix_latents == 2 for c in res.plan.chunks)


def test_cancel_then_resume_gives_the_same_video(dit, tmp_path):
    model, cond, uncond = dit
    full, full_sink, _ = run(dit, settings())
    calls = {"n": 0}
    orig = model.forward

    def cancel_later(*a, **kw):
        calls["n"] += 1
        if calls["n"] == 15:  # during the third chunk (each chunk = 3 rows x 2 branches)
            host.request_interrupt()
        return orig(*a, **kw)

    model.forward = cancel_later
    sink = CollectFrames()
    cnd = DFConditioning(prompts=[ModelInputs(cond)], negative=ModelInputs(uncond))
    with pytest.raises(host.Interrupted):
        generate_df_video(model, VideoCodec(ToyVAE()), settings(), cnd, sink, chunk_dir=str(tmp_path))
    del model.forward
    assert sorted(p.name for p in tmp_path.glob("chunk_*.safetensors")) == ["chunk_0000.safetensors", "chunk_0001.safetensors"]
    sink2 = CollectFrames()
    res = generate_df_video(model, VideoCodec(ToyVAE()), settings(), cnd, sink2, chunk_dir=str(tmp_path))
    assert res.resumed_chunks == 2
    a, b = full_sink.images(), sink2.images()
    assert a.shape == b.shape
    assert (a - b).abs().max() < 2.5 / 255  # saved frames are 8-bit; the rest is recomputed identically
    assert torch.allclose(full.latents, res.latents, atol=1e-5)


def test_chunk_folder_refuses_another_run(dit, tmp_path):
    model, cond, uncond = dit
    cnd = DFConditioning(prompts=[ModelInputs(cond)], negative=ModelInputs(uncond))
    generate_df_video(model, VideoCodec(ToyVAE()), settings(num_frames=17), cnd, CollectFrames(), chunk_dir=str(tmp_path))
    with pytest.raises(ValueError, match="different run"):
        generate_df_video(model, VideoCodec(ToyVAE()), settings(num_frames=17, seed=9), cnd, CollectFrames(),
                          chunk_dir=str(tmp_path))
