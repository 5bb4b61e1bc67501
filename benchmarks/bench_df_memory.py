"""Peak memory of a diffusion-forcing run: one chunk against four chunks.

Each run happens in a fresh subprocess, so one run's peak cannot hide another's.  The peak is
the GPU's max allocated memory when CUDA is present, else the process's peak resident memory
(ru_maxrss).  Finished chunks go to a chunk folder on disk, as a long render would send them;
what stays is only the current chunk and the overlap.

    python benchmarks/bench_df_memory.py                 # CPU-sized model, prints a table
    python benchmarks/bench_df_memory.py --config 1.3b --width 960 --height 544   # on a GPU
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
    "cpu": dict(dim=512, ffn_dim=1024, num_heads=4, num_layers=4, text_dim=256, vae_dim=16),
    "1.3b": dict(dim=1536, ffn_dim=8960, num_heads=12, num_layers=30, text_dim=4096, vae_dim=96),
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
    from skyreels_pack.cli.demo.common import randomize as _randomize
    from skyreels_pack.models.wan.dit import WanDiT
    from skyreels_pack.models.wan.dit_config import WanDiTConfig
    from skyreels_pack.models.wan.vae import WanVAE, WanVAEConfig
    from skyreels_pack.sampling.chunk_store import ChunkSink
    from skyreels_pack.sampling.df_video import DFConditioning, DFVideoSettings, generate_df_video
    from skyreels_pack.sampling.guidance import ModelInputs
    from skyreels_pack.sampling.video_codec import VideoCodec

    host.set_quiet(True)
    torch.manual_seed(0)
    c = CONFIGS[args.config]
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    cfg = WanDiTConfig(dim=c["dim"], ffn_dim=c["ffn_dim"], num_heads=c["num_heads"], num_layers=c["num_layers"],
                       text_dim=c["text_dim"], inject_sample_info=True, variant="df")
    dit = WanDiT(cfg)
    dit.load_state_dict(_randomize(dit, 1))
    dit.to(device, dtype).eval().requires_grad_(False)
    dit.compute_dtype = dtype
    vae = WanVAE(WanVAEConfig(dim=c["vae_dim"]))
    vae.load_state_dict(_randomize(vae, 2), strict=False)
    vae.to(device).eval().requires_grad_(False)

    class Discard(ChunkSink):
        frames = 0

        def add(self, chunk):
            Discard.frames += chunk.frames.shape[0]

    ctx = torch.randn(1, 512, c["text_dim"]) * 0.1
    s = DFVideoSettings(width=args.width, height=args.height, num_frames=args.frames, base_num_frames=args.base,
                        overlap_history=args.overlap, steps=args.steps, guidance=5.0, history=args.history)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory() as d:
        res = generate_df_video(dit, VideoCodec(vae, device), s,
                                DFConditioning([ModelInputs(ctx.to(device))], ModelInputs(torch.zeros_like(ctx).to(device))),
                                Discard(), chunk_dir=d)
    secs = time.monotonic() - t0
    peak = (torch.cuda.max_memory_allocated() if device.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    return {"chunks": len(res.plan.chunks), "frames": Discard.frames, "peak_bytes": peak, "seconds": secs,
            "device": str(device), "metric": "cuda max allocated" if device.type == "cuda" else "peak RSS"}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", choices=sorted(CONFIGS), default="cpu")
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--height", type=int, default=160)
    ap.add_argument("--base", type=int, default=33, help="base_num_frames")
    ap.add_argument("--overlap", type=int, default=17)
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--history", choices=["latent", "pixel"], default="latent")
    ap.add_argument("--child-frames", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child_frames is not None:
        args.frames = args.child_frames
        print(json.dumps(child(args)))
        return
    step = (args.base - args.overlap)
    rows = []
    for chunks in (1, 4):
        frames = args.base + (chunks - 1) * step
        cmd = [sys.executable, __file__, "--child-frames", str(frames)] + [
            a for k, v in vars(args).items() if k not in ("child_frames",)
            for a in ("--" + k.replace("_", "-"), str(v))]
        # Large CPU buffers straight from mmap and back on free: peak RSS then follows live memory
        # instead of glibc's heap growth history.
        env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", MALLOC_TRIM_THRESHOLD_="0")
        out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env).stdout.strip().splitlines()[-1]
        rows.append(json.loads(out))
    print("diffusion forcing peak memory (%s, %s, %dx%d, base %d, overlap %d, history %s)"
          % (rows[0]["device"], args.config, args.width, args.height, args.base, args.overlap, args.history))
    print("| chunks | frames | %s (MiB) | seconds |" % rows[0]["metric"])
    print("| --- | --- | --- | --- |")
    for r in rows:
        print("| %d | %d | %.1f | %.1f |" % (r["chunks"], r["frames"], r["peak_bytes"] / 2**20, r["seconds"]))
    growth = rows[1]["peak_bytes"] / rows[0]["peak_bytes"] - 1
    print("growth from 1 to 4 chunks: %+.1f %%" % (100 * growth))


if __name__ == "__main__":
    main()
