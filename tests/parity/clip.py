"""Golden runner for the CLIP vision tower (official and transformers namings)."""
import torch

from skyreels_pack.models.vision.clip_loader import load_clip_vision_model
from skyreels_pack.models.vision.clip_vit import CLIPVisionConfig


def run_clip_vision(case):
    declared = CLIPVisionConfig.from_official(case.config)
    model, cfg = load_clip_vision_model(case.weights, weight_dtype="fp32", compute_dtype=torch.float32,
                                        num_heads=declared.num_heads)
    assert cfg == declared, "config inferred from the weights %s differs from the case's %s" % (cfg, declared)
    with torch.no_grad():
        tokens = model(case.inputs["pixels"], layer=-2)
    return {"tokens": tokens}


FAMILY = "wan"

RUNNERS = {"clip_vision": run_clip_vision}
