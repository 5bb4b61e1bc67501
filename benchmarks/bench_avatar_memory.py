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
import tempfile

from bench_common import (frame_counter, measure_in_child, peak_memory, print_growth, random_wan,
                          start_child)

CONFIGS = {
    "cpu": dict(dim=512, ffn_dim=1024, num_heads=4, num_layers=4, text_dim=256, vae_dim=16, audio_inter=64),
    "gpu": dict(dim=1536, ffn_dim=8960, num_heads=12, num_layers=30, text_dim=4096, vae_dim=96, audio_inter=512),
}


def child(args) -> dict:
    """One run; prints its measurements as JSON."""
    import torch

    device, dtype = start_child()
    from skyreels_pack.models.wan.audio_adapter import AudioAdapterConfig
    from skyreels_pack.models.wan.dit_config import WanDiTConfig
    from skyreels_pack.sampling.avatar_video import AvatarConditioning, AvatarSettings, generate_avatar_video
    from skyreels_pack.sampling.video_codec import VideoCodec

    c = CONFIGS[args.config]
    cfg = WanDiTConfig(dim=c["dim"], ffn_dim=c["ffn_dim"], num_heads=c["num_heads"], num_layers=c["num_layers"],
                       in_dim=36, text_dim=c["text_dim"], image_dim=1280, variant="i2v",
                       audio=AudioAdapterConfig(intermediate_dim=c["audio_inter"], output_dim=768, context_tokens=32))
    dit, vae = random_wan(cfg, c["vae_dim"], device, dtype)

    g = torch.Generator().manual_seed(3)
    tokens = torch.randn(1, 257, 1280, generator=g)
    s = AvatarSettings(width=args.width, height=args.height, steps=args.steps, frame_num=args.window,
                       motion_frame=args.motion, drop_frame=args.drop, seed=1)
    cond = AvatarConditioning(portrait=torch.rand(1, args.height, args.width, 3, generator=g),
                              features=torch.randn(args.frames, 12, 768, generator=g),
                              prompt=torch.randn(1, 512, c["text_dim"], generator=g) * 0.1,
                              connection=torch.randn(1, 512, c["text_dim"], generator=g) * 0.1)
    sink = frame_counter()
    with peak_memory(device) as row, tempfile.TemporaryDirectory() as d:
        res = generate_avatar_video(dit, VideoCodec(vae, device), lambda image: tokens, s, cond, sink, chunk_dir=d)
    return dict(row, windows=res.plan.windows, frames=sink.frames)


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
        row = measure_in_child(__file__, args, "--child-frames", frames)
        assert row["windows"] == windows, row
        rows.append(row)
    print_growth("talking avatar peak memory (%s, %s, %dx%d, windows of %d frames, %d motion, %d dropped, %d steps)"
                 % (rows[0]["device"], args.config, args.width, args.height, args.window, args.motion, args.drop,
                    args.steps), rows, "windows")


if __name__ == "__main__":
    main()
