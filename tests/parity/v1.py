"""Golden runners for SkyReels-V1 (HunyuanVideo): DiT, VAE, text encoders, sampling loop."""
import torch

from skyreels_pack.models.hunyuan.dit_config import HunyuanDiTConfig
from skyreels_pack.models.hunyuan.dit_loader import load_hunyuan_dit
from skyreels_pack.models.hunyuan.vae import HunyuanVAEConfig, OfficialTiling
from skyreels_pack.models.hunyuan.vae_loader import load_hunyuan_vae


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


def _vae(case):
    declared = HunyuanVAEConfig.from_diffusers(case.config)
    model, cfg = load_hunyuan_vae(case.weights, dtype=torch.float32, config=declared)
    p = case.params
    assert cfg.scaling_factor == p["scaling_factor"]
    model.tiling = OfficialTiling(
        use_tiling=p["use_tiling"], framewise=p["use_framewise_decoding"], sample_min=p["tile_sample_min_width"],
        sample_stride=p["tile_sample_stride_width"], sample_min_frames=p["tile_sample_min_num_frames"],
        sample_stride_frames=p["tile_sample_stride_num_frames"])
    assert p["tile_sample_min_height"] == p["tile_sample_min_width"]
    return model


def run_vae_encode(case):
    model = _vae(case)
    mean, logvar = model.posterior(model.encode_moments(case.inputs["video"]))
    sample = model.sample(mean, logvar, case.inputs["noise"])
    return {"mean": mean, "logvar": logvar, "sample": sample, "image_latents": model.scale(sample)}


def run_vae_decode(case):
    model = _vae(case)
    return {"video": model.decode(model.unscale(case.inputs["latents"]))}


FAMILY = "v1"

RUNNERS = {
    "hunyuan_dit_t2v": run_dit,
    "hunyuan_dit_i2v": run_dit,
    "hunyuan_vae_encode": run_vae_encode,
    "hunyuan_vae_decode": run_vae_decode,
}
