"""CLIP vision tower: keys at the real size, three namings, preprocessing, ComfyUI images, fp8."""
import math

import numpy as np
import pytest
import torch

from skyreels_pack.models.loading.checkpoint import CheckpointError, TensorSource
from skyreels_pack.models.vision import clip_keys
from skyreels_pack.models.vision.clip_loader import detect, load_clip_vision, load_clip_vision_model
from skyreels_pack.models.vision.clip_preprocess import CLIP_MEAN, CLIP_STD, clip_preprocess
from skyreels_pack.models.vision.clip_vit import CLIPVisionConfig, CLIPVisionTower

REAL = CLIPVisionConfig()
TINY = CLIPVisionConfig(image_size=42, patch_size=14, dim=48, mlp_dim=192, num_heads=4, num_layers=3)


def tiny_official(cfg=TINY, seed=0):
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for k, shape in clip_keys.expected_shapes(cfg).items():
        if "norm" in k and k.endswith("weight"):
            sd[k] = 1.0 + 0.1 * torch.randn(shape, generator=g)
        elif k.endswith("bias") or k in ("cls_embedding", "pos_embedding"):
            sd[k] = 0.1 * torch.randn(shape, generator=g)
        else:
            fan_in = math.prod(shape[1:])
            sd[k] = torch.randn(shape, generator=g) / math.sqrt(fan_in)
    return sd


def meta_official(cfg=REAL):
    return {k: torch.empty(s, device="meta") for k, s in clip_keys.expected_shapes(cfg).items()}


# --------------------------------------------------------------------------- real size


def test_real_config_keys_shapes_and_output_shape():
    shapes = clip_keys.expected_shapes(REAL)
    assert len(shapes) == 5 + 32 * 12
    assert shapes["patch_embedding.weight"] == (1280, 3, 14, 14) and "patch_embedding.bias" not in shapes
    assert shapes["cls_embedding"] == (1, 1, 1280) and shapes["pos_embedding"] == (1, 257, 1280)
    assert shapes["transformer.31.attn.to_qkv.weight"] == (3840, 1280)
    assert shapes["transformer.31.attn.to_qkv.bias"] == (3840,)
    assert shapes["transformer.0.mlp.0.weight"] == (5120, 1280) and shapes["transformer.0.mlp.2.weight"] == (1280, 5120)
    assert not any(k.startswith(("post_norm", "head")) for k in shapes)
    assert REAL.head_dim == 80 and REAL.num_tokens == 257
    with torch.device("meta"):
        model = CLIPVisionTower(REAL)
    assert model(torch.empty(2, 3, 224, 224, device="meta")).shape == (2, 257, 1280)


@pytest.mark.parametrize("naming,prefix,count", [("transformers", "vision_model.", 5 + 32 * 16),
                                                  ("open_clip", "visual.", 5 + 32 * 12),
                                                  ("official", "visual.", 5 + 32 * 12)])
def test_namings_round_trip_on_the_real_config(naming, prefix, count):
    official = meta_official()
    converted = clip_keys.convert_state_dict(official, naming)
    assert len(converted) == count and all(k.startswith(prefix) for k in converted)
    source = TensorSource.from_dict(converted)
    assert clip_keys.detect_naming(source.keys()) == (naming, prefix)
    view = clip_keys.mapped_source(source, naming, prefix)
    assert sorted(view.keys()) == sorted(official)
    assert all(view.shape(k) == tuple(official[k].shape) for k in official)
    assert clip_keys.infer_config({k: view.shape(k) for k in view.keys()}) == REAL


def test_transformers_and_open_clip_names():
    assert clip_keys.official_to("transformers", "transformer.3.attn.to_qkv.weight") == (
        "encoder.layers.3.self_attn.q_proj.weight", "encoder.layers.3.self_attn.k_proj.weight",
        "encoder.layers.3.self_attn.v_proj.weight")
    assert clip_keys.official_to("transformers", "pre_norm.weight") == "pre_layrnorm.weight"
    assert clip_keys.official_to("transformers", "cls_embedding") == "embeddings.class_embedding"
    to_open_clip = lambda k: clip_keys.official_to("open_clip", k)  # noqa: E731
    assert to_open_clip("transformer.3.attn.to_qkv.bias") == "transformer.resblocks.3.attn.in_proj_bias"
    assert to_open_clip("transformer.3.mlp.2.weight") == "transformer.resblocks.3.mlp.c_proj.weight"
    assert clip_keys.official_to("open_clip", "pos_embedding") == "positional_embedding"


# --------------------------------------------------------------------------- tiny model, values


def with_extras(sd, naming):
    """Add the keys real files carry besides the vision tower; all must be ignored."""
    sd = dict(sd)
    if naming == "official":
        sd.update({"visual.post_norm.weight": torch.ones(TINY.dim), "visual.head": torch.zeros(TINY.dim, 8),
                   "textual.token_embedding.weight": torch.zeros(10, 4), "log_scale": torch.zeros(())})
    elif naming == "transformers":
        sd.update({"vision_model.post_layernorm.weight": torch.ones(TINY.dim),
                   "vision_model.embeddings.position_ids": torch.arange(TINY.num_tokens)[None],
                   "visual_projection.weight": torch.zeros(8, TINY.dim),
                   "text_model.encoder.layers.0.self_attn.q_proj.weight": torch.zeros(4, 4),
                   "logit_scale": torch.zeros(())})
    else:
        sd.update({"visual.ln_post.weight": torch.ones(TINY.dim), "visual.proj": torch.zeros(TINY.dim, 8),
                   "transformer.resblocks.0.attn.in_proj_weight": torch.zeros(12, 4),
                   "token_embedding.weight": torch.zeros(10, 4), "ln_final.weight": torch.ones(4)})
    return sd


def test_three_namings_load_to_the_same_outputs():
    sd = tiny_official()
    pixels = torch.randn(2, 3, 42, 42)
    ref, cfg = load_clip_vision_model({"visual." + k: v for k, v in sd.items()}, weight_dtype="fp32", num_heads=4)
    assert cfg == TINY
    want = ref(pixels)
    assert want.shape == (2, 10, 48)
    for naming in ("official", "transformers", "open_clip"):
        converted = with_extras(clip_keys.convert_state_dict(sd, naming), naming)
        model, cfg = load_clip_vision_model(converted, weight_dtype="fp32", num_heads=4)
        assert cfg == TINY
        torch.testing.assert_close(model(pixels), want, atol=0, rtol=0)
    assert (ref(pixels, layer=-1) - want).abs().max() > 1e-3  # penultimate is not the last block


def test_penultimate_tokens_by_hand():
    """Embeddings + pre-norm + all blocks but the last, written out with plain torch ops."""
    sd = tiny_official()
    model, _ = load_clip_vision_model(sd_with_prefix(sd), weight_dtype="fp32", num_heads=4)
    px = torch.randn(1, 3, 42, 42)
    x = torch.nn.functional.conv2d(px, sd["patch_embedding.weight"], stride=14).flatten(2).transpose(1, 2)
    x = torch.cat([sd["cls_embedding"], x], 1) + sd["pos_embedding"]
    ln = torch.nn.functional.layer_norm
    x = ln(x, (48,), sd["pre_norm.weight"], sd["pre_norm.bias"], 1e-5)
    for i in range(TINY.num_layers - 1):
        p = lambda n: sd["transformer.%d.%s" % (i, n)]  # noqa: E731
        h = ln(x, (48,), p("norm1.weight"), p("norm1.bias"), 1e-5)
        q, k, v = (h @ p("attn.to_qkv.weight").T + p("attn.to_qkv.bias")).view(1, 10, 3, 4, 12).unbind(2)
        att = torch.softmax(torch.einsum("bihd,bjhd->bhij", q, k) / math.sqrt(12), -1)
        o = torch.einsum("bhij,bjhd->bihd", att, v).reshape(1, 10, 48)
        x = x + o @ p("attn.proj.weight").T + p("attn.proj.bias")
        h = ln(x, (48,), p("norm2.weight"), p("norm2.bias"), 1e-5)
        h = torch.nn.functional.gelu(h @ p("mlp.0.weight").T + p("mlp.0.bias"))
        x = x + h @ p("mlp.2.weight").T + p("mlp.2.bias")
    torch.testing.assert_close(model(px), x, atol=1e-5, rtol=1e-5)


def sd_with_prefix(sd):
    return {"visual." + k: v for k, v in sd.items()}


def test_fp8_storage_error_is_bounded_and_scaled_fp8_files_load():
    sd = sd_with_prefix(tiny_official())
    pixels = torch.randn(1, 3, 42, 42)
    m32, _ = load_clip_vision_model(sd, weight_dtype="fp32", num_heads=4)
    m8, _ = load_clip_vision_model(sd, weight_dtype="fp8_e4m3fn", num_heads=4)
    assert m8.transformer[0].attn.to_qkv.weight.dtype == torch.float8_e4m3fn
    assert m8.transformer[0].norm1.weight.dtype == torch.float32
    a, b = m32(pixels), m8(pixels)
    rel = ((a - b).norm() / a.norm()).item()
    assert 0 < rel < 0.05, rel
    # a scaled-fp8 file in transformers naming: q/k/v parts with their own scales are fused
    tf = clip_keys.convert_state_dict(tiny_official(), "transformers")
    scaled = {}
    for k, v in tf.items():
        if k.endswith("_proj.weight") or (".mlp.fc" in k and k.endswith(".weight")):
            s = v.abs().max() / 448.0
            scaled[k] = (v / s).to(torch.float8_e4m3fn)
            scaled[k[: -len(".weight")] + ".scale_weight"] = s.reshape(1)
        else:
            scaled[k] = v
    mf, _ = load_clip_vision_model(scaled, num_heads=4)
    assert mf.transformer[0].mlp[0].weight.dtype == torch.float8_e4m3fn  # single tensors stay fp8
    c = mf(pixels)
    assert ((a - c).norm() / a.norm()).item() < 0.05


def test_detect_and_errors():
    assert detect(TensorSource.from_dict(sd_with_prefix(tiny_official()))) == ("official", "visual.")
    assert detect(TensorSource.from_dict({"blocks.0.attn.q.weight": torch.zeros(2)})) is None
    with pytest.raises(CheckpointError, match="not a CLIP vision tower"):
        load_clip_vision_model({"foo": torch.zeros(2)})
    model, _ = load_clip_vision_model(sd_with_prefix(tiny_official()), weight_dtype="fp32", num_heads=4)
    with pytest.raises(ValueError, match="42x42"):
        model(torch.zeros(1, 3, 56, 56))
    with pytest.raises(ValueError, match="out of range"):
        model(torch.zeros(1, 3, 42, 42), layer=5)


# --------------------------------------------------------------------------- preprocessing


def bicubic_matrix(n_in: int, n_out: int, a: float = -0.75) -> np.ndarray:
    """Rows of cubic-convolution weights, half-pixel centres, edge taps clamped (no antialias)."""

    def w(d):
        d = abs(d)
        if d <= 1:
            return (a + 2) * d ** 3 - (a + 3) * d ** 2 + 1
        if d < 2:
            return a * d ** 3 - 5 * a * d ** 2 + 8 * a * d - 4 * a
        return 0.0

    m = np.zeros((n_out, n_in))
    for i in range(n_out):
        src = (i + 0.5) * n_in / n_out - 0.5
        x0 = math.floor(src)
        t = src - x0
        for tap, d in zip(range(x0 - 1, x0 + 3), (1 + t, t, 1 - t, 2 - t)):
            m[i, min(max(tap, 0), n_in - 1)] += w(d)
    return m


def test_preprocess_matches_a_hand_computation():
    g = torch.Generator().manual_seed(1)
    img = torch.rand(1, 5, 7, 3, generator=g)  # ComfyUI IMAGE, [0, 1]
    got = clip_preprocess(img, size=4)
    assert got.shape == (1, 3, 4, 4)
    mh, mw = bicubic_matrix(5, 4), bicubic_matrix(7, 4)
    for c in range(3):
        chan = img[0, :, :, c].double().numpy() * 2 - 1  # the official works in [-1, 1]
        resized = mh @ chan @ mw.T
        want = ((resized * 0.5 + 0.5) - CLIP_MEAN[c]) / CLIP_STD[c]
        np.testing.assert_allclose(got[0, c].double().numpy(), want, atol=1e-5)
    # the same image in the official [-1, 1] channels-first layout, and as a one-frame video
    pm1 = img.permute(0, 3, 1, 2) * 2 - 1
    torch.testing.assert_close(clip_preprocess(pm1, size=4), got, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(clip_preprocess(pm1[:, :, None], size=4), got, atol=1e-6, rtol=1e-6)
    # at the target size nothing is resampled: only the normalisation
    flat = torch.full((1, 4, 4, 3), 0.25)
    want_flat = torch.tensor([(0.25 - m) / s for m, s in zip(CLIP_MEAN, CLIP_STD)])
    torch.testing.assert_close(clip_preprocess(flat, size=4)[0, :, 0, 0], want_flat)
    with pytest.raises(ValueError, match="ComfyUI IMAGE"):
        clip_preprocess(torch.zeros(2, 5, 5))


def test_image_encoder_encodes_comfy_images():
    enc = load_clip_vision(sd_with_prefix(tiny_official()), weight_dtype="fp32", num_heads=4)
    images = torch.rand(2, 60, 80, 3)
    tokens = enc.encode(images)
    assert tokens.shape == (2, TINY.num_tokens, TINY.dim) and tokens.dtype == torch.float32
    torch.testing.assert_close(tokens, enc.model(clip_preprocess(images, 42)), atol=0, rtol=0)
    torch.testing.assert_close(enc.encode(images.permute(0, 3, 1, 2) * 2 - 1), tokens, atol=1e-5, rtol=1e-5)


def test_diffusers_image_encoder_folder_with_config(tmp_path):
    """The head count comes from image_encoder/config.json (48 wide would otherwise give 1 head)."""
    import json

    from safetensors.torch import save_file

    sd = tiny_official()
    folder = tmp_path / "pipe" / "image_encoder"
    folder.mkdir(parents=True)
    save_file(clip_keys.convert_state_dict(sd, "transformers"), str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps({
        "hidden_size": 48, "intermediate_size": 192, "num_hidden_layers": 3, "num_attention_heads": 4,
        "image_size": 42, "patch_size": 14, "hidden_act": "gelu", "layer_norm_eps": 1e-5}))
    enc = load_clip_vision(str(tmp_path / "pipe"), weight_dtype="fp32")
    assert enc.config == TINY
    ref, _ = load_clip_vision_model(sd_with_prefix(sd), weight_dtype="fp32", num_heads=4)
    px = torch.randn(1, 3, 42, 42)
    torch.testing.assert_close(enc.encode_pixels(px), ref(px), atol=0, rtol=0)
    guessed, cfg = load_clip_vision_model(str(folder / "model.safetensors"), weight_dtype="fp32")
    assert cfg.num_heads == 4  # config.json beside the file agrees on the width, so it is used
