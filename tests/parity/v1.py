"""Golden runners for SkyReels-V1 (HunyuanVideo): DiT, VAE, text encoders, sampling loop."""
import torch

from skyreels_pack.models.hunyuan.dit_config import HunyuanDiTConfig
from skyreels_pack.models.hunyuan.dit_loader import load_hunyuan_dit


def run_dit(case):
    declared = HunyuanDiTConfig.from_diffusers(case.config)
    assert HunyuanDiTConfig.from_original(__import__("json").loads(case.meta["original_config"])) == declared
    model, cfg = load_hunyuan_dit(case.weights, weight_dtype="fp32", compute_dtype=torch.float32,
                                  axes_dim=declared.axes_dim)
    assert cfg == declared, "config inferred from the weights %s differs from the case's %s" % (cfg, declared)
    assert model.naming == case.weights_format
    assert cfg.variant == case.kind.rsplit("_", 1)[-1]
    inp = case.inputs
    with torch.no_grad():
        out = model(inp["x"], inp["timestep"], inp["encoder_hidden_states"], inp["pooled_projections"],
                    guidance=inp["guidance"], text_mask=inp["encoder_attention_mask"],
                    image_latents=inp.get("image_latents"))
    return {"out": out}


FAMILY = "v1"

RUNNERS = {
    "hunyuan_dit_t2v": run_dit,
    "hunyuan_dit_i2v": run_dit,
}
