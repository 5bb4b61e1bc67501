"""SkyReels-V1 key maps (../shared/keys/v1): every released checkpoint, in every naming, loads onto
the model built on the meta device with nothing missing, nothing unexpected and the right shapes."""
import json
import os

import pytest
import torch

from skyreels_pack.models.hunyuan import dit_keys
from skyreels_pack.models.hunyuan.dit import HunyuanDiT
from skyreels_pack.models.hunyuan.dit_config import HunyuanDiTConfig
from skyreels_pack.models.hunyuan.dit_loader import config_from_source, detect, fp8_eligible, original_view
from skyreels_pack.models.loading.checkpoint import TensorSource
from skyreels_pack.models.loading.materialize import check_keys, plan_keys

KEYS_DIR = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", "shared", "keys", "v1"))
with open(os.path.join(KEYS_DIR, "configs.json")) as f:
    CONFIGS = json.load(f)


def _listed(name):
    with open(os.path.join(KEYS_DIR, name)) as f:
        return {k: tuple(v) for k, v in json.load(f).items()}


def _meta_source(shapes, dtype=torch.bfloat16):
    return TensorSource.from_dict({k: torch.empty(v, device="meta", dtype=dtype) for k, v in shapes.items()})


def test_every_key_file_is_covered():
    files = sorted(f for f in os.listdir(KEYS_DIR) if f.endswith(".json") and f != "configs.json")
    covered = {"%s.%s.json" % (m, n) for m in ("skyreels-v1-hunyuan-t2v", "skyreels-v1-hunyuan-i2v")
               for n in ("original", "diffusers")}
    covered |= {"hunyuan-vae.diffusers.json", "llava-llama3-8b-text.transformers.json",
                "llava-llama3-8b-text.comfy.json", "clip-l-text.transformers.json"}
    assert set(files) == covered, "key files without a test: %s" % sorted(set(files) - covered)


@pytest.mark.parametrize("model", ["skyreels-v1-hunyuan-t2v", "skyreels-v1-hunyuan-i2v"])
@pytest.mark.parametrize("naming", ["original", "diffusers"])
def test_dit_keys(model, naming):
    entry = CONFIGS[model]
    cfg = HunyuanDiTConfig.from_original(entry["original_config"])
    assert HunyuanDiTConfig.from_diffusers(entry["diffusers_config"]) == cfg
    listed = _listed("%s.%s.json" % (model, naming))
    assert len(listed) == entry["num_keys_%s" % naming]
    mine = dit_keys.expected_shapes(cfg)  # built on the meta device
    assert sum(torch.Size(s).numel() for s in mine.values()) == entry["num_params"]
    if naming == "original":
        assert mine == listed
    else:  # the mapping reproduces the diffusers key set, fused layers split in their row blocks
        mapped = {}
        for k, s in mine.items():
            parts = dit_keys.original_to_diffusers(k)
            rows = s[0] // 7 if len(parts) == 4 else s[0] // len(parts)  # linear1: D, D, D, 4D
            for i, p in enumerate(parts):
                mapped[p] = (4 * rows if (len(parts) == 4 and i == 3) else rows,) + s[1:]
        assert mapped == listed
    for prefix in ("", "model.diffusion_model.") if naming == "original" else ("",):
        source = _meta_source({prefix + k: v for k, v in listed.items()})
        assert detect(source) == (naming, prefix)
        view, names = original_view(source, naming, prefix)
        inferred = config_from_source(view, names, None)
        assert inferred == cfg and inferred.variant == model.rsplit("-", 1)[-1]
        with torch.device("meta"):
            net = HunyuanDiT(inferred)
        plan = plan_keys(view.keys(), names.get)
        check_keys(net, plan, view, "HunyuanVideo DiT")  # raises on anything missing, unexpected or misshapen
        assert not plan.ignored


def test_fp8_eligible_covers_the_block_linears():
    cfg = HunyuanDiTConfig.from_original(CONFIGS["skyreels-v1-hunyuan-t2v"]["original_config"])
    shapes = dit_keys.expected_shapes(cfg)
    fp8 = sum(torch.Size(s).numel() for k, s in shapes.items() if fp8_eligible(k))
    assert all(len(shapes[k]) == 2 for k in shapes if fp8_eligible(k))
    assert fp8 / sum(torch.Size(s).numel() for s in shapes.values()) > 0.97


@pytest.mark.parametrize("prefix", ["", "vae."])
def test_vae_keys(prefix):
    from skyreels_pack.models.hunyuan.vae import HunyuanVAE, HunyuanVAEConfig
    from skyreels_pack.models.hunyuan.vae_loader import detect as detect_vae, infer_config as infer_vae

    entry = CONFIGS["hunyuan-vae"]
    cfg = HunyuanVAEConfig.from_diffusers(entry["diffusers_config"])
    listed = _listed("hunyuan-vae.diffusers.json")
    assert len(listed) == entry["num_keys"]
    with torch.device("meta"):
        net = HunyuanVAE(cfg)
    mine = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    assert mine == listed
    assert sum(torch.Size(s).numel() for s in mine.values()) == entry["num_params"]
    source = _meta_source({prefix + k: v for k, v in listed.items()})
    assert detect_vae(source) == prefix
    assert infer_vae({k: v for k, v in listed.items()}) == cfg  # the released config from the shapes alone
    names = {k: k[len(prefix):] for k in source.keys()}
    plan = plan_keys(source.keys(), names.get)
    check_keys(net, plan, source, "HunyuanVideo VAE")


@pytest.mark.parametrize("naming", ["transformers", "comfy"])
def test_llama_keys(naming):
    from skyreels_pack.models.hunyuan import text_encoder as te

    listed = _listed("llava-llama3-8b-text.%s.json" % naming)
    source = _meta_source(listed)
    prefix = te.llama_prefix(source.keys())
    assert prefix == ("model." if naming == "comfy" else "")
    cfg = te.llama_config({k[len(prefix):]: v for k, v in listed.items()})
    assert (cfg.vocab_size, cfg.hidden_size, cfg.intermediate_size, cfg.num_hidden_layers) == (128320, 4096, 14336, 32)
    assert (cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim) == (32, 8, 128)
    keep = cfg.num_hidden_layers - te.LAYERS_SKIPPED
    with torch.device("meta"):
        net = te.build_llama(te.truncated_config(cfg, keep))
    plan = plan_keys(source.keys(), te.llama_key_map(prefix, keep))
    check_keys(net, plan, source, "Llama text encoder")
    # only the last two layers and the final norm are left unread (hidden_states[-3] never sees them)
    unread = {k[len(prefix):].split(".")[1] if k[len(prefix):].startswith("layers.") else k[len(prefix):]
              for k in plan.ignored}
    assert unread == {"30", "31", "norm.weight"}


def test_clip_l_keys():
    from skyreels_pack.models.hunyuan import text_encoder as te

    listed = _listed("clip-l-text.transformers.json")
    for prefix in ("", "clip_l."):
        source = _meta_source({prefix + k: v for k, v in listed.items()})
        assert te.clip_prefix(source.keys()) == prefix
        head = prefix + "text_model."
        cfg = te.clip_config({k[len(head):]: v for k, v in source.shapes().items() if k.startswith(head)})
        assert (cfg.vocab_size, cfg.hidden_size, cfg.num_hidden_layers, cfg.num_attention_heads,
                cfg.max_position_embeddings, cfg.hidden_act) == (49408, 768, 12, 12, 77, "quick_gelu")
        from transformers import CLIPTextModel

        with torch.device("meta"):
            net = CLIPTextModel(cfg)
        plan = plan_keys(source.keys(), te.clip_key_map(prefix, cfg))
        check_keys(net, plan, source, "CLIP-L text encoder")
        assert all(k.endswith(("text_projection.weight", "logit_scale", "position_ids")) for k in plan.ignored)
