"""VRAM plans of the 14B SkyReels-A2 and SkyReels-V3 R2V DiTs at their official sizes.

For each model, size and weight storage (bf16, fp8, int8) it prints what the budget planner
(``memory.budget.plan_residency``, the one the sampler uses) decides at 8 / 12 / 16 / 24 GB:
blocks kept on the GPU out of 40 and the planned peak.  The activation estimate counts the
4 reference frames R2V puts after the video on the time axis (the sampler passes F + 4).

Pure arithmetic on the released shapes: the models are built on the meta device (no memory,
no GPU), so this runs anywhere in a few seconds.  The peaks are the planner's estimates, not
measurements on a GPU.

    python benchmarks/bench_refs_memory.py
"""
from __future__ import annotations

import importlib.util
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUDGETS = (8, 12, 16, 24)


def _pack():
    spec = importlib.util.spec_from_file_location("_skyreels_main", os.path.join(ROOT, "__main__.py"))
    main = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(main)
    main.load_pack(ROOT)
    import skyreels_pack

    return skyreels_pack


def _model(pack, image: bool, storage: str):
    import torch

    WanDiT = pack.models.wan.dit.WanDiT
    WanDiTConfig = pack.models.wan.dit_config.WanDiTConfig
    fp8_eligible = pack.models.wan.dit_loader.fp8_eligible
    cfg = WanDiTConfig(dim=5120, ffn_dim=13824, num_heads=40, num_layers=40, in_dim=36 if image else 16,
                       image_dim=1280 if image else None)
    with torch.device("meta"):
        model = WanDiT(cfg).to(torch.bfloat16)
    if storage == "fp8_e4m3fn":
        for name, p in model.named_parameters():
            if fp8_eligible(name):
                p.data = p.data.to(torch.float8_e4m3fn)
    elif storage == "int8":
        pack.memory.quant.quantize_blocks(model, "int8")
    model.compute_dtype = torch.bfloat16
    return model


def main() -> int:
    import torch

    pack = _pack()
    import skyreels_pack.memory.budget as budget
    import skyreels_pack.memory.offload as offload
    import skyreels_pack.memory.quant  # noqa: F401
    import skyreels_pack.models.wan.dit_loader  # noqa: F401
    from skyreels_pack.memory.streamable import activations_of
    from skyreels_pack.models.refs import r2v

    GB = budget.GB
    rows = [("A2-14B", True, 832, 480, 81, 0)]
    for res in ("720P", "540P", "480P"):
        h, w = r2v.bucket_size(res, 16, 9)  # a landscape 16:9 first reference
        rows.append(("R2V-14B %s" % res, False, w, h, r2v.FRAMES, r2v.MAX_REFS))
    print("| model | video | latent seen by the DiT | weights | weights GB | activations GB (without refs) | "
          + " | ".join("%d GB budget" % b for b in BUDGETS) + " |")
    print("| --- | --- | --- | --- | --- | --- | " + " | ".join("---" for _ in BUDGETS) + " |")
    for storage in ("bf16", "fp8_e4m3fn", "int8"):
        models = {True: _model(pack, True, storage), False: _model(pack, False, storage)}
        for name, image, w, h, frames, refs in rows:
            model = models[image]
            f = (frames - 1) // 4 + 1
            shape = (f + refs, h // 8, w // 8)
            act = activations_of(model, shape, 1, torch.bfloat16)
            act_plain = activations_of(model, (f, h // 8, w // 8), 1, torch.bfloat16)
            sizes = offload.estimate_bytes(model)
            cells = []
            for b in BUDGETS:
                plan = budget.plan_residency(sizes["per_block"], sizes["rest"], act, b)
                cells.append("%d/40 resident, peak %.1f%s" % (len(plan.resident), plan.peak / GB,
                                                               "" if plan.fits else " (does not fit)"))
            print("| %s | %dx%d, %d frames | %d x %d x %d | %s | %.1f | %.2f (%.2f) | %s |" % (
                name, w, h, frames, shape[0], shape[1], shape[2], storage, sizes["total"] / GB, act / GB,
                act_plain / GB, " | ".join(cells)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
