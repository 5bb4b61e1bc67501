"""Golden runners for the Wan DiT kinds."""
import torch

from skyreels_pack.models.wan.dit_config import WanDiTConfig
from skyreels_pack.models.wan.dit_loader import load_wan_dit


def run_dit(case):
    cfg = WanDiTConfig.from_official(case.config)
    model, _ = load_wan_dit(case.weights, config=cfg, weight_dtype="fp32", compute_dtype=torch.float32)
    model.causal_block_size = case.config.get("causal_block_size")
    inp = case.inputs
    with torch.no_grad():
        out = model(inp["x"], inp["t"], inp["context"], clip_fea=inp.get("clip_fea"), y=inp.get("y"),
                    fps=inp.get("fps"))
    return {"out": out}


FAMILY = "wan"

RUNNERS = {"wan_dit_t2v": run_dit, "wan_dit_df": run_dit, "wan_dit_i2v": run_dit}
