"""umT5 text encoder: keys at the real size, namings, ComfyUI files, tokenizers, prompts, fp8."""
import math

import pytest
import torch
from safetensors.torch import save_file

from skyreels_pack.models.loading.checkpoint import CheckpointError
from skyreels_pack.models.text import prompt as P
from skyreels_pack.models.text import umt5_keys
from skyreels_pack.models.text.tokenizer import (EOS_ID, PAD_ID, TokenizerError, UMT5Tokenizer, build_demo_spiece,
                                                 spiece_to_tokenizer_json)
from skyreels_pack.models.text.umt5 import UMT5Config, relative_position_buckets
from skyreels_pack.models.text.umt5_loader import detect, load_umt5, load_umt5_model

REAL = UMT5Config()
TINY = UMT5Config(vocab=320, dim=32, dim_attn=48, dim_ffn=64, num_heads=4, num_layers=2)


@pytest.fixture(scope="module")
def spiece():
    return build_demo_spiece(256)


def tiny_official(cfg=TINY, seed=0):
    """Random official-named weights with T5-like scales (fp32)."""
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for k, shape in umt5_keys.expected_shapes(cfg).items():
        if k.endswith("norm1.weight") or k.endswith("norm2.weight") or k == "norm.weight":
            sd[k] = 1.0 + 0.1 * torch.randn(shape, generator=g)
        elif k == "token_embedding.weight":
            sd[k] = torch.randn(shape, generator=g)
        elif "pos_embedding" in k:
            sd[k] = 0.5 * torch.randn(shape, generator=g)
        else:
            sd[k] = torch.randn(shape, generator=g) / math.sqrt(shape[1])
    return sd


def to_transformers(sd):
    return {umt5_keys.official_to_transformers(k): v for k, v in sd.items()}


def scaled_fp8(sd):
    """ComfyUI-style scaled fp8: block Linear weights as fp8 + scale_weight, marker tensor."""
    out = {"scaled_fp8": torch.empty(0, dtype=torch.float8_e4m3fn)}
    for k, v in sd.items():
        if ".DenseReluDense." in k or (".SelfAttention." in k and "relative_attention_bias" not in k):
            scale = v.abs().max() / 448.0
            out[k] = (v / scale).to(torch.float8_e4m3fn)
            out[k[: -len(".weight")] + ".scale_weight"] = scale.reshape(1).float()
        else:
            out[k] = v.to(torch.float16)
    return out


# --------------------------------------------------------------------------- real size, keys


def test_real_config_keys_and_shapes():
    shapes = umt5_keys.expected_shapes(REAL)
    assert len(shapes) == 1 + 24 * 10 + 1
    assert shapes["token_embedding.weight"] == (256384, 4096)
    assert shapes["blocks.0.attn.q.weight"] == (4096, 4096)
    assert shapes["blocks.23.attn.o.weight"] == (4096, 4096)
    assert shapes["blocks.5.ffn.gate.0.weight"] == (10240, 4096)
    assert shapes["blocks.5.ffn.fc1.weight"] == (10240, 4096)
    assert shapes["blocks.5.ffn.fc2.weight"] == (4096, 10240)
    assert shapes["blocks.23.pos_embedding.embedding.weight"] == (32, 64)
    assert shapes["norm.weight"] == (4096,)
    assert REAL.head_dim == 64
    per_block = 4 * 4096 * 4096 + 3 * 4096 * 10240 + 32 * 64 + 2 * 4096
    assert sum(math.prod(s) for s in shapes.values()) == 256384 * 4096 + 24 * per_block + 4096


def test_official_transformers_naming_is_a_bijection_on_the_real_config():
    official = list(umt5_keys.expected_shapes(REAL))
    tf = [umt5_keys.official_to_transformers(k) for k in official]
    assert None not in tf and len(set(tf)) == len(official)
    assert "shared.weight" in tf and "encoder.final_layer_norm.weight" in tf
    assert "encoder.block.23.layer.0.SelfAttention.relative_attention_bias.weight" in tf
    assert "encoder.block.0.layer.1.DenseReluDense.wi_0.weight" == umt5_keys.official_to_transformers(
        "blocks.0.ffn.gate.0.weight")
    assert [umt5_keys.transformers_to_official(k) for k in tf] == official
    # the tied copy and decoder keys
    assert umt5_keys.transformers_to_official("encoder.embed_tokens.weight") == "token_embedding.weight"
    assert umt5_keys.transformers_to_official("decoder.block.0.layer.0.SelfAttention.q.weight") is None
    assert umt5_keys.transformers_to_official("lm_head.weight") is None


def test_detection_and_config_inference_from_shapes():
    shapes = umt5_keys.expected_shapes(REAL)
    assert umt5_keys.detect_naming(shapes) == ("official", "")
    tf_keys = {umt5_keys.official_to_transformers(k): v for k, v in shapes.items()}
    assert umt5_keys.detect_naming(tf_keys) == ("transformers", "")
    names = umt5_keys.to_official_names(tf_keys, "transformers", "")
    assert umt5_keys.infer_config({names[k]: v for k, v in tf_keys.items()}) == REAL
    # a T5 v1.1 encoder (one shared position table in block 0) is not umT5
    t5 = {k: v for k, v in tf_keys.items()
          if "relative_attention_bias" not in k or ".block.0." in k}
    assert umt5_keys.detect_naming(t5) is None and umt5_keys.is_shared_bias_t5(t5)
    with pytest.raises(CheckpointError, match="T5 v1.1"):
        load_umt5_model({k: torch.zeros(1) for k in t5})
    with pytest.raises(CheckpointError, match="not a umT5"):
        load_umt5_model({"foo.weight": torch.zeros(2)})


def test_relative_position_buckets_by_hand():
    b = relative_position_buckets(1, 1200, 32, 128)[0]  # key offsets 0..1199 from query 0
    rel = relative_position_buckets(1200, 1, 32, 128)[:, 0]  # keys before the query
    assert [int(b[d]) for d in range(8)] == [0] + [16 + d for d in range(1, 8)]
    assert [int(rel[d]) for d in range(8)] == list(range(8))
    # d = 20: 8 + floor(ln(20/8) / ln(128/8) * 8) = 8 + floor(2.64) = 10
    assert int(rel[20]) == 10 and int(b[20]) == 16 + 10
    assert int(rel[100]) == 8 + int(math.log(100 / 8) / math.log(16) * 8)
    assert int(rel[127]) == 15 and int(rel[1000]) == 15 and int(b[1199]) == 31


# --------------------------------------------------------------------------- tokenizer


def test_tokenizer_sources_give_the_same_ids(tmp_path, spiece):
    (tmp_path / "json").mkdir()
    (tmp_path / "json" / "tokenizer.json").write_text(spiece_to_tokenizer_json(spiece), encoding="utf-8")
    (tmp_path / "sp").mkdir()
    (tmp_path / "sp" / "spiece.model").write_bytes(spiece)
    from_json = UMT5Tokenizer.load(str(tmp_path / "json"))
    from_sp = UMT5Tokenizer.load(str(tmp_path / "sp"))
    from_tensor = UMT5Tokenizer.from_tensor(torch.frombuffer(bytearray(spiece), dtype=torch.uint8))
    assert from_json.vocab_size == from_sp.vocab_size == from_tensor.vocab_size <= 256
    texts = ["A red fox runs across a snowy field.", "Ｆｕｌｌ width text, ﬁ and 12345 ü",
             "unknown 色调艳丽 words qzxj", "", P.NEGATIVE_PROMPT_V2]
    for t in texts:
        ids = from_sp.encode(t)
        assert from_json.encode(t) == ids and from_tensor.encode(t) == ids, t
    ids, mask = from_json(texts, 64)
    assert ids.shape == mask.shape == (5, 64) and ids.dtype == torch.long
    assert torch.equal(ids, from_sp(texts, 64)[0])
    assert ids[3, 0] == EOS_ID and mask[3].sum() == 1  # empty text: EOS only
    n = int(mask[0].sum())
    assert ids[0, n - 1] == EOS_ID and (ids[0, n:] == PAD_ID).all() and (mask[0, n:] == 0).all()


def test_demo_spiece_is_deterministic_with_umt5_special_ids(spiece):
    assert build_demo_spiece(256) == spiece
    import sentencepiece

    sp = sentencepiece.SentencePieceProcessor(model_proto=spiece)
    assert (sp.pad_id(), sp.eos_id(), sp.unk_id(), sp.bos_id()) == (0, 1, 2, -1)
    assert sp.get_piece_size() == 256


def test_truncation_keeps_eos(spiece):
    tok = UMT5Tokenizer.from_spiece_bytes(spiece)
    long = " ".join(["river"] * 700)
    ids, mask = tok([long, "short"], 512)
    assert mask[0].sum() == 512 and ids[0, 511] == EOS_ID and ids[0, 510] != EOS_ID
    assert mask[1].sum() < 10


# --------------------------------------------------------------------------- prompts


def test_clean_prompt_like_the_official_pipeline():
    assert P.clean_prompt("  A &amp;amp; B\u00a0\u3000 caf\u00c3\u00a9 \n\t x ") == "A & B café x"
    assert P.clean_prompt("&lt;b&gt;bold&lt;/b&gt;   text") == "<b>bold</b> text"
    assert P.clean_prompt("") == ""
    # ftfy folds full-width punctuation of the Chinese negative prompt, as the official code does
    assert P.clean_prompt(P.NEGATIVE_PROMPT_V2_DF).startswith("色调艳丽,过曝,静态")
    with pytest.raises(TypeError):
        P.clean_prompt(None)


def test_default_negative_prompts():
    assert P.default_negative_prompt("t2v") == P.default_negative_prompt("i2v") == P.NEGATIVE_PROMPT_V2
    assert P.NEGATIVE_PROMPT_V2.startswith("Bright tones, overexposed") and P.NEGATIVE_PROMPT_V2.endswith(
        "walking backwards")
    assert P.NEGATIVE_PROMPT_V2.count(",") == 27  # 28 items, as in the Chinese DF prompt
    df = P.default_negative_prompt("df")
    assert df.startswith("色调艳丽，过曝") and df.endswith("背景人很多，倒着走") and df.count("，") == 27
    assert P.default_negative_prompt("none") == ""
    with pytest.raises(ValueError):
        P.default_negative_prompt("x")


# --------------------------------------------------------------------------- loading and encoding


def comfy_file(tmp_path, spiece, sd):
    tf = to_transformers(sd)
    tf["encoder.embed_tokens.weight"] = tf["shared.weight"]
    tf["decoder.block.0.layer.0.SelfAttention.q.weight"] = torch.zeros(4, 4)  # ignored
    out = scaled_fp8(tf)
    out["spiece_model"] = torch.frombuffer(bytearray(spiece), dtype=torch.uint8).clone()
    path = str(tmp_path / "umt5_xxl_fp8_e4m3fn_scaled.safetensors")
    save_file({k: v.contiguous() for k, v in out.items()}, path)
    return path


def test_comfy_scaled_fp8_file_with_embedded_tokenizer(tmp_path, spiece):
    sd = tiny_official()
    path = comfy_file(tmp_path, spiece, sd)
    enc = load_umt5(path)
    assert enc.config == TINY
    assert enc.model.blocks[0].attn.q.weight.dtype == torch.float8_e4m3fn
    assert enc.model.blocks[0].attn.q.scale_weight is not None
    assert "embedded" in enc.tokenizer.source
    from skyreels_pack.models.loading.checkpoint import TensorSource

    assert detect(TensorSource([path])) == ("transformers", "")

    prompts = ["A red fox runs across a snowy field at sunrise.", "  Two   swans &amp; reeds  "]
    ctx = enc.encode(prompts)
    assert ctx.shape == (2, 512, TINY.dim) and ctx.dtype == torch.float32
    ids, mask = enc.tokenize(prompts)
    assert (ctx[mask == 0] == 0).all() and (ctx[mask == 1].abs().sum(-1) > 0).all()

    # the same weights dequantized, official naming, fp32: the reference
    ref_sd = {}
    for k, v in sd.items():
        tk = umt5_keys.official_to_transformers(k)
        from safetensors import safe_open

        with safe_open(path, "pt") as f:
            t = f.get_tensor(tk).float()
            if tk[: -len(".weight")] + ".scale_weight" in f.keys():
                t = t * f.get_tensor(tk[: -len(".weight")] + ".scale_weight").float()
        ref_sd[k] = t
    ref, _ = load_umt5_model(ref_sd, weight_dtype="fp32")
    want = P.encode_token_ids(ref, ids, mask)
    torch.testing.assert_close(ctx, want, atol=1e-5, rtol=1e-5)


def test_tokenizer_found_beside_or_above_the_weights(tmp_path, spiece):
    sd = tiny_official()
    # official layout: google/umt5-xxl/ beside the .pth
    root = tmp_path / "SkyReels-V2-T2V"
    (root / "google" / "umt5-xxl").mkdir(parents=True)
    (root / "google" / "umt5-xxl" / "spiece.model").write_bytes(spiece)
    torch.save({k: v.to(torch.bfloat16) for k, v in sd.items()}, str(root / "models_t5_umt5-xxl-enc-bf16.pth"))
    enc = load_umt5(str(root))
    assert enc.tokenizer.source.endswith("spiece.model") and enc.config == TINY
    assert enc.model.blocks[1].ffn.fc2.weight.dtype == torch.bfloat16  # "auto" keeps the narrower bf16
    # diffusers layout: text_encoder/ shards + tokenizer/ with tokenizer.json
    pipe = tmp_path / "pipe"
    (pipe / "text_encoder").mkdir(parents=True)
    (pipe / "tokenizer").mkdir()
    (pipe / "tokenizer" / "tokenizer.json").write_text(spiece_to_tokenizer_json(spiece), encoding="utf-8")
    save_file(to_transformers(sd), str(pipe / "text_encoder" / "model.safetensors"))
    enc2 = load_umt5(str(pipe / "text_encoder"))
    assert enc2.tokenizer.source.endswith("tokenizer.json")
    torch.testing.assert_close(enc2.encode(["a fox"]), load_umt5(str(pipe)).encode(["a fox"]), atol=0, rtol=0)
    # nothing anywhere: a clear error
    lone = tmp_path / "lone"
    lone.mkdir()
    save_file(to_transformers(sd), str(lone / "umt5.safetensors"))
    with pytest.raises(TokenizerError, match="tokenizer_path"):
        load_umt5(str(lone / "umt5.safetensors"))
    explicit = load_umt5(str(lone / "umt5.safetensors"), tokenizer_path=str(pipe / "tokenizer"))
    assert explicit.tokenizer.vocab_size == 256


def test_padding_trimming_and_truncation(spiece):
    sd = tiny_official()
    model, _ = load_umt5_model(sd, weight_dtype="fp32")
    tok = UMT5Tokenizer.from_spiece_bytes(spiece)
    long = " ".join(["A waterfall pours into a turquoise pool."] * 120)
    ids, mask = P.tokenize_prompts(tok, ["a cat", long, "two children fly a kite"])
    assert ids.shape == (3, 512) and mask[1].sum() == 512 and ids[1, -1] == EOS_ID
    short_ids, short_mask = ids[[0, 2]], mask[[0, 2]]
    trimmed = P.encode_token_ids(model, short_ids, short_mask, trim=True)
    full = P.encode_token_ids(model, short_ids, short_mask, trim=False)
    assert trimmed.shape == full.shape == (2, 512, TINY.dim)
    torch.testing.assert_close(trimmed, full, atol=2e-6, rtol=1e-5)
    assert (trimmed[short_mask == 0] == 0).all() and (full[short_mask == 0] == 0).all()
    # masked keys matter: without the mask the real rows change
    unmasked = model(short_ids, None)[:, :3]
    assert (unmasked - full[:, :3]).abs().max() > 1e-3
    ctx = P.encode_prompts(model, tok, ["a cat", long])
    assert ctx.shape == (2, 512, TINY.dim) and (ctx[1].abs().sum(-1) > 0).all()


def test_fp8_storage_error_is_bounded(spiece):
    sd = tiny_official()
    tok = UMT5Tokenizer.from_spiece_bytes(spiece)
    ids, mask = tok(["A red fox runs across a snowy field at sunrise.", "A cat on a windowsill."], 32)
    m32, _ = load_umt5_model(sd, weight_dtype="fp32")
    m8, _ = load_umt5_model(sd, weight_dtype="fp8_e4m3fn")
    assert m8.blocks[0].ffn.fc1.weight.dtype == torch.float8_e4m3fn
    assert m8.blocks[0].norm1.weight.dtype == torch.float32  # norms and tables stay full precision
    a = P.encode_token_ids(m32, ids, mask)
    b = P.encode_token_ids(m8, ids, mask)
    rel = ((a - b).norm() / a.norm()).item()
    assert 0 < rel < 0.08, rel


def test_bad_input_messages():
    model, _ = load_umt5_model(tiny_official(), weight_dtype="fp32")
    with pytest.raises(ValueError, match="token ids"):
        model(torch.tensor([[TINY.vocab]]), torch.tensor([[1]]))
    with pytest.raises(ValueError, match="batch, length"):
        model(torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="mask shape"):
        model(torch.tensor([[1, 2]]), torch.tensor([[1]]))


def test_a_foreign_tokenizer_is_skipped_in_the_search(tmp_path, spiece):
    """An XLM-R-style tokenizer (<s>=0, <pad>=1, </s>=2) nearer to the weights is not taken for umT5's."""
    import io

    import sentencepiece

    from skyreels_pack.models.text.tokenizer import DEMO_TEXT

    buf = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(DEMO_TEXT.splitlines()), model_writer=buf, vocab_size=100, bos_id=0, pad_id=1,
        eos_id=2, unk_id=3, num_threads=1, minloglevel=2)
    root = tmp_path / "models"
    (root / "text_encoders" / "tokenizer").mkdir(parents=True)
    (root / "text_encoders" / "tokenizer" / "spiece.model").write_bytes(buf.getvalue())
    save_file(to_transformers(tiny_official()), str(root / "text_encoders" / "umt5.safetensors"))
    with pytest.raises(TokenizerError, match="not umT5's"):
        load_umt5(str(root / "text_encoders" / "umt5.safetensors"))
    (root / "google" / "umt5-xxl").mkdir(parents=True)
    (root / "google" / "umt5-xxl" / "spiece.model").write_bytes(spiece)
    enc = load_umt5(str(root / "text_encoders" / "umt5.safetensors"))
    assert enc.tokenizer.source == str(root / "google" / "umt5-xxl" / "spiece.model")
    assert enc.tokenizer.is_umt5_like()
