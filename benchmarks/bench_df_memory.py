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
import tempfile

from bench_common import (frame_counter, measure_in_child, peak_memory, print_growth, random_wan,
                          start_child)

CONFIGS = {
    "cpu": dict(dim=512, ffn_dim=1024, num_heads=4, num_layers=4, text_dim=256, vae_dim=16),
    "1.3b": dict(dim=1536, ffn_dim=8960, num_heads=12, num_layers=30, text_dim=4096, vae_dim=96),
}


def child(args) -> dict:
    """One run; prints its measurements as JSON."""
    import torch

    device, dtype = start_child()
    from skyreels_pack.models.wan.dit_config import WanDiTConfig
    from skyreels_pack.sampling.df_video import DFConditioning, DFVideoSettings, generate_df_video
    from skyreels_pack.sampling.guidance import ModelInputs
    from skyreels_pack.sampling.video_codec import VideoCodec

    c = CONFIGS[args.config]
    cfg = WanDiTConfig(dim=c["dim"], ffn_dim=c["ffn_dim"], num_heads=c["num_heads"], num_layers=c["num_layers"],
                       text_dim=c["text_dim"], inject_sample_info=True, variant="df")
    dit, vae = random_wan(cfg, c["vae_dim"], device, dtype)

    ctx = torch.randn(1, 512, c["text_dim"]) * 0.1
    s = DFVideoSettings(width=args.width, height=args.height, num_frames=args.frames, base_num_frames=args.base,
                        overlap_history=args.overlap, steps=args.steps, guidance=5.0, history=args.history)
    sink = frame_counter()
    with peak_memory(device) as row, tempfile.TemporaryDirectory() as d:
        res = generate_df_video(dit, VideoCodec(vae, device), s,
                                DFConditioning([ModelInputs(ctx.to(device))], ModelInputs(torch.zeros_like(ctx).to(device))),
                                sink, chunk_dir=d)
    return dict(row, chunks=len(res.plan.chunks), frames=sink.frames)


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
    rows = [measure_in_child(__file__, args, "--child-frames", args.base + (chunks - 1) * step) for chunks in (1, 4)]
    print_growth("diffusion forcing peak memory (%s, %s, %dx%d, base %d, overlap %d, history %s)"
                 % (rows[0]["device"], args.config, args.width, args.height, args.base, args.overlap, args.history),
                 rows, "chunks")


if __name__ == "__main__":
    main()
