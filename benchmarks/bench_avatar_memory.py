"""Peak memory of a talking-avatar run: one window against three windows.

Each run happens in a fresh subprocess, so one run's peak cannot hide another's.  The peak is
the GPU's max allocated memory when CUDA is present, else the process's peak resident memory
(ru_maxrss).  Finished windows go to a chunk folder on disk, as a long render would send them;
what stays is the current clip, the pseudo keyframes and the next window's motion frames.

The runs are the real loop (:func:`sampling.avatar_video.generate_avatar_video`) with a random
A2V DiT (the audio adapter takes real-sized 12 x 768 wav2vec2 features), a random Wan VAE and
a CLIP stub (CLIP runs once per window outside the sampler's memory; it is not what grows).

    python benchmarks/bench_avatar_memory.py                  # CPU-sized, prints a table
    python benchmarks/bench_avatar_memory.py --config gpu --width 832 --height 480 --window 81   # on a GPU
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
    "cpu": dict(dim=512, ffn_dim=1024, num_heads=4, num_layers=4, text_dim=256, vae_dim=16, audio_inter=64),
    "gpu": dict(dim=1536, ffn_dim=8960, num_heads=12, num_layers=30, text_dim=4096, vae_dim=96, audio_inter=512),
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
    from skyreels_pack.cli.demo.common import randomize
    from skyreels_pack.models.wan.audio_adapter import AudioAdapterConfig
    from skyreels_pack.models.wan.dit import WanDiT
    from skyreels_pack.models.wan.dit_config import WanDiTConfig
    from skyreels_pack.models.wan.vae import WanVAE, WanVAEConfig
    from skyreels_pack.sampling.avatar_video import AvatarConditioning, AvatarSettings, generate_avatar_video
    from skyreels_pack.sampling.chunk_store import ChunkSink
    from skyreels_pack.sampling.video_codec import VideoCodec

    host.set_quiet(True)
    torch.manual_seed(0)
    c = CONFIGS[args.config]
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    cfg = WanDiTConfig(dim=c["dim"], ffn_dim=c["ffn_dim"], num_heads=c["num_heads"], num_layers=c["num_layers"],
                       in_dim=36, text_dim=c["text_dim"], image_dim=1280, variant="i2v",
                       audio=AudioAdapterConfig(intermediate_dim=c["audio_inter"], output_dim=768, context_tokens=32))
    dit = WanDiT(cfg)
    dit.load_state_dict(randomize(dit, 1))
    dit.to(device, dtype).eval().requires_grad_(False)
    dit.compute_dtype = dtype
    vae = WanVAE(WanVAEConfig(dim=c["vae_dim"]))
    vae.load_state_dict(randomize(vae, 2), strict=False)
    vae.to(device).eval().requires_grad_(False)

    class Discard(ChunkSink):
        frames = 0

        def add(self, chunk):
            Discard.frames += chunk.frames.shape[0]

    g = torch.Generator().manual_seed(3)
    tokens = torch.randn(1, 257, 1280, generator=g)
    s = AvatarSettings(width=args.width, height=args.height, steps=args.steps, frame_num=args.window,
                       motion_frame=args.motion, drop_frame=args.drop, seed=1)
    cond = AvatarConditioning(portrait=torch.rand(1, args.height, args.width, 3, generator=g),
                              features=torch.randn(args.frames, 12, 768, generator=g),
                              prompt=torch.randn(1, 512, c["text_dim"], generator=g) * 0.1,
                              connection=torch.randn(1, 512, c["text_dim"], generator=g) * 0.1)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory() as d:
        res = generate_avatar_video(dit, VideoCodec(vae, device), lambda image: tokens, s, cond, Discard(),
                                    chunk_dir=d)
    secs = time.monotonic() - t0
    peak = (torch.cuda.max_memory_allocated() if device.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    return {"windows": res.plan.windows, "frames": Discard.frames, "peak_bytes": peak, "seconds": secs,
            "device": str(device), "metric": "cuda max allocated" if device.type == "cuda" else "peak RSS"}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", choices=sorted(CONFIGS), default="cpu")
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--height", type=int, default=96)
    ap.add_argument("--window", type=int, default=33, help="frames per window (81 official)")
    ap.add_argument("--motion", type=int, default=5)
    ap.add_argument("--drop", type=int, default=12)
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--child-frames", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child_frames is not None:
        args.frames = args.child_frames
        print(json.dumps(child(args)))
        return
    stride = args.window - args.motion - args.drop
    rows = []
    for windows in (1, 3):
        frames = args.window + (windows - 1) * stride  # audio frames that need exactly that many windows
        cmd = [sys.executable, __file__, "--child-frames", str(frames)] + [
            a for k, v in vars(args).items() if k not in ("child_frames",)
            for a in ("--" + k.replace("_", "-"), str(v))]
        # Large CPU buffers straight from mmap and back on free: peak RSS then follows live memory
        # instead of glibc's heap growth history.
        env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", MALLOC_TRIM_THRESHOLD_="0")
        out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env).stdout.strip().splitlines()[-1]
        row = json.loads(out)
        assert row["windows"] == windows, row
        rows.append(row)
    print("talking avatar peak memory (%s, %s, %dx%d, windows of %d frames, %d motion, %d dropped, %d steps)"
          % (rows[0]["device"], args.config, args.width, args.height, args.window, args.motion, args.drop, args.steps))
    print("| windows | frames | %s (MiB) | seconds |" % rows[0]["metric"])
    print("| --- | --- | --- | --- |")
    for r in rows:
        print("| %d | %d | %.1f | %.1f |" % (r["windows"], r["frames"], r["peak_bytes"] / 2**20, r["seconds"]))
    growth = rows[1]["peak_bytes"] / rows[0]["peak_bytes"] - 1
    print("growth from 1 to 3 windows: %+.1f %%" % (100 * growth))


if __name__ == "__main__":
    main()
