"""Peak memory of a SkyReels-A1 long video: one 49-frame window against three.

Each run happens in a fresh subprocess, so one run's peak cannot hide another's.  The peak is
the GPU's max allocated memory when CUDA is present, else the process's peak resident memory
(ru_maxrss).  Finished windows go to a chunk folder on disk, as a long render sends them;
what stays is the current window's latents, its control frames and the small fusion cache.
The control video itself (the node's input) is in the process in both runs, sized for each.

    python benchmarks/bench_a1_memory.py                  # CPU-sized model, prints a table
    python benchmarks/bench_a1_memory.py --config 5b --width 720 --height 480   # on a GPU (random 5B weights)
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

CONFIGS = {
    "cpu": dict(num_heads=4, head_dim=64, num_layers=2, time_embed_dim=64, text_embed_dim=128, face_embed_dim=64,
                vae=(8, 16, 16, 16), vae_layers=1, vae_groups=4),
    "5b": dict(num_heads=48, head_dim=64, num_layers=42, time_embed_dim=512, text_embed_dim=4096, face_embed_dim=1152,
               vae=(128, 256, 256, 512), vae_layers=3, vae_groups=32),
}


def _load_pack():
    import importlib.util

    spec = importlib.util.spec_from_file_location("_m", os.path.join(ROOT, "__main__.py"))
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return m.load_pack(ROOT)


def child(args) -> dict:
    """One run; prints its measurements as JSON."""
    import resource

    import torch

    _load_pack()
    from skyreels_pack import host
    from skyreels_pack.models.cogvideox.config import CogVideoXConfig
    from skyreels_pack.models.cogvideox.transformer import CogVideoXTransformer
    from skyreels_pack.models.cogvideox.vae import CogVideoXVAE, CogVideoXVAEConfig, VAETiling
    from skyreels_pack.sampling.a1_video import A1Codec, A1VideoSettings, generate_a1_video
    from skyreels_pack.sampling.chunk_store import ChunkSink

    host.set_quiet(True)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    c = dict(CONFIGS[args.config])
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    cfg = CogVideoXConfig(num_heads=c["num_heads"], head_dim=c["head_dim"], num_layers=c["num_layers"],
                          time_embed_dim=c["time_embed_dim"], text_embed_dim=c["text_embed_dim"],
                          face_embed_dim=c["face_embed_dim"], sample_height=args.height // 8,
                          sample_width=args.width // 8)
    def random_module(make, seed):
        """Built on the meta device, then filled in place on the device (no full-precision copy)."""
        with torch.device("meta"):
            m = make()
        m = m.to_empty(device=device).to(dtype)
        torch.manual_seed(seed)
        with torch.no_grad():
            for name, t in list(m.named_parameters()) + list(m.named_buffers()):
                if not t.is_floating_point():
                    continue
                if t.dim() >= 2 and name.endswith("weight"):
                    t.normal_(0, (t[0].numel()) ** -0.5)
                elif "norm" in name and name.endswith("weight"):
                    t.fill_(1.0)
                else:
                    t.normal_(0, 0.02)
        return m.eval().requires_grad_(False)

    dit = random_module(lambda: CogVideoXTransformer(cfg), 1)
    dit.compute_dtype = dtype
    vcfg = CogVideoXVAEConfig(block_out_channels=c["vae"], layers_per_block=c["vae_layers"],
                              norm_num_groups=c["vae_groups"], sample_height=args.height, sample_width=args.width)
    vaes = [random_module(lambda: CogVideoXVAE(vcfg), seed) for seed in (2, 3)]

    class Discard(ChunkSink):
        frames = 0

        def add(self, chunk):
            Discard.frames += chunk.frames.shape[0]

    g = torch.Generator().manual_seed(0)
    control = torch.rand(1 + args.driving, args.height, args.width, 3, generator=g)
    portrait = torch.rand(1, args.height, args.width, 3, generator=g)
    face = torch.randn(1, cfg.face_tokens, cfg.face_embed_dim, generator=g)
    s = A1VideoSettings(width=args.width, height=args.height, steps=args.steps)
    codec = A1Codec(vaes[0], vaes[1], device, VAETiling.official(vcfg) if args.tiled else None, None)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory() as d:
        res = generate_a1_video(dit, codec, s, portrait, control, face, Discard(), chunk_dir=d)
    secs = time.monotonic() - t0
    peak = (torch.cuda.max_memory_allocated() if device.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    return {"windows": len(res.plan.windows), "frames": Discard.frames, "peak_bytes": peak, "seconds": secs,
            "device": str(device), "metric": "cuda max allocated" if device.type == "cuda" else "peak RSS"}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", choices=sorted(CONFIGS), default="cpu")
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--height", type=int, default=96)
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--tiled", type=int, default=1, help="tile the VAE (1, as the official scripts) or not (0)")
    ap.add_argument("--child-driving", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child_driving is not None:
        args.driving = args.child_driving
        print(json.dumps(child(args)))
        return
    rows = []
    for windows, driving in ((1, 48), (3, 128)):  # 48 = one window; 128 = three full windows (40 new each)
        cmd = [sys.executable, __file__, "--child-driving", str(driving)] + [
            a for k, v in vars(args).items() if k not in ("child_driving",)
            for a in ("--" + k.replace("_", "-"), str(v))]
        env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", MALLOC_TRIM_THRESHOLD_="0")
        out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env).stdout.strip().splitlines()[-1]
        row = json.loads(out)
        assert row["windows"] == windows, row
        rows.append(row)
    print("SkyReels-A1 peak memory (%s, %s, %dx%d, %d steps, VAE %s)"
          % (rows[0]["device"], args.config, args.width, args.height, args.steps, "tiled" if args.tiled else "untiled"))
    print("| windows | frames | %s (MiB) | seconds |" % rows[0]["metric"])
    print("| --- | --- | --- | --- |")
    for r in rows:
        print("| %d | %d | %.1f | %.1f |" % (r["windows"], r["frames"], r["peak_bytes"] / 2**20, r["seconds"]))
    growth = rows[1]["peak_bytes"] / rows[0]["peak_bytes"] - 1
    print("growth from 1 to 3 windows: %+.1f %%" % (100 * growth))


if __name__ == "__main__":
    main()
