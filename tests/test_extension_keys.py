"""The SkyReels-V3 video-extension transformers (transformer/ and shot_transformer/, the same
keys) as released: exact keys and shapes on the meta device, in the namings they circulate in
(official, ComfyUI / Kijai prefix, diffusers), and the repo layout with both subfolders."""
import json
import os

import pytest
import torch

from skyreels_pack.models.loading.checkpoint import TensorSource
from skyreels_pack.models.loading.materialize import check_keys, plan_keys
from skyreels_pack.models.wan import dit_keys
from skyreels_pack.models.wan.dit import WanDiT
from skyreels_pack.models.wan.dit_config import WanDiTConfig
from skyreels_pack.models.wan.dit_loader import load_wan_dit, variant_from_name

KEYS_DIR = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", "shared", "keys", "extension"))


def _released():
    with open(os.path.join(KEYS_DIR, "configs.json")) as f:
        entry = json.load(f)["skyreels-v3-v2v-14b"]
    with open(os.path.join(KEYS_DIR, entry["keys_file"])) as f:
        listed = {k: tuple(v) for k, v in json.load(f).items()}
    return entry, listed


@pytest.mark.parametrize("naming", ["official", "comfyui", "diffusers"])
def test_released_keys_load_on_the_meta_device(naming):
    entry, listed = _released()
    cfg = WanDiTConfig.from_official(entry["config"])
    assert (cfg.dim, cfg.num_layers, cfg.in_dim, cfg.image_dim) == (5120, 40, 16, None)
    assert dit_keys.expected_shapes(cfg) == listed
    if naming == "comfyui":
        shapes = {"model.diffusion_model." + k: v for k, v in listed.items()}
    elif naming == "diffusers":
        shapes = {dit_keys.official_to_diffusers(k): v for k, v in listed.items()}
    else:
        shapes = dict(listed)
    found = dit_keys.detect_naming(shapes)
    assert found is not None and found[0] == ("diffusers" if naming == "diffusers" else "official")
    names = dit_keys.to_official_names(shapes, *found)
    inferred = dit_keys.infer_config({names[k]: v for k, v in shapes.items()}, {"num_heads": 40})
    assert (inferred.dim, inferred.num_layers, inferred.ffn_dim, inferred.image_dim) == (5120, 40, 13824, None)
    with torch.device("meta"):
        model = WanDiT(inferred)
    source = TensorSource.from_dict({k: torch.empty(v, device="meta") for k, v in shapes.items()})
    check_keys(model, plan_keys(shapes, names.get), source, "Wan DiT")  # raises on missing / unexpected


def test_variants_from_the_repo_layout_and_file_names():
    assert variant_from_name("/models/SkyReels-V3-V2V-14B/transformer") == "v3_extend"
    assert variant_from_name("SkyReels-V3-V2V-14B/shot_transformer") == "v3_shot"
    assert variant_from_name("SkyReels-V3-V2V-14B") == "v3_extend"
    assert variant_from_name("skyreels_v3_extension_shot_fp8_e4m3fn.safetensors") == "v3_shot"
    assert variant_from_name("/models/other/transformer") is None
    assert variant_from_name("SkyReels-V2-DF-14B-540P") == "df"


def test_repo_folder_loads_the_transformer_the_variant_names(tmp_path):
    from skyreels_pack.cli.demo.extension import write_v3_extend, write_v3_shot
    from skyreels_pack.cli.shipped.extension import MODELS

    write_v3_extend(str(tmp_path))
    write_v3_shot(str(tmp_path))
    repo = tmp_path / "diffusion_models" / "SkyReels-V3-V2V-14B"
    shot, cfg = load_wan_dit(str(repo), variant="v3_shot")
    ext, cfg_e = load_wan_dit(str(repo), variant="v3_extend")
    assert (cfg.variant, cfg_e.variant) == ("v3_shot", "v3_extend")
    direct, cfg_d = load_wan_dit(str(tmp_path / "diffusion_models" / MODELS["v3_shot"][1]))  # auto: from the name
    assert cfg_d.variant == "v3_shot"
    w = "blocks.0.self_attn.q.weight"
    assert torch.equal(shot.state_dict()[w], direct.state_dict()[w])
    assert not torch.equal(shot.state_dict()[w], ext.state_dict()[w])
    sharded, cfg_s = load_wan_dit(str(tmp_path / "diffusion_models" / MODELS["v3_extend"][1]))
    assert cfg_s.variant == "v3_extend" and torch.equal(sharded.state_dict()[w], ext.state_dict()[w])
