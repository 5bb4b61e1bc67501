"""The DiT loader on every layout people have, written to disk in the real formats."""
import json

import pytest
import torch
from safetensors.torch import save_file

from skyreels_pack.cli.demo.common import randomize as _randomize
from skyreels_pack.models.loading.checkpoint import CheckpointError
from skyreels_pack.models.wan import dit_keys
from skyreels_pack.models.wan.dit import WanDiT
from skyreels_pack.models.wan.dit_config import WanDiTConfig
from skyreels_pack.models.wan.dit_loader import load_wan_dit

CFG = WanDiTConfig(dim=128, ffn_dim=256, num_heads=1, num_layers=2, text_dim=32, inject_sample_info=True,
                   variant="df")


@pytest.fixture(scope="module")
def reference():
    model = WanDiT(CFG)
    sd = _randomize(model, 7)
    model.load_state_dict(sd)
    x = torch.randn(1, 16, 3, 4, 6)
    t = torch.tensor([[900.0, 500.0, 100.0]])
    ctx = torch.randn(1, 20, 32)
    with torch.no_grad():
        out = model(x, t, ctx, fps=0)
    return sd, (x, t, ctx), out


def _check(model, reference, atol=1e-5):
    _, (x, t, ctx), out = reference
    with torch.no_grad():
        got = model(x, t, ctx, fps=0)
    assert torch.allclose(got, out, atol=atol), (got - out).abs().max()


def test_diffusers_pipeline_folder_with_shards(tmp_path, reference):
    sd = reference[0]
    tdir = tmp_path / "SkyReels-V2-DF-1.3B-540P-Diffusers" / "transformer"
    tdir.mkdir(parents=True)
    dsd = {dit_keys.official_to_diffusers(k): v for k, v in sd.items()}
    keys = sorted(dsd)
    wm = {}
    for i, part in enumerate((keys[: len(keys) // 2], keys[len(keys) // 2:])):
        name = "diffusion_pytorch_model-%05d-of-00002.safetensors" % (i + 1)
        save_file({k: dsd[k] for k in part}, str(tdir / name))
        wm.update({k: name for k in part})
    (tdir / "diffusion_pytorch_model.safetensors.index.json").write_text(json.dumps({"weight_map": wm}))
    (tdir / "config.json").write_text(json.dumps({"_class_name": "SkyReelsV2Transformer3DModel",
                                                  "num_attention_heads": 1, "attention_head_dim": 128,
                                                  "in_channels": 16, "out_channels": 16, "text_dim": 32,
                                                  "ffn_dim": 256, "num_layers": 2, "inject_sample_info": True}))
    model, cfg = load_wan_dit(str(tdir.parent))
    assert (cfg.variant, cfg.num_heads, cfg.inject_sample_info) == ("df", 1, True)
    _check(model, reference)


def test_pth_and_comfy_prefix_files(tmp_path, reference):
    sd = reference[0]
    p = tmp_path / "dit.pth"
    torch.save(sd, str(p))
    model, cfg = load_wan_dit(str(p), variant="df")
    _check(model, reference)
    c = tmp_path / "comfy.safetensors"
    save_file({"model.diffusion_model." + k: v.to(torch.bfloat16) for k, v in sd.items()}, str(c))
    model, _ = load_wan_dit(str(c), weight_dtype="auto")
    assert model.blocks[0].self_attn.q.weight.dtype == torch.bfloat16  # kept narrow, cast per layer
    _check(model, reference, atol=5e-2)


def test_wrong_file_and_missing_tensor_messages(tmp_path, reference):
    bad = tmp_path / "vae_by_mistake.safetensors"
    save_file({"encoder.conv1.weight": torch.zeros(8, 3, 3, 3, 3)}, str(bad))
    with pytest.raises(CheckpointError, match="not a Wan / SkyReels DiT.*found e.g. encoder.conv1.weight"):
        load_wan_dit(str(bad))
    sd = dict(reference[0])
    del sd["blocks.1.ffn.2.weight"]
    part = tmp_path / "partial.safetensors"
    save_file(sd, str(part))
    with pytest.raises(CheckpointError, match="Missing 1 tensors: blocks.1.ffn.2.weight"):
        load_wan_dit(str(part))


def test_variant_from_file_name(tmp_path):
    from skyreels_pack.models.wan.dit_loader import variant_from_name

    assert variant_from_name("Wan2_1-SkyReels-V2-DF-14B-540P_fp16.safetensors") == "df"
    assert variant_from_name("SkyReels-V2-I2V-14B-720P") == "i2v"
    assert variant_from_name("SkyReels-V2-T2V-14B-540P") == "t2v"
    assert variant_from_name("my_model.safetensors") is None
