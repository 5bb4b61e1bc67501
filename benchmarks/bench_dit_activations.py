"""Peak activation memory of one Wan DiT forward at 14B widths: the code before the token
chunking against now, and the budget planner's estimate at 720P x 121 frames (+4 R2V
reference frames).

Each measured row is one forward pass in a fresh subprocess: the 14B block widths (dim 5120,
ffn 13824, 40 heads, 4096-wide text of 512 tokens) with ``--layers`` blocks, float32 on the
CPU (bf16 with CUDA), at ``--frames`` x ``--height`` x ``--width`` latents.  The metric is the
activation peak: on the CPU the process's peak RSS during the forward (VmHWM, reset through
``/proc/self/clear_refs`` just before it, glibc's mmap threshold lowered so that RSS follows
live memory) minus the RSS before it; with CUDA the max allocated memory minus the allocated
memory before it.  The weights are the constructor's random init under seed 0, the same in
every row, so the rows' outputs are compared too.

* ``before``: the pack as it was at ``--before`` (a git revision, unpacked with ``git archive``
  into a temporary folder; skipped without git);
* ``now``: this checkout with its default ``TOKEN_CHUNK``;
* ``now, chunk N``: this checkout with ``TOKEN_CHUNK = --small-chunk``, so that the measured
  sequence is cut into as many chunks as 720P x 121 + 4 frames is with the default (9).

The estimate rows are ``memory.budget.activation_bytes`` of each version (bf16), for the 14B
R2V DiT at 720P (1280 x 720, 35 latent frames with the references: 126,000 tokens), and what
the planner makes of a 24 GB budget with bf16 weights.

    python benchmarks/bench_dit_activations.py             # ~5 min on 2 CPU cores
    python benchmarks/bench_dit_activations.py --layers 2 --frames 4 --height 90 --width 160   # on a GPU
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time

from bench_common import MALLOC_ENV, ROOT, current_rss, machine_line, peak_hwm

BEFORE = "518c5e8"  # the last commit before the token chunking of the Wan blocks
DIM, FFN, HEADS, TEXT_DIM, TEXT_LEN = 5120, 13824, 40, 4096, 512


def _load(root: str):
    spec = importlib.util.spec_from_file_location("_skyreels_main", os.path.join(root, "__main__.py"))
    main = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(main)
    return main.load_pack(root)


def _config(layers: int, image: bool = False):
    from skyreels_pack.models.wan.dit_config import WanDiTConfig

    return WanDiTConfig(dim=DIM, ffn_dim=FFN, num_heads=HEADS, num_layers=layers, text_dim=TEXT_DIM,
                        text_len=TEXT_LEN, in_dim=36 if image else 16, image_dim=1280 if image else None)


def estimates(args) -> dict:
    """activation_bytes() of this pack: at the measured shape and at 720P R2V, plus the 24 GB plan."""
    import torch

    from skyreels_pack.memory import budget, offload
    from skyreels_pack.models.refs import r2v
    from skyreels_pack.models.wan.dit import WanDiT

    h, w = r2v.bucket_size("720P", 16, 9)
    shape_720 = ((r2v.FRAMES - 1) // 4 + 1 + r2v.MAX_REFS, h // 8, w // 8)
    cfg = _config(40)
    with torch.device("meta"):
        model = WanDiT(cfg).to(torch.bfloat16)
    sizes = offload.estimate_bytes(model)
    act_720 = budget.activation_bytes(cfg, shape_720, compute_dtype=torch.bfloat16)
    plan = budget.plan_residency(sizes["per_block"], sizes["rest"], act_720, 24)
    cuda = torch.cuda.is_available()
    measured = budget.activation_bytes(_config(args.layers), (args.frames, args.height, args.width),
                                       compute_dtype=torch.bfloat16 if cuda else torch.float32)
    return dict(est_720=act_720, shape_720=list(shape_720), resident_24=len(plan.resident), fits_24=plan.fits,
                peak_24=plan.peak, est_measured=measured)


def child(args) -> dict:
    import torch

    _load(args.root)
    from skyreels_pack import host
    from skyreels_pack.models.wan import dit as wan_dit

    host.set_quiet(True)
    torch.set_num_threads(args.threads)
    if args.chunk and hasattr(wan_dit, "TOKEN_CHUNK"):
        wan_dit.TOKEN_CHUNK = args.chunk
    row = estimates(args)
    cuda = torch.cuda.is_available()
    device, dtype = (torch.device("cuda"), torch.bfloat16) if cuda else (torch.device("cpu"), torch.float32)
    torch.manual_seed(0)
    model = wan_dit.WanDiT(_config(args.layers)).to(device, dtype).eval().requires_grad_(False)
    model.compute_dtype = dtype
    g = torch.Generator().manual_seed(1)
    x = torch.randn(1, 16, args.frames, args.height, args.width, generator=g).to(device)
    ctx = (0.1 * torch.randn(1, TEXT_LEN, TEXT_DIM, generator=g)).to(device)
    t = torch.tensor([700.0], device=device)
    with torch.no_grad():
        model(x[:, :, :1, :8, :8], t, ctx)  # warm-up: kernels and allocator caches
        if cuda:
            torch.cuda.synchronize()
            base = torch.cuda.memory_allocated()
            torch.cuda.reset_peak_memory_stats()
        else:
            base = current_rss()
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # VmHWM := VmRSS
        t0 = time.monotonic()
        out = model(x, t, ctx)
        if cuda:
            torch.cuda.synchronize()
        seconds = time.monotonic() - t0
        peak = (torch.cuda.max_memory_allocated() if cuda else peak_hwm()) - base
    out_path = os.path.join(args.out_dir, "%s.pt" % args.tag)
    torch.save(out.float().cpu(), out_path)
    return dict(row, peak=peak, seconds=seconds, tokens=model.patch_grid(x)[0] * (args.height // 2) * (args.width // 2),
                device=str(device), out=out_path)


def _run(args, tag: str, root: str, chunk: int) -> dict:
    argv = [sys.executable, os.path.abspath(__file__), "--child", "--tag", tag, "--root", root, "--chunk", str(chunk)]
    for k in ("layers", "frames", "height", "width", "threads", "out_dir"):
        argv += ["--" + k.replace("_", "-"), str(getattr(args, k))]
    proc = subprocess.run(argv, capture_output=True, text=True, env=dict(os.environ, **MALLOC_ENV))
    for line in reversed(proc.stdout.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError("the %s run failed:\n%s" % (tag, proc.stderr[-3000:]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layers", type=int, default=1)
    ap.add_argument("--frames", type=int, default=8, help="latent frames")
    ap.add_argument("--height", type=int, default=64, help="latent rows (tokens per frame = height/2 x width/2)")
    ap.add_argument("--width", type=int, default=64, help="latent columns")
    ap.add_argument("--small-chunk", type=int, default=1024, help="TOKEN_CHUNK of the third row")
    ap.add_argument("--before", default=BEFORE, help="git revision of the 'before' rows ('' to skip)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--tag", default="", help=argparse.SUPPRESS)
    ap.add_argument("--root", default=ROOT, help=argparse.SUPPRESS)
    ap.add_argument("--chunk", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--out-dir", default="", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args)))
        return 0

    import torch

    with tempfile.TemporaryDirectory() as tmp:
        args.out_dir = tmp
        runs = []
        if args.before:
            old = os.path.join(tmp, "before")
            os.makedirs(old)
            archive = subprocess.run("git -C %s archive %s | tar -x -C %s" % (ROOT, args.before, old), shell=True,
                                     capture_output=True, text=True)
            if archive.returncode == 0:
                runs.append(("before (%s)" % args.before, _run(args, "before", old, 0)))
            else:
                print("before rows skipped: %s" % archive.stderr.strip()[:200])
        runs.append(("now", _run(args, "now", ROOT, 0)))
        runs.append(("now, chunk %d" % args.small_chunk, _run(args, "small", ROOT, args.small_chunk)))
        outs = {name: torch.load(r["out"]) for name, r in runs}

    first = runs[0][1]
    print("Wan DiT activation peak: %s" % machine_line("cuda" if first["device"].startswith("cuda") else "cpu"))
    print("14B widths (dim %d, ffn %d, %d heads), %d layer(s), latent %dx%dx%d = %d tokens, %s, %d thread(s)"
          % (DIM, FFN, HEADS, args.layers, args.frames, args.height, args.width, first["tokens"],
             "bf16" if first["device"].startswith("cuda") else "fp32", args.threads))
    ref = outs[runs[0][0]]
    print("| code | activation peak (measured) | estimate, same shape | seconds | max abs diff vs first row |")
    print("|---|---|---|---|---|")
    for name, r in runs:
        diff = float((outs[name] - ref).abs().max())
        print("| %s | %.2f GB | %.2f GB | %.1f | %.1e |" % (name, r["peak"] / 2**30, r["est_measured"] / 2**30,
                                                          r["seconds"], diff))
    s = first["shape_720"]
    print()
    print("Planner estimate, SkyReels-V3 R2V 14B at 720P x 121 frames + 4 reference frames "
          "(latent %dx%dx%d, %d tokens), bf16:" % (s[0], s[1], s[2], s[0] * s[1] * s[2] // 4))
    print("| code | activations | 24 GB budget, bf16 weights |")
    print("|---|---|---|")
    for name, r in runs[:-1]:
        print("| %s | %.2f GB | %d/40 blocks resident, peak %.1f GB%s |"
              % (name, r["est_720"] / 2**30, r["resident_24"], r["peak_24"] / 2**30,
                 "" if r["fits_24"] else " (does not fit)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
