"""The released A2 and V3 R2V transformers (../shared/keys/refs) load on the meta device with nothing
missing and nothing unexpected, in every naming in circulation, and are told apart from T2V / I2V."""
import glob
import json
import os

import pytest
import torch

from skyreels_pack.models.loading.checkpoint import TensorSource
from skyreels_pack.models.loading.materialize import check_keys, plan_keys
from skyreels_pack.models.wan import dit_keys
from skyreels_pack.models.wan.dit import WanDiT
from skyreels_pack.models.wan.dit_config import WanDiTConfig
from skyreels_pack.models.wan.dit_loader import (config_from_source, reconcile_variant, variant_from_config,
                                                 variant_from_name)

KEYS_DIR = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", "shared", "keys", "refs"))
with open(os.path.join(KEYS_DIR, "configs.json")) as f:
    CONFIGS = json.load(f)
FILES = sorted(p for p in glob.glob(os.path.join(KEYS_DIR, "*.*.json")) if os.path.basename(p) != "configs.json")
VARIANT = {"skyreels-a2-14b": "a2", "skyreels-v3-r2v-14b": "r2v"}


def _listed(path):
    with open(path) as f:
        return {k: tuple(v) for k, v in json.load(f).items()}


def _namings(listed, model_name):
    """file keys -> shapes in every naming these checkpoints circulate in."""
    official = {dit_keys.diffusers_to_official(k): v for k, v in listed.items()}
    out = {
        "diffusers": dict(listed),                                               # the released folders
        "official": official,                                                    # converted to Wan names
        "comfyui": {"model.diffusion_model." + k: v for k, v in official.items()},  # ComfyUI repackaged
    }
    if model_name == "skyreels-a2-14b":  # A2 files may carry a query norm its class ignores
        extra = dict(listed)
        for i in range(40):
            extra["blocks.%d.attn2.norm_added_q.weight" % i] = (5120,)
        out["diffusers+norm_added_q"] = extra
    return out


def test_both_key_maps_are_here():
    assert {os.path.basename(p).split(".")[0] for p in FILES} == set(VARIANT)


@pytest.mark.parametrize("path", FILES, ids=os.path.basename)
def test_released_keys_load_in_every_naming(path):
    model_name = os.path.basename(path).split(".")[0]
    entry = CONFIGS[model_name]
    declared = WanDiTConfig.from_diffusers(entry["config"])
    listed = _listed(path)
    assert len(listed) == entry["n_keys"]
    with torch.device("meta"):
        mine = {dit_keys.official_to_diffusers(k): tuple(v.shape) for k, v in WanDiT(declared).state_dict().items()}
    assert mine == listed
    for naming, shapes in _namings(listed, model_name).items():
        source = TensorSource.from_dict({k: torch.empty(v, device="meta") for k, v in shapes.items()})
        found = dit_keys.detect_naming(shapes)
        assert found is not None, naming
        cfg, names = config_from_source(source, found[0], found[1], entry["config"])
        for field in ("dim", "num_heads", "ffn_dim", "num_layers", "in_dim", "out_dim", "text_dim", "image_dim"):
            assert getattr(cfg, field) == getattr(declared, field), (naming, field)
        assert reconcile_variant(cfg, VARIANT[model_name]) == VARIANT[model_name]
        with torch.device("meta"):
            model = WanDiT(cfg)
        plan = plan_keys(shapes, names.get)
        check_keys(model, plan, source, "Wan DiT")  # raises on anything missing / unexpected
        if naming == "diffusers+norm_added_q":
            assert len(plan.ignored) == 40 and all("norm_added_q" in k for k in plan.ignored)
        assert sum(v.numel() for v in model.state_dict().values()) == entry["n_params"]


def test_variants_from_names_and_configs(tmp_path):
    assert variant_from_name("/m/diffusion_models/SkyReels-A2") == "a2"
    assert variant_from_name("/m/SkyReels-A2/transformer") == "a2"
    assert variant_from_name("/m/SkyReels-A2/transformer/diffusion_pytorch_model-00001-of-00002.safetensors") == "a2"
    assert variant_from_name("/m/Skywork/SkyReels-V3-R2V-14B") == "r2v"
    assert variant_from_name("/m/SkyReels-V3-Reference2Video/transformer") == "r2v"
    assert variant_from_name("skyreels_v3_reference_to_video_fp8.safetensors") == "r2v"
    assert variant_from_name("/m/SkyReels-V2-I2V-14B-540P/transformer") == "i2v"
    assert variant_from_name("/m/my-folder/transformer") is None
    assert variant_from_name("/SkyReels-A2/elsewhere/model.safetensors") is None  # only generic names defer
    assert variant_from_config({"_class_name": "A2Model"}) == "a2"
    assert variant_from_config({"_class_name": "SkyReelsA2WanI2v3DModel"}) == "r2v"
    assert variant_from_config({"_class_name": "WanTransformer3DModel"}) is None
    (tmp_path / "pipe" / "transformer").mkdir(parents=True)
    (tmp_path / "pipe" / "model_index.json").write_text(json.dumps({"_class_name": "WanSkyReelsA2WanT2VPipeline"}))
    plain = {"_class_name": "WanTransformer3DModel"}
    assert variant_from_config(plain, str(tmp_path / "pipe" / "transformer")) == "r2v"
    assert variant_from_config(None, str(tmp_path / "pipe")) == "r2v"


def test_a_name_that_contradicts_the_tensors_is_not_trusted():
    t2v = WanDiTConfig(dim=64, ffn_dim=128, num_heads=2, num_layers=1)
    i2v = t2v.replace(in_dim=36, image_dim=32)
    assert reconcile_variant(t2v, "a2") == "t2v" and reconcile_variant(t2v, "r2v") == "r2v"
    assert reconcile_variant(i2v, "r2v") == "i2v" and reconcile_variant(i2v, "a2") == "a2"
    assert reconcile_variant(t2v.replace(inject_sample_info=True), "r2v") == "df"
    assert reconcile_variant(i2v, None) == "i2v"
