"""Seconds per step and peak memory of the SkyReels / Wan DiT for each memory and speed setting,
side by side with diffusers' transformer at the same configuration and the same weights.

    python benchmarks/bench_dit.py                                   # CPU-sized default
    python benchmarks/bench_dit.py --config 1.3b --size 540p --frames 97 --steps 3

Every setting runs in a fresh subprocess, so its peak memory is its own: GPU max-allocated
memory when CUDA is present, else the process peak RSS (``Δ RSS`` subtracts the RSS after
the imports, before any weight exists).  A step is one denoising step with classifier-free
guidance: two forward passes (cond and uncond).  The first step is not timed (warm-up,
torch.compile's compilation); the others are, and with ``--repeat`` the best run counts.
The weights are random but identical for every setting and for diffusers (generated tensor
by tensor from a seed per key, official names mapped with ``dit_keys.official_to_diffusers``).
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

import bench_common
from bench_common import current_rss, load_pack, machine_line, peak_rss, run_json

CONFIGS = {
    # 1.3B widths, 2 layers: meaningful per-block work that a 2-core CPU runs in seconds.
    "bench": dict(dim=1536, ffn_dim=8960, num_heads=12, num_layers=2),
    "1.3b": dict(dim=1536, ffn_dim=8960, num_heads=12, num_layers=30),
    "14b": dict(dim=5120, ffn_dim=13824, num_heads=40, num_layers=40),
}
SIZES = {"540p": (960, 544), "720p": (1280, 720)}

OURS = ["baseline", "bf16", "fp8_e4m3fn", "fp8_e5m2", "int8", "nf4", "budget", "teacache", "compile"]


# --------------------------------------------------------------------------- worker


def _damp_time_embedding(key: str, t):
    """Damp the columns of the fast sinusoids so the time embedding moves by a few percent per
    step of a 30-step schedule, the range TeaCache's polynomials were fitted on (fully random
    weights move it ~90 % per step and TeaCache would see noise, not a schedule)."""
    if not key.endswith("time_embedding.0.weight"):
        return t
    import torch

    half = t.shape[1] // 2
    freqs = torch.pow(10000.0, -torch.arange(half, dtype=torch.float64) / half).float()
    damp = (1.0 / (freqs * 1000.0)).clamp(max=1.0) ** 2
    return t * torch.cat([damp, damp])


def generate(key: str, shape, torch):
    """The benchmark weight of ``key`` (bench_common.generate, the time embedding damped)."""
    return bench_common.generate(key, shape, torch, adjust=_damp_time_embedding)


def make_source(cfg, torch):
    """A TensorSource whose tensors are generated on demand, one at a time (no full fp32 copy
    exists when the loader stores bf16 or fp8)."""
    from skyreels_pack.models.wan import dit_keys

    return bench_common.generated_source(dit_keys.expected_shapes(cfg), lambda key, shape: generate(key, shape, torch))


def worker(spec: dict) -> dict:
    import torch

    rss_imports = current_rss()
    load_pack()
    from skyreels_pack import host
    from skyreels_pack.models.wan.dit_config import WanDiTConfig

    host.set_quiet(True)
    torch.set_num_threads(spec["threads"])
    setting = spec["setting"]
    device = torch.device(spec["device"])
    cuda = device.type == "cuda"
    compute = torch.bfloat16 if cuda else torch.float32
    cfg = WanDiTConfig(**spec["config"])
    f, h, w = spec["latent"]
    g = torch.Generator().manual_seed(1234)
    x = torch.randn(1, 16, f, h, w, generator=g)
    context = torch.randn(1, cfg.text_len, cfg.text_dim, generator=g)
    negative = torch.randn(1, cfg.text_len, cfg.text_dim, generator=g)
    rss_imports = max(rss_imports, current_rss())
    notes = []
    caches = (None, None)

    if setting == "diffusers":
        model, forward, notes = build_diffusers(cfg, device, compute, torch)
    else:
        model, forward, caches, notes = build_ours(cfg, spec, device, compute, torch)

    if cuda:
        torch.cuda.synchronize()
    x = x.to(device)
    steps = spec["steps"]
    sigmas = torch.linspace(1.0, 0.0, spec["schedule"] + 1)  # the first `steps` of this grid run
    times, first_out = [], None
    skipped_before = 0
    with torch.no_grad():
        for i in range(steps):
            t = torch.tensor([float(sigmas[i]) * 1000.0], device=device)
            start = time.perf_counter()
            v_c = forward(x, t, context, caches[0])
            v_u = forward(x, t, negative, caches[1])
            v = v_u + spec["cfg"] * (v_c - v_u)
            if cuda:
                torch.cuda.synchronize()
            elapsed = time.perf_counter() - start
            if i == 0:
                first_out = v_c.float().cpu()
            else:
                times.append(elapsed)
            x = x + (sigmas[i + 1] - sigmas[i]).item() * v
    if setting == "compile":
        from skyreels_pack.memory.compile import compile_failed

        if compile_failed(model):
            notes.append("compile failed at run time: ran eagerly")
    if caches[0] is not None:
        skipped_before = len(caches[0].skipped) + len(caches[1].skipped)
        notes.append("skipped %d of %d forwards" % (skipped_before, 2 * steps))
    if spec.get("dump"):
        torch.save(first_out, spec["dump"])
    result = {"setting": setting, "s_per_step": sum(times) / len(times) if times else float("nan"),
              "notes": notes}
    if cuda:
        result["peak"] = torch.cuda.max_memory_allocated(device)
    else:
        result["peak"] = peak_rss()
        result["delta"] = peak_rss() - rss_imports
    return result


def build_ours(cfg, spec, device, compute, torch):
    from skyreels_pack.memory import compile as mc
    from skyreels_pack.memory import offload, quant
    from skyreels_pack.memory.block_streamer import BlockStreamer, HostStaging, HostToDevice
    from skyreels_pack.models.wan.dit_loader import load_wan_dit
    from skyreels_pack.sampling.teacache import COEFFICIENTS, TeaCache, coefficient_table

    setting = spec["setting"]
    notes = []
    # int8 / nf4 are quantized from bf16 weights: the peak before quantization is then a bf16 model.
    weight_dtype = {"bf16": "bf16", "fp8_e4m3fn": "fp8_e4m3fn", "fp8_e5m2": "fp8_e5m2", "int8": "bf16",
                    "nf4": "bf16"}.get(setting, "bf16" if device.type == "cuda" else "fp32")
    attention = setting.split(":", 1)[1] if setting.startswith("attention:") else "sdpa"
    model, _ = load_wan_dit(make_source(cfg, torch), config=cfg, weight_dtype=weight_dtype,
                            compute_dtype=compute, device="cpu")
    if attention != "sdpa":  # resolved for the compute device, not the CPU the weights load on
        from skyreels_pack.models.common.attention import resolve_backend

        model.attention_backend = resolve_backend(attention, device, notes.append)
    if setting in ("int8", "nf4"):
        quant.quantize_blocks(model, setting)
        notes.append("quantized from bf16")
    budget = None
    if setting == "budget":
        if device.type == "cuda":
            sizes = offload.estimate_bytes(model)
            from skyreels_pack.memory.budget import GB, activation_bytes
            act = activation_bytes(cfg, spec["latent"], compute_dtype=compute)
            budget = spec["budget"] or (sizes["rest"] + act + sizes["blocks"] / 2 + 2 * sizes["per_block"][0]) / GB
            plan = offload.prepare_for_sampling(model, device, budget, latent_shape=spec["latent"])
            notes.append("%.1f GB budget: %d/%d blocks resident" % (budget, len(plan.resident), cfg.num_layers))
        else:
            # No GPU: stream every block through the pinned-staging path to a CPU "device"
            # (measures the copy machinery; the memory it saves only exists on a GPU).
            transfer = HostToDevice(device, HostStaging(pin=False))
            model.block_hooks = BlockStreamer(model, range(cfg.num_layers), transfer)
            notes.append("CPU emulation: every block copied in per use")
    if budget is None and device.type == "cuda":
        offload.prepare_for_sampling(model, device, None, latent_shape=spec["latent"])
    if setting == "compile":
        ok = mc.compile_blocks(model)
        notes.append("compiled" if ok else "compile unavailable")
    caches = (None, None)
    if setting == "teacache":
        try:
            table = coefficient_table(cfg, False, spec["latent"][1:])
        except ValueError:
            table = "1.3B" if cfg.dim <= 2048 else "14B"
        coefficients = COEFFICIENTS[(table, False)]
        caches = tuple(TeaCache(coefficients, spec["teacache"], spec["schedule"], use_ret_steps=False)
                       for _ in range(2))
        notes.append("threshold %.2f, %s coefficients, e mode" % (spec["teacache"], table))

    def forward(x, t, context, cache):
        return model(x, t, context, cache=cache)

    return model, forward, caches, notes


def build_diffusers(cfg, device, compute, torch):
    import diffusers

    from skyreels_pack.models.wan import dit_keys

    cls = getattr(diffusers, "SkyReelsV2Transformer3DModel", None) or diffusers.WanTransformer3DModel
    kw = dict(patch_size=tuple(cfg.patch_size), num_attention_heads=cfg.num_heads, attention_head_dim=cfg.head_dim,
              in_channels=cfg.in_dim, out_channels=cfg.out_dim, text_dim=cfg.text_dim, freq_dim=cfg.freq_dim,
              ffn_dim=cfg.ffn_dim, num_layers=cfg.num_layers, cross_attn_norm=cfg.cross_attn_norm,
              qk_norm="rms_norm_across_heads", eps=cfg.eps)
    with torch.device("meta"):
        model = cls(**kw)
    # The RoPE tables are non-persistent buffers: rebuild them for real.
    model.rope = type(model.rope)(cfg.head_dim, tuple(cfg.patch_size), 1024)
    dtype = compute if device.type == "cuda" else torch.float32
    state = {}
    for key, shape in dit_keys.expected_shapes(cfg).items():
        state[dit_keys.official_to_diffusers(key)] = generate(key, shape, torch).to(dtype)
    missing, unexpected = model.load_state_dict(state, strict=False, assign=True)
    del state
    if missing or unexpected:
        raise RuntimeError("diffusers weights do not match: missing %s, unexpected %s" % (missing[:4], unexpected[:4]))
    if any(p.is_meta for p in model.parameters()) or any(b.is_meta for b in model.buffers()):
        raise RuntimeError("diffusers model still has meta tensors")
    model.eval().requires_grad_(False)
    if device.type == "cuda":
        model.to(device)

    def forward(x, t, context, cache):
        return model(x.to(dtype), t, context.to(device, dtype), return_dict=False)[0].float()

    return model, forward, ["%s %s" % (cls.__name__, diffusers.__version__)]


# --------------------------------------------------------------------------- parent


def parse_size(text: str):
    text = text.lower()
    if text in SIZES:
        return SIZES[text]
    w, _, h = text.partition("x")
    return int(w), int(h)


def run_worker(spec: dict, timeout: int) -> dict:
    try:
        res, proc = run_json(__file__, ["--worker", json.dumps(spec)], timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"setting": spec["setting"], "error": "timed out after %d s" % timeout}
    if res is not None:
        return res
    err = (proc.stderr.strip().splitlines() or ["exit %d" % proc.returncode])[-1]
    return {"setting": spec["setting"], "error": err[:160]}


def fmt_bytes(n) -> str:
    return "-" if n is None else "%.2f GB" % (n / 2**30)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", choices=sorted(CONFIGS), default="bench")
    ap.add_argument("--layers", type=int, help="override the number of blocks")
    ap.add_argument("--size", default="256x256", help="pixels WxH, or 540p / 720p (default 256x256: a 32x32 latent)")
    ap.add_argument("--frames", type=int, default=9, help="pixel frames, 4k+1 (default 9: 3 latent frames)")
    ap.add_argument("--steps", type=int, default=5, help="denoising steps with CFG that run; the first is not timed")
    ap.add_argument("--schedule", type=int, default=30,
                    help="steps of the sigma grid the run steps are taken from (default 30, the official default)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per setting (interleaved); the best counts")
    ap.add_argument("--settings", help="comma-separated subset of: %s, attention:<backend>, diffusers"
                    % ", ".join(OURS))
    ap.add_argument("--budget", type=float, help="GB for the budget setting on a GPU (default: half the blocks)")
    ap.add_argument("--teacache", type=float, default=0.1, help="TeaCache threshold (official help: 0.1 ~ 2x)")
    ap.add_argument("--cfg", type=float, default=5.0)
    ap.add_argument("--threads", type=int, default=1,
                    help="CPU threads per run (default 1: on a shared machine several OpenMP threads wait on each "
                         "other whenever another process is busy, and the timings become noise)")
    ap.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    ap.add_argument("--timeout", type=int, default=1800, help="seconds per setting run")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))), flush=True)
        return 0

    import torch

    load_pack()
    from skyreels_pack.models.common.attention import available_backends

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    config = dict(CONFIGS[args.config])
    if args.layers:
        config["num_layers"] = args.layers
    width, height = parse_size(args.size)
    if width % 16 or height % 16 or (args.frames - 1) % 4:
        ap.error("size must be a multiple of 16 and frames 4k+1")
    latent = [(args.frames - 1) // 4 + 1, height // 8, width // 8]
    tokens = latent[0] * (latent[1] // 2) * (latent[2] // 2)

    have_diffusers = importlib.util.find_spec("diffusers") is not None
    backends = available_backends(torch.device(device))
    if args.settings:
        settings = [s.strip() for s in args.settings.split(",") if s.strip()]
    else:
        settings = list(OURS) + ["attention:%s" % b for b, why in backends.items() if b != "sdpa" and not why]
        if have_diffusers:
            settings.append("diffusers")
    if "diffusers" in settings and not have_diffusers:
        print("diffusers is not installed: skipping the comparison")
        settings.remove("diffusers")

    tmp = tempfile.mkdtemp(prefix="bench_dit_")
    if args.schedule < args.steps:
        ap.error("--schedule must be at least --steps")
    base = dict(config=config, latent=latent, steps=args.steps, schedule=args.schedule, threads=args.threads,
                device=device,
                budget=args.budget, teacache=args.teacache, cfg=args.cfg)
    best = {}
    for r in range(args.repeat):
        for s in settings:
            spec = dict(base, setting=s)
            if s in ("baseline", "diffusers") and r == 0:
                spec["dump"] = os.path.join(tmp, s + ".pt")
            res = run_worker(spec, args.timeout)
            print("  run %d/%d %-14s %s" % (r + 1, args.repeat, s, "error: " + res["error"] if "error" in res
                                              else "%.3f s/step" % res["s_per_step"]), file=sys.stderr, flush=True)
            prev = best.get(s)
            if prev is None or "error" in prev or ("error" not in res and res["s_per_step"] < prev["s_per_step"]):
                if prev is not None and "error" not in prev and "error" not in res:
                    res["peak"] = min(res["peak"], prev["peak"])  # memory is deterministic up to noise
                    if "delta" in res:
                        res["delta"] = min(res["delta"], prev["delta"])
                best[s] = res

    mem_name = "GPU peak" if device == "cuda" else "peak RSS"
    print("SkyReels DiT benchmark: %s" % machine_line(device))
    print("config %s: dim %d, %d heads, ffn %d, %d layers; latent 16x%dx%dx%d (%d tokens), text %d tokens; "
          "the first %d steps of a %d-step schedule with CFG %.1f (2 forwards/step), first untimed; best of %d; "
          "%d CPU thread(s)"
          % (args.config, config["dim"], config["num_heads"], config["ffn_dim"], config["num_layers"], latent[0],
             latent[1], latent[2], tokens, 512, args.steps, args.schedule, args.cfg, args.repeat, args.threads))
    header = "| setting | s/step | %s |%s vs baseline | notes |" % (mem_name, " Δ RSS |" if device == "cpu" else "")
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    ref = best.get("baseline")
    for s in settings:
        res = best[s]
        if "error" in res:
            print("| %s | failed | | %s| | %s |" % (s, "| " if device == "cpu" else "", res["error"]))
            continue
        speed = ("%.2fx time" % (res["s_per_step"] / ref["s_per_step"])) if ref and "error" not in ref else ""
        delta = " %s |" % fmt_bytes(res.get("delta")) if device == "cpu" else ""
        label = {"baseline": "baseline (%s)" % ("bf16" if device == "cuda" else "fp32"),
                 "budget": "VRAM budget streaming", "compile": "torch.compile (blocks)",
                 "diffusers": "diffusers"}.get(s, s)
        print("| %s | %.3f | %s |%s %s | %s |" % (label, res["s_per_step"], fmt_bytes(res["peak"]), delta, speed,
                                                  "; ".join(res.get("notes", []))))
    for b, why in backends.items():
        if why:
            print("attention %s: not available (%s)" % (b, why))
    if "diffusers" in best and ref and "error" not in best["diffusers"] and "error" not in ref:
        d = best["diffusers"]
        line = "ours/diffusers (baseline vs diffusers): time %.3f, %s %.3f" % (
            ref["s_per_step"] / d["s_per_step"], mem_name, ref["peak"] / d["peak"])
        if "delta" in ref:
            line += ", Δ RSS %.3f" % (ref["delta"] / d["delta"])
        a, b = os.path.join(tmp, "baseline.pt"), os.path.join(tmp, "diffusers.pt")
        if os.path.exists(a) and os.path.exists(b):
            out_a, out_b = torch.load(a), torch.load(b)
            line += "; outputs agree to %.1e (max |ours - diffusers| / max |diffusers|)" % (
                float((out_a - out_b).abs().max() / out_b.abs().max()))
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
