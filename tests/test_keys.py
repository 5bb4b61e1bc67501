"""Every released DiT configuration of ../shared/keys: exact keys and shapes in both namings."""
import glob
import json
import os

import pytest

from key_maps import KeyMaps, meta_source
from skyreels_pack.models.loading.materialize import check_keys, plan_keys
from skyreels_pack.models.wan import dit_keys
from skyreels_pack.models.wan.dit import WanDiT
from skyreels_pack.models.wan.dit_config import WanDiTConfig

V2 = KeyMaps()
KEYS_DIR, CONFIGS = V2.dir, V2.configs


def _split(path):
    """("skyreels-v2-df-1.3b", "official") from ".../skyreels-v2-df-1.3b.official.json"."""
    model_name, naming, _ = os.path.basename(path).rsplit(".", 2)
    return model_name, naming


DIT_FILES = sorted(p for p in glob.glob(os.path.join(KEYS_DIR, "*.*.json"))
                   if _split(p)[0] in CONFIGS and not os.path.basename(p).startswith("vae"))


_meta_source = meta_source


def test_every_key_file_is_covered():
    names = {os.path.basename(p) for p in DIT_FILES}
    assert len(names) >= 13 and any(n.endswith(".diffusers.json") for n in names)


@pytest.mark.parametrize("path", DIT_FILES, ids=os.path.basename)
def test_released_config_keys_and_shapes(path):
    model_name, naming = _split(path)
    with open(path) as f:
        listed = {k: tuple(v) for k, v in json.load(f).items()}
    entry = CONFIGS[model_name]
    cfg = WanDiTConfig.from_official(entry["official_config"])
    if "diffusers_config" in entry:
        assert WanDiTConfig.from_diffusers(entry["diffusers_config"]).dim == cfg.dim
    mine = dit_keys.expected_shapes(cfg)  # built on the meta device
    if naming == "official":
        assert mine == listed
    else:
        assert {dit_keys.official_to_diffusers(k): s for k, s in mine.items()} == listed
    # detection, config inference and the loader's key plan on the listed names (and ComfyUI's prefix)
    for prefix in ("", "model.diffusion_model.") if naming == "official" else ("",):
        shapes = {prefix + k: v for k, v in listed.items()}
        found = dit_keys.detect_naming(shapes)
        assert found == (naming, prefix)
        names = dit_keys.to_official_names(shapes, naming, prefix)
        inferred = dit_keys.infer_config({names[k]: v for k, v in shapes.items()}, {"num_heads": cfg.num_heads})
        for field in ("dim", "ffn_dim", "num_layers", "in_dim", "out_dim", "text_dim", "image_dim",
                      "inject_sample_info", "image_pos_len"):
            assert getattr(inferred, field) == getattr(cfg, field), field
        import torch

        with torch.device("meta"):
            model = WanDiT(inferred)
        plan = plan_keys(shapes, lambda k: names.get(k))
        check_keys(model, plan, _meta_source(shapes), "Wan DiT")  # raises on anything missing/unexpected


def test_heads_default_to_head_dim_128():
    cfg = dit_keys.infer_config(dit_keys.expected_shapes(WanDiTConfig(dim=5120, ffn_dim=13824, num_heads=40,
                                                                        num_layers=2)))
    assert cfg.num_heads == 40 and cfg.head_dim == 128
