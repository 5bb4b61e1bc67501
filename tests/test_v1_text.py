"""SkyReels-V1 text path: tokenizers, the template crop, the FPS prefix, CONDITIONING from ComfyUI's
own HunyuanVideo nodes, and what the sampler node does with it."""
import json
import os

import pytest
import torch

from skyreels_pack.models.hunyuan import conditioning as hc
from skyreels_pack.models.hunyuan import tokenizers as tk
from skyreels_pack.models.hunyuan.text_encoder import (NEGATIVE_PROMPT, PROMPT_TEMPLATE, load_clip_l,
                                                       load_llama_encoder, with_fps_prefix)

GOLDEN = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", "shared", "golden", "v1",
                                       "hunyuan_text_b2.safetensors"))
COMFY_CLIP_TOKENIZER = os.path.expanduser("~/.cache/comfyhost/ComfyUI/comfy/sd1_tokenizer")


def _golden_params():
    from safetensors import safe_open

    with safe_open(GOLDEN, "pt") as f:
        return json.loads(f.metadata()["params"])


@pytest.mark.skipif(not os.path.isfile(os.path.join(COMFY_CLIP_TOKENIZER, "vocab.json")),
                    reason="ComfyUI's CLIP tokenizer files are not on this machine")
def test_clip_tokenizer_gives_the_official_ids():
    tok = tk.CLIPTokenizer(COMFY_CLIP_TOKENIZER)
    for prompt, ids in _golden_params()["real_clip_ids"].items():
        got = tok.encode(prompt)
        assert len(got) == 77 and got[:len(ids)] == ids and set(got[len(ids):]) == {49407}


def test_defaults_and_fps_prefix():
    p = _golden_params()
    assert NEGATIVE_PROMPT == p["default_negative_prompt"] and PROMPT_TEMPLATE == p["prompt_template"]
    assert with_fps_prefix("A 3D model of a 1800s victorian house.") == p["default_prompt"]
    assert with_fps_prefix(p["default_prompt"]) == p["default_prompt"]
    assert with_fps_prefix(" FPS-12, a cat") == " FPS-12, a cat"
    assert with_fps_prefix("a cat", fps=30) == "FPS-30, a cat"


@pytest.fixture(scope="module")
def encoders(tmp_path_factory):
    """The demo text encoders in their real file formats (as the workflows use them)."""
    from skyreels_pack.cli.demo import v1 as demo

    root = str(tmp_path_factory.mktemp("v1_text"))
    demo.write_llama(root)
    demo.write_clip(root)
    te = os.path.join(root, "text_encoders")
    llama = load_llama_encoder(os.path.join(te, "llava_llama3_fp8_scaled.safetensors"), compute_dtype=torch.float32)
    clip = load_clip_l(os.path.join(te, "clip_l.safetensors"), compute_dtype=torch.float32)
    return root, llama, clip


def test_llama_crop_keeps_the_prompt_tokens_and_eot(encoders):
    _, llama, _ = encoders
    assert llama.model.layers[0].self_attn.q_proj.weight.dtype == torch.float8_e4m3fn  # scaled fp8 kept
    assert hasattr(llama.model.layers[0].self_attn.q_proj, "scale_weight")
    assert len(llama.model.layers) == 2  # 4 in the file, hidden_states[-3] needs 2
    tok = llama.tokenizer
    crop = llama.template_length()
    prompt = "FPS-24, a cat walks on the grass"
    full = tok.encode(PROMPT_TEMPLATE.format(prompt))
    rows = llama.encode(prompt)
    assert rows.shape == (1, len(full) - crop, 128)
    assert full[crop:] == tok.encode(prompt + "<|eot_id|>")[1:]  # the kept rows: the prompt and <|eot_id|>
    # the same rows as the official padded batch path
    ids = torch.tensor([full + [tok.pad_id] * 5])
    mask = torch.tensor([[1] * len(full) + [0] * 5])
    padded, m = llama.encode_ids(ids, mask, crop=crop)
    torch.testing.assert_close(padded[:, :rows.shape[1]], rows, atol=1e-5, rtol=1e-5)
    assert m.sum() == rows.shape[1]


def test_tokenizer_search_and_messages(encoders, tmp_path):
    root, _, _ = encoders
    te = os.path.join(root, "text_encoders")
    assert tk.find_llama_tokenizer(os.path.join(te, "llava_llama3_fp8_scaled.safetensors")).source.startswith(te)
    assert tk.find_clip_tokenizer(os.path.join(te, "clip_l.safetensors")).source.startswith(te)
    lone = tmp_path / "lone.safetensors"
    lone.write_bytes(b"")
    with pytest.raises(tk.TokenizerError, match="llama_tokenizer"):
        tk.find_llama_tokenizer(str(lone))
    with pytest.raises(tk.TokenizerError, match="clip_l_tokenizer"):
        tk.find_clip_tokenizer(str(lone))
    assert not tk.is_clip_folder(os.path.join(te, "llama_tokenizer"))
    assert not tk.is_llama_folder(os.path.join(te, "clip_l_tokenizer"))


def test_comfyui_conditioning_is_read_like_ours(encoders):
    _, llama, clip = encoders
    text, pooled = llama.encode("FPS-24, a dog"), clip.encode("FPS-24, a dog")
    ours = hc.make_conditioning(text, pooled)
    # ComfyUI's HunyuanVideo text encoder: the same layout, sometimes with an all-ones mask or a guidance
    comfy = [[text.clone(), {"pooled_output": pooled.clone(), "guidance": 6.0,
                             "attention_mask": torch.ones(1, text.shape[1], dtype=torch.long)}]]
    t1, m1, p1 = hc.text_inputs(ours, "positive", 128, 64)
    t2, m2, p2 = hc.text_inputs(comfy, "positive", 128, 64)
    assert torch.equal(t1, t2) and torch.equal(p1, p2) and m1 is None and m2.sum() == text.shape[1]
    with pytest.raises(ValueError, match="llava-llama-3"):
        hc.text_inputs([[torch.zeros(1, 512, 4096), {}]], "positive", 128, 64)  # umT5 conditioning
    with pytest.raises(ValueError, match="pooled"):
        hc.text_inputs([[text, {}]], "negative", 128, 64)
    assert hc.raw_image_latent(ours) is None
    raw = torch.randn(1, 16, 1, 4, 6)
    assert hc.raw_image_latent([[text, {"concat_latent_image": raw}]]) is raw
    lat = hc.image_latents_for(raw, 3)
    assert torch.equal(lat[:, :, 0], raw[:, :, 0] * 0.476986) and not lat[:, :, 1:].any()


def test_llama_layers_stream_under_a_vram_budget(encoders):
    from skyreels_pack.memory import offload
    from skyreels_pack.memory.budget import GB
    from skyreels_pack.memory.streamable import activations_of, blocks_of

    from test_memory import FakeDevice

    _, llama, _ = encoders
    model = llama.model
    assert blocks_of(model) == list(model.layers)
    reference = llama.encode("FPS-24, a red kite over the sea")
    sizes = offload.estimate_bytes(model)
    act = activations_of(model, (1, 1, 1), compute_dtype=torch.float32)
    budget = sizes["rest"] + act + max(sizes["per_block"]) + 1024  # one layer on the device at a time
    fake = FakeDevice()
    plan = offload.prepare_for_sampling(model, "cpu", budget / GB, prefetch=False, latent_shape=(1, 1, 1),
                                        transfer=fake)
    assert plan.resident == () and len(plan.streamed) == 2
    try:
        assert torch.equal(llama.encode("FPS-24, a red kite over the sea"), reference)
        assert len(fake.fetched) == 2 and fake.peak <= budget - act
    finally:
        offload.release(model)
    assert fake.current == 0 and model.block_hooks is None
