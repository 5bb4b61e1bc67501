"""Seconds per video and peak memory: the plain 30-step run with CFG against the step-distill
LoRA recipe (4 steps, no CFG), merged or on the fly, and on a Q4_K GGUF DiT.

    python benchmarks/bench_lora.py                       # CPU-sized T2V run, prints a table
    python benchmarks/bench_lora.py --config 14b --size 480p --frames 81 --budget 8 --device cuda

Every setting runs in a fresh subprocess (peak memory is its own: GPU max-allocated memory with
CUDA, else the process peak RSS, VmHWM; ``Δ RSS`` subtracts the RSS after the imports).  The time is
the whole denoising loop of one video (``sampling.video_sampler.sample_video``: every step,
both CFG branches where used), wall-clock and, on the CPU, the process CPU time, which the
ratio uses (one thread: it does not change when other processes share the cores); the VAE
decode is the same for every setting and is left out.
The DiT weights are bench_dit.py's (random, generated tensor by tensor from a seed per key);
the LoRA has rank ``--rank`` on every Linear layer of the blocks, seeded too.  Random weights
make noise, so this measures cost, not quality.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from bench_dit import CONFIGS, current_rss, load_pack, machine_line, make_source  # noqa: E402


def peak_rss() -> int:
    """This process image's peak RSS (VmHWM).  Unlike ru_maxrss it does not carry the parent's
    peak across fork + exec (the parent here has just written a GGUF file)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0

SIZES = {"bench": (256, 256), "480p": (832, 480), "540p": (960, 544)}

SETTINGS = {
    # name: (steps, cfg, shift, solver, grid, lora mode or None, gguf)
    "plain": (30, 6.0, 8.0, "unipc", "official", None, False),
    "distill LoRA (merged)": (4, 1.0, 5.0, "lcm", "simple", "auto", False),
    "distill LoRA (on the fly)": (4, 1.0, 5.0, "lcm", "simple", "on_the_fly", False),
    "GGUF Q4_K plain": (30, 6.0, 8.0, "unipc", "official", None, True),
    "GGUF Q4_K + distill LoRA": (4, 1.0, 5.0, "lcm", "simple", "auto", True),
}


def lora_state(cfg, rank, torch):
    """A ComfyUI-format LoRA (lora_down / lora_up) on every Linear layer of the blocks."""
    from skyreels_pack.models.wan import dit_keys

    out = {}
    for key, shape in dit_keys.expected_shapes(cfg).items():
        if key.startswith("blocks.") and key.endswith(".weight") and len(shape) == 2 and "norm" not in key:
            g = torch.Generator().manual_seed(zlib.crc32(key.encode()) ^ 0x5EED)
            stem = "diffusion_model." + key[: -len(".weight")]
            out[stem + ".lora_down.weight"] = torch.randn(rank, shape[1], generator=g) / shape[1] ** 0.5
            out[stem + ".lora_up.weight"] = torch.randn(shape[0], rank, generator=g) * (0.1 / rank ** 0.5)
    return out


def write_gguf_dit(cfg, path, torch):
    """The benchmark weights as a Q4_K GGUF file, with the converter's choices for the rest."""
    from skyreels_pack.models.loading.gguf_writer import write_gguf

    source = make_source(cfg, torch)
    tensors = {k: source.get(k) for k in source.keys()}
    keep = ("modulation", "patch_embedding.", "text_embedding.", "time_projection.", "time_embedding.", "head.")
    write_gguf(path, tensors, "wan", lambda k, t: "F16" if any(s in k for s in keep) else "Q4_K",
               keep_full=(".modulation",))


def worker(spec: dict) -> dict:
    import torch

    rss_imports = current_rss()
    load_pack()
    from skyreels_pack import host
    from skyreels_pack.memory.offload import prepare_for_sampling, release
    from skyreels_pack.models.lora import apply_loras, lora_summary, read_lora, resolve
    from skyreels_pack.models.wan.dit_config import WanDiTConfig
    from skyreels_pack.models.wan.dit_loader import load_wan_dit
    from skyreels_pack.sampling.guidance import ModelInputs
    from skyreels_pack.sampling.video_sampler import SampleSettings, sample_video

    host.set_quiet(True)
    torch.set_num_threads(spec["threads"])
    device = torch.device(spec["device"])
    cuda = device.type == "cuda"
    compute = torch.bfloat16 if cuda else torch.float32
    cfg = WanDiTConfig(**spec["config"])
    steps, guidance, shift, solver, grid, lora_mode, gguf = SETTINGS[spec["setting"]]
    g = torch.Generator().manual_seed(1234)
    context = torch.randn(1, cfg.text_len, cfg.text_dim, generator=g)
    negative = torch.randn(1, cfg.text_len, cfg.text_dim, generator=g)
    rss_imports = max(rss_imports, current_rss())
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)

    if gguf:
        model, _ = load_wan_dit(spec["gguf"], compute_dtype=compute, device="cpu")
    else:
        model, _ = load_wan_dit(make_source(cfg, torch), config=cfg, weight_dtype="bf16" if cuda else "fp32",
                                compute_dtype=compute, device="cpu")
    if lora_mode:
        resolved = resolve(read_lora(lora_state(cfg, spec["rank"], torch)), model)
        apply_loras(model, [(resolved, 1.0)], mode=lora_mode)
    calls = []
    model.register_forward_pre_hook(lambda m, a: calls.append(1))
    f, h, w = spec["latent"]
    prepare_for_sampling(model, device, spec["budget"] or None, latent_shape=(f, h, w))
    settings = SampleSettings(steps=steps, cfg=guidance, shift=shift, seed=1, solver=solver, sigma_grid=grid)
    if cuda:
        torch.cuda.synchronize(device)
    t0, c0 = time.perf_counter(), time.process_time()
    z = sample_video(model, (1, 16, f, h, w), ModelInputs(context.to(device)), ModelInputs(negative.to(device)),
                     settings)
    if cuda:
        torch.cuda.synchronize(device)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    summary = lora_summary(model)
    release(model)
    out = {"seconds": seconds, "cpu": cpu, "forwards": len(calls), "finite": bool(torch.isfinite(z).all()),
           "peak": peak_rss(), "delta": peak_rss() - rss_imports, "lora": summary}
    if cuda:
        out["gpu_peak"] = torch.cuda.max_memory_allocated(device)
    return out


def run_worker(spec: dict, timeout: int) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", json.dumps(spec)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    for line in proc.stdout.splitlines()[::-1]:
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError("worker failed:\n" + proc.stderr[-3000:])


def gib(n) -> str:
    return "%.2f GB" % (n / 2 ** 30)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="bench", choices=sorted(CONFIGS))
    ap.add_argument("--size", default="bench", choices=sorted(SIZES))
    ap.add_argument("--frames", type=int, default=9, help="video frames, 4k+1 (default 9)")
    ap.add_argument("--rank", type=int, default=32, help="LoRA rank (lightx2v's: 32 / 64)")
    ap.add_argument("--budget", type=float, default=0.0, help="VRAM budget in GB (GPU only; 0 = none)")
    ap.add_argument("--device", default="cuda" if os.environ.get("CUDA_VISIBLE_DEVICES") else "cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--settings", default=",".join(SETTINGS), help="comma-separated subset of: " + ", ".join(SETTINGS))
    ap.add_argument("--timeout", type=int, default=7200)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))), flush=True)
        return 0

    import torch

    load_pack()
    from skyreels_pack.models.wan.dit_config import WanDiTConfig

    config = dict(CONFIGS[args.config], text_dim=4096, freq_dim=256, text_len=512)
    width, height = SIZES[args.size]
    latent = ((args.frames - 1) // 4 + 1, height // 8, width // 8)
    names = [s.strip() for s in args.settings.split(",") if s.strip()]
    tmp = tempfile.mkdtemp(prefix="bench_lora_")
    gguf_path = os.path.join(tmp, "dit-Q4_K.gguf")
    if any(SETTINGS[n][6] for n in names):
        write_gguf_dit(WanDiTConfig(**config), gguf_path, torch)
    print("# " + machine_line(args.device))
    print("# DiT dim %d, %d layers; video %dx%d, %d frames (latent %s); LoRA rank %d; %d thread(s); %s"
          % (config["dim"], config["num_layers"], width, height, args.frames, list(latent),
             args.rank, args.threads, "budget %g GB" % args.budget if args.budget else "no budget"))
    print()
    cpu_side = args.device != "cuda"
    print("| setting | steps | CFG | DiT passes | s / video | %s vs plain | peak %s | Δ RSS |"
          % ("CPU s / video | CPU time" if cpu_side else "time", "RSS" if cpu_side else "GPU"))
    print("| --- | --- | --- | --- | --- |%s --- | --- | --- |" % (" --- |" if cpu_side else ""))
    base = None
    for name in names:
        spec = dict(setting=name, config=config, latent=latent, rank=args.rank, budget=args.budget,
                    device=args.device, threads=args.threads, gguf=gguf_path)
        r = run_worker(spec, args.timeout)
        steps, guidance = SETTINGS[name][0], SETTINGS[name][1]
        measure = r["cpu"] if cpu_side else r["seconds"]  # CPU time: robust on a shared machine (1 thread)
        base = base or measure
        peak = r.get("gpu_peak", r["peak"])
        print("| %s | %d | %s | %d | %.1f |%s %.3fx | %s | %s |" % (
            name, steps, "yes (%g)" % guidance if guidance > 1 else "no", r["forwards"], r["seconds"],
            " %.1f |" % r["cpu"] if cpu_side else "", measure / base, gib(peak), gib(r["delta"])), flush=True)
        if not r["finite"]:
            print("  (non-finite output!)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
