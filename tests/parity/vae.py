"""Golden runners for the Wan VAE kinds (official and diffusers weight names)."""
import json

import torch

from skyreels_pack.models.wan.vae import WanVAEConfig
from skyreels_pack.models.wan.vae_loader import load_wan_vae


def _load(case):
    model, cfg = load_wan_vae(case.weights, dtype=torch.float32)
    assert cfg == WanVAEConfig.from_official(case.config), "inferred config %s != case config %s" % (cfg, case.config)
    for name in ("latents_mean", "latents_std"):
        stored = torch.tensor(json.loads(case.meta[name]), dtype=torch.float32)
        assert torch.equal(getattr(model, name), stored), "%s differs from the case's constants" % name
    return model


def run_encode(case):
    model = _load(case)
    mu = model.encode(case.inputs["video"])
    return {"mu": mu, "latent": model.normalize(mu)}


def run_decode(case):
    model = _load(case)
    raw = model.denormalize(case.inputs["latent"])
    return {"video": model.decode(raw), "video_raw": model.decode(raw, clamp=False)}


FAMILY = "wan"

RUNNERS = {"wan_vae_encode": run_encode, "wan_vae_decode": run_decode}
