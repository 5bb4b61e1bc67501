"""SkyReels-A2 elements and SkyReels-V3 references: nodes, sampler path, guidance, sizes, loading."""
import os

import pytest
import torch

from skyreels_pack.cli.demo.common import randomize
from skyreels_pack.models.refs import a2, encode, images
from skyreels_pack.models.vision.clip_loader import ImageEncoder
from skyreels_pack.models.vision.clip_vit import CLIPVisionConfig, CLIPVisionTower
from skyreels_pack.models.wan import latent_space
from skyreels_pack.models.wan.dit import WanDiT
from skyreels_pack.models.wan.dit_config import WanDiTConfig
from skyreels_pack.models.wan.vae import WanVAE, WanVAEConfig
from skyreels_pack.nodes import handles
from skyreels_pack.nodes import sampling as sampling_nodes
from skyreels_pack.nodes.base import NodeError
from skyreels_pack.nodes.refs import A2Elements, SkipFrames, V3References
from skyreels_pack.sampling import conditioning as cond
from skyreels_pack.sampling.guidance import ModelInputs, ReferenceDenoiser

TEXT_DIM = 16


def _module(m, seed):
    m.load_state_dict(randomize(m, seed))
    return m.eval().requires_grad_(False)


@pytest.fixture(scope="module")
def vae():
    return handles.VAEHandle(_module(WanVAE(WanVAEConfig(dim=4)), 1), "tiny-vae")


@pytest.fixture(scope="module")
def clip():
    cfg = CLIPVisionConfig(image_size=28, patch_size=14, dim=32, mlp_dim=64, num_heads=2, num_layers=2)
    return handles.ClipVisionHandle(ImageEncoder(_module(CLIPVisionTower(cfg), 2), cfg), "tiny-clip")


def _dit(variant):
    image = variant == "a2"
    cfg = WanDiTConfig(dim=32, ffn_dim=64, num_heads=2, num_layers=1, text_dim=TEXT_DIM, in_dim=36 if image else 16,
                       image_dim=32 if image else None, variant=variant)
    return handles.DiTHandle(_module(WanDiT(cfg), 3), cfg, "tiny-" + variant)


def _text(seed=0):
    g = torch.Generator().manual_seed(seed)
    return cond.make_conditioning([torch.randn(1, 7, TEXT_DIM, generator=g)])


def _image(h, w, seed):
    return torch.rand(1, h, w, 3, generator=torch.Generator().manual_seed(seed))


def _sample(handle, pos, neg, latent, cfg=1.0, steps=2):
    return sampling_nodes.Sampler().sample(handle, pos, neg, latent, 0, steps, cfg, 5.0, "unipc", "official")[0]


class _Inputs:
    """Records what the DiT is called with."""

    def __init__(self, model):
        self.calls = []
        self.handle = model.register_forward_pre_hook(self._hook, with_kwargs=True)

    def _hook(self, module, args, kwargs):
        self.calls.append((args[0].clone(), args[2].clone(), kwargs.get("clip_fea"), kwargs.get("y")))


# --------------------------------------------------------------------------- VAE posterior


def test_vae_posterior_mean_is_the_encode_and_the_sample_adds_scaled_noise(vae):
    from skyreels_pack.models.wan.vae_tiling import VAETiling

    video = torch.rand(1, 3, 5, 32, 48) * 2 - 1
    model = vae.vae
    mean, logvar = model.encode_posterior(video)
    assert torch.equal(mean, model.encode(video)) and logvar.shape == mean.shape
    assert logvar.min() >= -30 and logvar.max() <= 20
    eps = torch.randn(mean.shape)
    post = encode.posterior_sample(model, video, eps=eps)
    assert torch.allclose(post.sample, mean + torch.exp(0.5 * logvar) * eps)
    assert not torch.allclose(post.sample, mean)
    tile = VAETiling(tile_px=32, overlap_px=16)
    tiled_mean, _ = model.encode_posterior(video, tile=tile)
    assert torch.equal(tiled_mean, model.encode(video, tile=tile))


# --------------------------------------------------------------------------- A2


def test_a2_three_elements_give_the_official_layout_and_sample(vae, clip):
    refs = {"subject_image": _image(40, 24, 1), "object_image": _image(30, 50, 2),
            "background_image": _image(36, 36, 3)}
    pos, neg, latent = A2Elements().encode(_text(1), _text(2), vae, clip, 32, 32, 13, 5, **refs)
    d = pos[0][1]
    raw, mask = d["concat_latent_image"], d["concat_mask"]
    assert raw.shape == (1, 16, 4, 4, 4) and latent["samples"].shape == (1, 16, 4, 4, 4)
    assert torch.equal(mask[0, 0, :, 0, 0], torch.tensor([0.0, 0.0, 0.0, 1.0]))  # core: 0 where given
    tokens = d["clip_vision_output"].penultimate_hidden_states
    assert tokens.shape == (1, 3 * 5, 32)
    assert neg[0][1]["concat_latent_image"] is raw  # official: the negative keeps the references
    # the engine gives the same, and the sampler rebuilds the official condition from the core keys
    arrs = [images.to_uint8(refs[r + "_image"]) for r in a2.ROLES]
    c = encode.a2_condition(vae.vae, arrs, list(a2.ROLES), 32, 32, 13, seed=5)
    assert torch.equal(raw, c.posterior.sample)
    assert torch.equal(tokens, encode.a2_clip_tokens(clip.encoder, arrs))
    y = cond.image_condition(pos, 4, 4, 4, latent_space.normalize)
    assert torch.allclose(y, c.condition, atol=1e-5)
    handle = _dit("a2")
    rec = _Inputs(handle.model)
    out = _sample(handle, pos, neg, latent, cfg=5.0)
    assert out["samples"].shape == (1, 16, 4, 4, 4) and torch.isfinite(out["samples"]).all()
    assert len(rec.calls) == 4  # 2 steps x (cond, uncond)
    x, _, clip_fea, y_in = rec.calls[0]
    assert clip_fea.shape[1] == 15 and torch.allclose(y_in, c.condition, atol=1e-5)


def test_a2_one_element_is_the_image_to_video_layout(vae, clip):
    bg = _image(20, 60, 4)
    pos, neg, latent = A2Elements().encode(_text(1), _text(2), vae, clip, 32, 32, 9, 0, background_image=bg)
    d = pos[0][1]
    assert torch.equal(d["concat_mask"][0, 0, :, 0, 0], torch.tensor([0.0, 1.0, 1.0]))
    assert d["clip_vision_output"].penultimate_hidden_states.shape[1] == 5
    c = encode.a2_condition(vae.vae, [images.to_uint8(bg)], ["background"], 32, 32, 9, seed=0)
    assert torch.equal(c.video[0, :, 0], images.to_pm1(images.crop_resize(images.to_uint8(bg), 32, 32)))
    assert torch.equal(c.video[:, :, 1:], torch.zeros(1, 3, 8, 32, 32))
    out = _sample(_dit("a2"), pos, neg, latent)
    assert torch.isfinite(out["samples"]).all()


def test_a2_elements_keep_their_roles_when_some_are_missing(vae, clip):
    subject, background = _image(30, 20, 5), _image(40, 20, 6)
    arrs = [images.to_uint8(subject), images.to_uint8(background)]
    c = encode.a2_condition(vae.vae, arrs, ["subject", "background"], 48, 32, 5)
    assert torch.equal(c.vae_images[0], images.to_pm1(images.pad_resize(arrs[0], 32, 48)))
    assert torch.equal(c.vae_images[1], images.to_pm1(images.crop_resize(arrs[1], 32, 48)))
    assert not torch.equal(c.vae_images[1], images.to_pm1(images.pad_resize(arrs[1], 32, 48)))
    pos, _, _ = A2Elements().encode(_text(), _text(), vae, clip, 48, 32, 5, 0, subject_image=subject,
                                    background_image=background)
    assert torch.equal(pos[0][1]["concat_latent_image"], c.posterior.sample)


def test_a2_errors_are_explained(vae, clip):
    node = A2Elements()
    with pytest.raises(NodeError, match="at least one element"):
        node.encode(_text(), _text(), vae, clip, 32, 32, 9, 0)
    with pytest.raises(NodeError, match="one image"):
        node.encode(_text(), _text(), vae, clip, 32, 32, 9, 0, subject_image=torch.rand(2, 8, 8, 3))
    three = {r + "_image": _image(8, 8, i) for i, r in enumerate(a2.ROLES)}
    with pytest.raises(NodeError, match="at least 9 frames"):
        node.encode(_text(), _text(), vae, clip, 32, 32, 5, 0, **three)
    pos, neg, latent = node.encode(_text(), _text(), vae, clip, 32, 32, 9, 0, subject_image=_image(8, 8, 1))
    with pytest.raises(NodeError, match="not a reference-to-video model|image-to-video"):
        _sample(_dit("r2v"), pos, neg, latent)


# --------------------------------------------------------------------------- V3 R2V


def test_r2v_size_from_the_first_reference_and_zero_padding(vae):
    wide = _image(18, 32, 7)
    size = V3References.video_size
    assert size("480P", 0, 0, images.to_uint8(wide)) == (848, 480)  # 16:9 -> 480x848, not 832
    assert size("720P", 0, 0, images.to_uint8(wide[:, :, :18])) == (960, 960)
    assert size("custom", 64, 32, images.to_uint8(wide)) == (64, 32)
    pos, neg, latent = V3References().encode(_text(), _text(), vae, wide, "custom", 48, 32, 5, 3.0, 0,
                                             reference_2=torch.cat([_image(10, 10, 8), _image(10, 10, 9)]))
    assert latent["samples"].shape == (1, 16, 2, 4, 6)
    raw = pos[0][1][cond.TIME_REFS]
    assert raw.shape == (1, 16, 4, 4, 6) and pos[0][1][cond.IMAGE_CFG] == 3.0
    norm = latent_space.normalize(raw)
    assert torch.equal(norm[:, :, 3:], torch.zeros(1, 16, 1, 4, 6))  # 3 references (a batch of 2), 1 pad
    assert (norm[:, :, :3].abs().sum((1, 3, 4)) > 0).all()
    assert torch.equal(neg[0][1][cond.TIME_REFS], raw)
    # the node's references are the engine's: letterboxed, encoded one by one, normalised
    arrs = [images.to_uint8(x) for x in (wide, _image(10, 10, 8), _image(10, 10, 9))]
    assert torch.allclose(norm, encode.r2v_references(vae.vae, arrs, 48, 32, seed=0).latents, atol=1e-5)


def test_r2v_sampler_puts_the_references_after_the_video_and_budgets_them(vae, monkeypatch):
    pos, neg, latent = V3References().encode(_text(1), _text(2), vae, _image(24, 32, 1), "custom", 32, 32, 9, 1.0, 4,
                                             reference_2=_image(32, 24, 2))
    refs = latent_space.normalize(pos[0][1][cond.TIME_REFS])
    seen = {}
    real_session = sampling_nodes.dit_session

    def session(handle, latent_shape=None, teacache=False):
        seen["shape"] = latent_shape
        return real_session(handle, latent_shape, teacache)

    monkeypatch.setattr(sampling_nodes, "dit_session", session)
    handle = _dit("r2v")
    rec = _Inputs(handle.model)
    plain = cond.make_conditioning([torch.randn(1, 7, TEXT_DIM)])  # a negative without references
    out = _sample(handle, pos, plain, latent, cfg=1.0)
    assert out["samples"].shape == (1, 16, 3, 4, 4)
    assert seen["shape"] == (3 + 4, 4, 4)  # the 4 reference frames count in the VRAM plan
    assert len(rec.calls) == 2
    for x, _, _, _ in rec.calls:
        assert x.shape[2] == 7 and torch.allclose(x[:, :, 3:], refs)
    rec.calls.clear()
    _sample(handle, pos, plain, latent, cfg=3.0)  # image_cfg 1: two passes, both with the references
    assert len(rec.calls) == 4 and all(torch.allclose(c[0][:, :, 3:], refs) for c in rec.calls)
    pos3 = cond.set_values(pos, {cond.IMAGE_CFG: 2.0})
    rec.calls.clear()
    _sample(handle, pos3, neg, latent, cfg=3.0)  # three passes, the last with the references zeroed
    assert len(rec.calls) == 6
    assert torch.equal(rec.calls[2][0][:, :, 3:], torch.zeros_like(refs))
    assert torch.allclose(rec.calls[1][0][:, :, 3:], refs)


class _Linear:
    """A stand-in DiT whose output depends on the text and on the reference frames."""

    device = torch.device("cpu")

    def __init__(self):
        self.calls = 0

    def __call__(self, x, t, context, **_):
        self.calls += 1
        return x * context.mean() + x[:, :, -1:].mean() * 0.5


def test_reference_guidance_formula_and_the_official_switch():
    x = torch.randn(1, 16, 2, 2, 2)
    refs = torch.randn(1, 16, 4, 2, 2)
    c = ModelInputs(torch.full((1, 3, 4), 2.0), time_refs=refs)
    u = ModelInputs(torch.full((1, 3, 4), 0.5), time_refs=refs)
    model = _Linear()

    def run(x_in, ctx, r):
        return model(torch.cat([x_in, r], 2), None, ctx)[:, :, :2]

    v_c, v_t, v_ti = run(x, c.context, refs), run(x, u.context, refs), run(x, u.context, torch.zeros_like(refs))
    model.calls = 0
    den = ReferenceDenoiser(model, c, u, 4.0, 3.0)
    assert torch.allclose(den(x, torch.tensor([500])), v_ti + 3.0 * (v_t - v_ti) + 4.0 * (v_c - v_t))
    assert model.calls == 3 and den.passes == 3
    two = ReferenceDenoiser(model, c, u, 4.0, 1.0)
    assert two.passes == 2
    three_with_one = v_ti + 1.0 * (v_t - v_ti) + 4.0 * (v_c - v_t)
    assert torch.allclose(two(x, torch.tensor([500])), three_with_one, atol=1e-6)
    for g_txt in (1.0, 0.5):  # R2V-3: image guidance alone does nothing
        one = ReferenceDenoiser(model, c, u, g_txt, 5.0)
        assert one.passes == 1 and torch.allclose(one(x, torch.tensor([500])), v_c)


def test_r2v_errors_are_explained(vae):
    node = V3References()
    five = torch.cat([_image(8, 8, i) for i in range(5)])
    with pytest.raises(NodeError, match="1 to 4"):
        node.encode(_text(), _text(), vae, five, "custom", 32, 32, 5, 1.0, 0)
    pos, neg, latent = node.encode(_text(), _text(), vae, _image(8, 8, 1), "custom", 32, 32, 5, 1.0, 0)
    with pytest.raises(NodeError, match="not a reference-to-video model"):
        _sample(_dit("a2"), pos, neg, {"samples": torch.zeros(1, 16, 2, 4, 4)})
    with pytest.raises(NodeError, match="reference latents are 4x4"):
        _sample(_dit("r2v"), pos, neg, {"samples": torch.zeros(1, 16, 2, 6, 6)})


def test_large_references_are_resized_before_anything_is_encoded(vae, clip):
    big = torch.rand(1, 1, 1, 3).expand(1, 4000, 6000, 3)  # a 24 MP photo (a view: no memory)
    shapes = []
    real = vae.vae.encode_posterior

    def record(video, tile=None):
        shapes.append(tuple(video.shape))
        return real(video, tile=tile)

    vae.vae.encode_posterior = record
    try:
        V3References().encode(_text(), _text(), vae, big, "custom", 64, 48, 5, 1.0, 0)
        A2Elements().encode(_text(), _text(), vae, clip, 32, 32, 1, 0, background_image=big)
    finally:
        del vae.vae.encode_posterior
    assert shapes == [(1, 3, 1, 48, 64), (1, 3, 1, 32, 32)]
    arr = images.to_uint8(big)
    assert encode.a2_clip_pixels([arr], 28).shape == (1, 3, 28, 28)
    assert V3References.video_size("720P", 0, 0, arr) == (1168, 784)  # 720P bucket of a 3:2 photo


def test_skip_frames():
    frames = torch.arange(20.0).view(20, 1, 1, 1).expand(20, 2, 2, 3)
    assert torch.equal(SkipFrames().skip(frames, 12, 0)[0][:, 0, 0, 0], torch.arange(12.0, 20.0))
    assert SkipFrames().skip(frames, 2, 3)[0].shape[0] == 3
    with pytest.raises(NodeError, match="leaves none"):
        SkipFrames().skip(frames, 20, 0)


# --------------------------------------------------------------------------- loading


def test_loader_finds_a2_and_r2v_in_their_pipeline_folders(tmp_path, monkeypatch):
    from skyreels_pack import host
    from skyreels_pack.cli.demo import refs as demo
    from skyreels_pack.cli.shipped.refs import MODELS
    from skyreels_pack.models.vision.clip_loader import load_clip_vision
    from skyreels_pack.models.wan.vae_loader import load_wan_vae
    from skyreels_pack.nodes.loaders import DiTLoader

    demo.write_a2(str(tmp_path))
    demo.write_r2v(str(tmp_path))
    a2_dir, r2v_dir = (os.path.join(str(tmp_path), *MODELS[k]) for k in ("a2", "r2v"))
    monkeypatch.setattr(host, "_model_roots", [str(tmp_path)])  # the loaders read inside the model folders only
    loader = DiTLoader()
    for path, variant in ((a2_dir, "a2"), (os.path.join(a2_dir, "transformer"), "a2"), (r2v_dir, "r2v"),
                          (os.path.join(r2v_dir, "transformer"), "r2v")):
        (handle,) = loader.load("unused", "auto", "fp32", "sdpa", 0.0, path=path)
        assert handle.config.variant == variant, path
        assert handle.config.num_heads == 1  # from the diffusers config.json
    # the rest of the A2 folder: the diffusers VAE and the transformers CLIP
    vae, _ = load_wan_vae(a2_dir)
    assert vae.config.dim == 8
    assert load_clip_vision(a2_dir).config.image_size == 56


def test_a2_and_r2v_in_fp8_int8_and_comfyui_single_files(tmp_path):
    """ComfyUI-style single files (official names behind model.diffusion_model.), stored as bf16 and
    loaded in fp8 / int8 like the V2 models, and Kijai-style fp8 files, found by their names."""
    from safetensors.torch import save_file

    from skyreels_pack.memory.quant import quantize_blocks
    from skyreels_pack.models.wan.dit_loader import fp8_eligible, load_wan_dit

    for variant, name in (("a2", "SkyReels-A2-14B"), ("r2v", "skyreels_v3_r2v_14b")):
        state = _dit(variant).model.state_dict()
        bf16 = str(tmp_path / (name + "_bf16.safetensors"))
        save_file({"model.diffusion_model." + k: v.to(torch.bfloat16) for k, v in state.items()}, bf16)
        kijai = str(tmp_path / (name + "_fp8_e4m3fn.safetensors"))
        save_file({k: (v.to(torch.float8_e4m3fn) if fp8_eligible(k) else v.half()) for k, v in state.items()}, kijai)
        x, t, ctx = torch.randn(1, 16, 2, 4, 4), torch.tensor([700]), torch.randn(1, 512, TEXT_DIM)
        extra = {"clip_fea": torch.randn(1, 10, 32), "y": torch.randn(1, 20, 2, 4, 4)} if variant == "a2" else {}
        if variant == "r2v":
            x = torch.cat([x, torch.randn(1, 16, 4, 4, 4)], 2)

        def run(path, weight_dtype, quant=None):
            model, cfg = load_wan_dit(path, weight_dtype=weight_dtype, compute_dtype=torch.float32)
            assert cfg.variant == variant, path
            if quant:
                quantize_blocks(model, quant)
            with torch.no_grad():
                return model(x, t, ctx, **extra), model

        want, _ = run(bf16, "fp32")
        for weight_dtype, quant, bound in (("fp8_e4m3fn", None, 0.05), ("bf16", "int8", 0.02)):
            got, model = run(bf16, weight_dtype, quant)
            assert (got - want).norm() / want.norm() < bound, (variant, weight_dtype, quant)
        got, model = run(kijai, "auto")
        assert any(p.dtype == torch.float8_e4m3fn for p in model.parameters()) and torch.isfinite(got).all()


# --------------------------------------------------------------------------- workflows


def test_shipped_workflows_carry_the_official_defaults():
    from skyreels_pack.cli import workflow as wf
    from skyreels_pack.models.refs import r2v
    from skyreels_pack.models.text.prompt import NEGATIVE_PROMPT_V2
    from skyreels_pack.nodes.registry import NODE_CLASS_MAPPINGS

    root = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "workflows")

    def api(name):
        nodes = wf.to_api(wf.load(os.path.join(root, name)), NODE_CLASS_MAPPINGS).values()
        loads = [n for n in nodes if n["class_type"] == "SkyReelsLoadImage"]
        return {n["class_type"]: n["inputs"] for n in nodes}, loads

    nodes, loads = api("skyreels_a2_elements.json")
    inj, smp = nodes["SkyReelsA2Elements"], nodes["SkyReelsSampler"]
    assert (inj["width"], inj["height"], inj["num_frames"]) == (832, 480, 81) and len(loads) == 3
    assert all(k + "_image" in inj for k in a2.ROLES)
    assert (smp["steps"], smp["cfg"], smp["shift"], smp["solver"]) == (50, 5.0, 8.0, "unipc")
    assert smp["sigma_grid"] == "official"  # what the diffusers of their day produced
    assert nodes["SkyReelsTextEncode"]["negative_prompt"] == NEGATIVE_PROMPT_V2  # A2's default is the same text
    assert nodes["SkyReelsSkipFrames"]["skip_first_frames"] == 12 and nodes["SkyReelsSaveVideo"]["fps"] == 15.0
    assert nodes["SkyReelsDiTLoader"]["model"] == "SkyReels-A2"

    nodes, loads = api("skyreels_v3_reference.json")
    inj, smp = nodes["SkyReelsV3References"], nodes["SkyReelsSampler"]
    assert (inj["resolution"], inj["num_frames"], inj["image_cfg"]) == ("720P", 121, 1.0) and len(loads) == 2
    assert "reference_2" in inj and "reference_3" not in inj
    assert (smp["steps"], smp["cfg"], smp["shift"], smp["sigma_grid"]) == (8, 1.0, 5.0, "official")
    assert nodes["SkyReelsTextEncode"]["negative_prompt"] == "" and nodes["SkyReelsSaveVideo"]["fps"] == r2v.FPS
