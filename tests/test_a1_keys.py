"""The SkyReels-A1 key maps of ../shared/keys/a1 load on the meta device with nothing missing and
nothing unexpected, in every naming the files circulate in."""
import json
import os

import pytest
import torch

from skyreels_pack.models.cogvideox import keys as tkeys
from skyreels_pack.models.cogvideox import vae_loader
from skyreels_pack.models.cogvideox.config import CogVideoXConfig
from skyreels_pack.models.cogvideox.transformer import CogVideoXTransformer
from skyreels_pack.models.cogvideox.vae import CogVideoXVAE, CogVideoXVAEConfig, expected_shapes
from skyreels_pack.models.loading.checkpoint import TensorSource
from skyreels_pack.models.loading.materialize import check_keys, plan_keys

KEYS_DIR = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", "shared", "keys", "a1"))
with open(os.path.join(KEYS_DIR, "configs.json")) as f:
    CONFIGS = json.load(f)


def _listed(name):
    with open(os.path.join(KEYS_DIR, name)) as f:
        return {k: tuple(v) for k, v in json.load(f).items()}


def _meta_source(shapes):
    return TensorSource.from_dict({k: torch.empty(v, device="meta") for k, v in shapes.items()})


def test_every_a1_key_file_is_covered():
    files = sorted(f for f in os.listdir(KEYS_DIR) if f != "configs.json")
    assert files == ["cogvideox-vae.diffusers.json", "siglip-so400m-patch14-384.transformers.json",
                     "skyreels-a1-5b.transformer.diffusers.json"]


@pytest.mark.parametrize("prefix", ["", "model.diffusion_model.", "transformer."])
@pytest.mark.parametrize("with_config", [True, False])
def test_transformer_keys(prefix, with_config):
    entry = CONFIGS["skyreels-a1-5b.transformer"]
    listed = _listed("skyreels-a1-5b.transformer.diffusers.json")
    assert len(listed) == entry["n_keys"]
    shapes = {prefix + k: v for k, v in listed.items()}
    found = tkeys.detect_prefix(shapes)
    assert found == prefix
    names = tkeys.to_model_names(shapes, found)
    cfg = tkeys.infer_config({names[k]: v for k, v in shapes.items()}, entry["config"] if with_config else None)
    want = CogVideoXConfig.from_diffusers(entry["config"])
    assert cfg == want  # the learned table's size alone gives the release sample size
    assert (cfg.dim, cfg.num_layers, cfg.in_channels, cfg.face_embed_dim, cfg.face_tokens) == (3072, 42, 48, 1152, 729)
    with torch.device("meta"):
        model = CogVideoXTransformer(cfg)
    check_keys(model, plan_keys(shapes, names.get), _meta_source(shapes), "A1 transformer")
    assert tkeys.expected_shapes(cfg) == listed
    params = sum(t.numel() for t in model.state_dict().values())
    assert params == entry["n_params_incl_pos_embedding_buffer"]


def test_transformer_key_mismatch_is_reported():
    from skyreels_pack.models.loading.checkpoint import CheckpointError

    listed = _listed("skyreels-a1-5b.transformer.diffusers.json")
    cfg = CogVideoXConfig.from_diffusers(CONFIGS["skyreels-a1-5b.transformer"]["config"])
    shapes = dict(listed)
    del shapes["transformer_blocks.3.attn1.to_k.bias"]
    shapes["transformer_blocks.0.attn1.extra.weight"] = (4, 4)
    with torch.device("meta"):
        model = CogVideoXTransformer(cfg)
    with pytest.raises(CheckpointError) as e:
        check_keys(model, plan_keys(shapes, lambda k: k), _meta_source(shapes), "A1 transformer")
    assert "transformer_blocks.3.attn1.to_k.bias" in str(e.value) and "extra" in str(e.value)


@pytest.mark.parametrize("prefix", ["", "vae.", "first_stage_model."])
def test_vae_keys(prefix):
    entry = CONFIGS["cogvideox-vae"]
    listed = _listed("cogvideox-vae.diffusers.json")
    assert len(listed) == entry["n_keys"]
    shapes = {prefix + k: v for k, v in listed.items()}
    assert vae_loader.detect_prefix(shapes) == prefix
    bare = {k[len(prefix):]: v for k, v in shapes.items()}
    for file_config in (entry["config"], None):  # pose_guider/ and vae/ have the same keys
        cfg = vae_loader.infer_config(bare, file_config)
        assert cfg.block_out_channels == (128, 256, 256, 512) and cfg.layers_per_block == 3
        assert cfg.scaling_factor == 0.7
    cfg = CogVideoXVAEConfig.from_diffusers(entry["config"])
    assert expected_shapes(cfg) == listed
    with torch.device("meta"):
        model = CogVideoXVAE(cfg)
    check_keys(model, plan_keys(shapes, lambda k: k[len(prefix):]), _meta_source(shapes), "CogVideoX VAE")
    assert sum(t.numel() for t in model.state_dict().values()) == entry["n_params"]


@pytest.mark.parametrize("prefix", ["vision_model.", ""])
def test_siglip_keys(prefix):
    pytest.importorskip("transformers")
    from skyreels_pack.models.vision.siglip import plan_siglip
    from transformers import SiglipVisionModel

    entry = CONFIGS["siglip-so400m-patch14-384"]
    listed = _listed("siglip-so400m-patch14-384.transformers.json")
    assert len(listed) == entry["n_keys"]
    shapes = {prefix + k[len("vision_model."):]: v for k, v in listed.items()}
    source = _meta_source(shapes)
    for file_config in (dict(entry["config"], model_type="siglip_vision_model"), None):
        cfg, names = plan_siglip(source, file_config)
        for k, v in entry["config"].items():
            assert getattr(cfg, k) == v, k
        with torch.device("meta"):
            model = SiglipVisionModel(cfg)
        check_keys(model, plan_keys(shapes, names.get), source, "SigLIP")
        assert sum(t.numel() for t in model.state_dict().values()) == entry["n_params"]
