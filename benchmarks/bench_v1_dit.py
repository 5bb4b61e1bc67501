"""The SkyReels-V1 (HunyuanVideo) DiT forward pass: ours beside diffusers' HunyuanVideoTransformer3DModel,
same configuration, same weights, same inputs, in one run.

    python benchmarks/bench_v1_dit.py                      # CPU-sized default (about 5 minutes on 2 cores)
    python benchmarks/bench_v1_dit.py --config 13b --width 960 --height 544 --frames 97 --repeat 1   # a GPU

Memory: each model runs once in a fresh subprocess, so its peak is its own: GPU max-allocated
memory when CUDA is present, else the process peak RSS and ``Δ RSS`` (the peak minus the RSS after
the imports, before any weight exists; both import diffusers).  Time: a third subprocess holds
both models and alternates their forwards (ours, diffusers, ours, ...), so a busy machine slows
both alike; on a CPU the process time of the fastest forward of each is compared.
The inputs are what the official pipeline gives the transformer: the text padded to 256 rows
with an attention mask (``--valid`` rows valid), the embedded guidance ×1000, one sample (the
official ``--sequence_batch`` CFG), the I2V model's 32 channels with ``--i2v``.  One warm-up
forward each, then ``--repeat`` timed forwards each.  The weights are random and
identical for both (generated tensor by tensor from a seed per original key; the diffusers
copy is split and swapped with ``dit_keys``); the script checks that the outputs agree.
"""
from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CONFIGS = {
    # real head size and text/pooled widths, half the width, few blocks: a 2-core CPU runs it in seconds
    "bench": dict(hidden_size=1536, num_heads=12, depth=2, depth_single_blocks=4),
    "13b": dict(hidden_size=3072, num_heads=24, depth=20, depth_single_blocks=40),
}


def load_pack():
    if "skyreels_pack" in sys.modules:
        return
    spec = importlib.util.spec_from_file_location("_skyreels_main", os.path.join(ROOT, "__main__.py"))
    main = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(main)
    main.load_pack(ROOT)


def current_rss() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def generate(key, shape, torch):
    g = torch.Generator().manual_seed(zlib.crc32(key.encode()))
    t = torch.randn(shape, generator=g)
    if "norm" in key and key.endswith("weight"):
        return 1 + 0.1 * t
    if key.endswith("weight") and len(shape) >= 2:
        fan_in = 1
        for s in shape[1:]:
            fan_in *= s
        return t / fan_in ** 0.5
    return 0.02 * t


def config_of(spec):
    from skyreels_pack.models.hunyuan.dit_config import HunyuanDiTConfig

    return HunyuanDiTConfig(in_channels=32 if spec["i2v"] else 16, **CONFIGS[spec["config"]])


def build_ours(spec, torch, device, dtype):
    from skyreels_pack.models.hunyuan import dit_keys
    from skyreels_pack.models.hunyuan.dit_loader import load_hunyuan_dit
    from skyreels_pack.models.loading.checkpoint import TensorSource

    cfg = config_of(spec)
    shapes = dit_keys.expected_shapes(cfg)

    class Generated(TensorSource):
        def __init__(self):
            self.files, self.metadata, self._handles = ["<generated>"], {}, [self]
            self._shape = {k: tuple(s) for k, s in shapes.items()}
            self._dtype = {k: torch.float32 for k in shapes}
            self._where = {k: 0 for k in shapes}

        def get(self, key):
            return generate(key, self._shape[key], torch)

    model, _ = load_hunyuan_dit(Generated(), weight_dtype="auto", compute_dtype=dtype, device=device,
                                config=cfg, attention="sdpa")
    return model


def build_diffusers(spec, torch, device, dtype):
    from diffusers import HunyuanVideoTransformer3DModel

    from skyreels_pack.models.hunyuan import dit_keys

    cfg = config_of(spec)
    with torch.device("meta"):
        model = HunyuanVideoTransformer3DModel(
            in_channels=cfg.in_channels, out_channels=cfg.out_channels, num_attention_heads=cfg.num_heads,
            attention_head_dim=cfg.head_dim, num_layers=cfg.depth, num_single_layers=cfg.depth_single_blocks,
            num_refiner_layers=cfg.depth_refiner, mlp_ratio=cfg.mlp_ratio, patch_size=2, patch_size_t=1,
            qk_norm="rms_norm", guidance_embeds=True, text_embed_dim=cfg.text_dim,
            pooled_projection_dim=cfg.pooled_dim, rope_theta=cfg.theta, rope_axes_dim=tuple(cfg.axes_dim))
    sd = {}
    for k, shape in dit_keys.expected_shapes(cfg).items():
        t = generate(k, shape, torch)
        if dit_keys.is_swapped(k):
            t = torch.cat([t[t.shape[0] // 2:], t[: t.shape[0] // 2]])
        parts = dit_keys.original_to_diffusers(k)
        d = cfg.hidden_size
        pieces = [t[:d], t[d:2 * d], t[2 * d:3 * d], t[3 * d:]] if len(parts) == 4 else list(t.chunk(len(parts)))
        for name, piece in zip(parts, pieces):
            sd[name] = piece.to(device, dtype).contiguous()
        del t
    model.load_state_dict(sd, assign=True, strict=True)
    del sd
    return model.eval().requires_grad_(False)


def inputs(spec, torch, device):
    cfg = config_of(spec)
    g = torch.Generator().manual_seed(0)
    f, h, w = (spec["frames"] - 1) // 4 + 1, spec["height"] // 8, spec["width"] // 8
    x = torch.randn(1, 16, f, h, w, generator=g)
    text = torch.randn(1, spec["text"], cfg.text_dim, generator=g)
    mask = torch.zeros(1, spec["text"], dtype=torch.int64)
    mask[:, :spec["valid"]] = 1
    out = dict(x=x, t=torch.tensor([989.899]), text=text, mask=mask,
               pooled=torch.randn(1, cfg.pooled_dim, generator=g), guidance=torch.tensor([1000.0]),
               image=torch.randn(1, 16, f, h, w, generator=g) if spec["i2v"] else None)
    return {k: (v.to(device) if v is not None else None) for k, v in out.items()}


def _runner(impl, spec, torch, device, dtype):
    """(model, run(inputs) -> output) for ``impl``."""
    if impl == "diffusers":
        model = build_diffusers(spec, torch, device, dtype)

        def run(i):
            x = i["x"] if i["image"] is None else torch.cat([i["x"], i["image"]], 1)
            return model(x.to(dtype), i["t"], i["text"].to(dtype), i["mask"], i["pooled"].to(dtype),
                         guidance=i["guidance"], return_dict=False)[0].float()
    else:
        model = build_ours(spec, torch, device, dtype)

        def run(i):
            return model(i["x"], i["t"], i["text"], i["pooled"], guidance=i["guidance"], text_mask=i["mask"],
                         image_latents=i["image"])
    return model, run


def _timed(run, inp, torch, cuda):
    if cuda:
        torch.cuda.synchronize()
    t0, c0 = time.perf_counter(), time.process_time()
    out = run(inp)
    if cuda:
        torch.cuda.synchronize()
    return out, time.perf_counter() - t0, time.process_time() - c0


def worker(spec: dict) -> dict:
    """mode "memory": one model in this fresh process, its peak memory and output.
    mode "time": both models in this process, forwards interleaved (ours, diffusers, ours, ...), so a
    busy machine slows both alike; the fastest of each counts."""
    import torch

    torch.set_num_threads(spec["threads"])
    load_pack()
    from skyreels_pack import host

    host.set_quiet(True)
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    dtype = torch.bfloat16 if cuda else torch.float32
    import diffusers  # noqa: F401  (imported before the baseline RSS: its size is not the model's)

    impls = ["ours", "diffusers"] if spec["mode"] == "time" else [spec["impl"]]
    rss0 = current_rss()
    runs = {impl: _runner(impl, spec, torch, device, dtype)[1] for impl in impls}
    inp = inputs(spec, torch, device)
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    res = {impl: {"seconds": [], "cpu_seconds": []} for impl in impls}
    with torch.no_grad():
        for impl in impls:
            out = runs[impl](inp)  # warm-up
        for _ in range(spec["repeat"] if spec["mode"] == "time" else 1):
            for impl in impls:
                out, wall, cpu = _timed(runs[impl], inp, torch, cuda)
                res[impl]["seconds"].append(wall)
                res[impl]["cpu_seconds"].append(cpu)
    if spec["mode"] == "memory":
        torch.save(out.cpu(), spec["out"])
        r = {"peak_rss": peak_rss(), "delta_rss": peak_rss() - rss0}
        if cuda:
            r["gpu_peak"] = torch.cuda.max_memory_allocated()
        return r
    return {impl: {k: min(v) for k, v in r.items()} for impl, r in res.items()}


def run_worker(spec: dict) -> dict:
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", json.dumps(spec)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError("%s (%s) failed:\n%s" % (spec["impl"], spec["mode"], proc.stderr[-3000:]))
    return json.loads(proc.stdout.strip().splitlines()[-1])


def gib(n: float) -> str:
    return "%.2f GB" % (n / (1 << 30))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", choices=sorted(CONFIGS), default="bench")
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--height", type=int, default=256)
    ap.add_argument("--frames", type=int, default=9)
    ap.add_argument("--text", type=int, default=256, help="text rows given (padded, as the official pipeline)")
    ap.add_argument("--valid", type=int, default=34, help="valid text rows (34 = the official negative prompt)")
    ap.add_argument("--i2v", action="store_true", help="the 32-channel image-to-video model")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0
    base = dict(config=args.config, width=args.width, height=args.height, frames=args.frames, text=args.text,
                valid=args.valid, i2v=args.i2v, repeat=args.repeat, threads=args.threads)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for impl in ("ours", "diffusers"):
            results[impl] = run_worker(dict(base, mode="memory", impl=impl, out=os.path.join(tmp, impl + ".pt")))
        timing = run_worker(dict(base, mode="time", impl="both"))
        for impl in results:
            results[impl].update(timing[impl])
        import torch

        a, b = torch.load(os.path.join(tmp, "ours.pt")), torch.load(os.path.join(tmp, "diffusers.pt"))
        rel = ((a - b).norm() / b.norm()).item()
    ours, ref = results["ours"], results["diffusers"]
    cfg = CONFIGS[args.config]
    f, h, w = (args.frames - 1) // 4 + 1, args.height // 8, args.width // 8
    print("SkyReels-V1 DiT forward, %s, config %s (width %d, %d heads, %d + %d blocks), %s, latent %dx%dx%d "
          "(%d image tokens), text %d rows of which %d valid, %d thread(s); %s, torch %s"
          % (datetime.date.today(), args.config, cfg["hidden_size"], cfg["num_heads"], cfg["depth"],
             cfg["depth_single_blocks"], "I2V" if args.i2v else "T2V", f, h, w, f * h * w // 4, args.text, args.valid,
             args.threads, platform.processor() or platform.machine(), torch.__version__))
    mem = "gpu_peak" if "gpu_peak" in ours else "delta_rss"
    print()
    # On a CPU the process time is the measure (wall time counts whatever else the machine runs).
    key = "seconds" if mem == "gpu_peak" else "cpu_seconds"
    print("| model | s/forward (wall) | s/forward (CPU) | peak RSS | %s |" % ("GPU peak" if mem == "gpu_peak" else "Δ RSS"))
    print("| --- | --- | --- | --- | --- |")
    for name, r in (("ours", ours), ("diffusers", ref)):
        print("| %s | %.3f | %.3f | %s | %s |" % (name, r["seconds"], r["cpu_seconds"], gib(r["peak_rss"]),
                                               gib(r[mem])))
    print()
    print("ours / diffusers: %.3fx the time (%s), %.3fx the peak memory (%s); outputs differ by %.2e (relative L2)"
          % (ours[key] / ref[key], "wall" if key == "seconds" else "CPU", ours[mem] / ref[mem],
             "GPU" if mem == "gpu_peak" else "Δ RSS", rel))
    return 0


if __name__ == "__main__":
    sys.exit(main())
