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
import tempfile

from bench_common import frame_counter, measure_in_child, peak_memory, print_growth, start_child

CONFIGS = {
    "cpu": dict(num_heads=4, head_dim=64, num_layers=2, time_embed_dim=64, text_embed_dim=128, face_embed_dim=64,
                vae=(8, 16, 16, 16), vae_layers=1, vae_groups=4),
    "5b": dict(num_heads=48, head_dim=64, num_layers=42, time_embed_dim=512, text_embed_dim=4096, face_embed_dim=1152,
               vae=(128, 256, 256, 512), vae_layers=3, vae_groups=32),
}


def child(args) -> dict:
    """One run; prints its measurements as JSON."""
    import torch

    device, dtype = start_child(args.threads)
    from skyreels_pack.models.cogvideox.config import CogVideoXConfig
    from skyreels_pack.models.cogvideox.transformer import CogVideoXTransformer
    from skyreels_pack.models.cogvideox.vae import CogVideoXVAE, CogVideoXVAEConfig, VAETiling
    from skyreels_pack.sampling.a1_video import A1Codec, A1VideoSettings, generate_a1_video

    c = dict(CONFIGS[args.config])
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

    g = torch.Generator().manual_seed(0)
    control = torch.rand(1 + args.driving, args.height, args.width, 3, generator=g)
    portrait = torch.rand(1, args.height, args.width, 3, generator=g)
    face = torch.randn(1, cfg.face_tokens, cfg.face_embed_dim, generator=g)
    s = A1VideoSettings(width=args.width, height=args.height, steps=args.steps)
    codec = A1Codec(vaes[0], vaes[1], device, VAETiling.official(vcfg) if args.tiled else None, None)
    sink = frame_counter()
    with peak_memory(device) as row, tempfile.TemporaryDirectory() as d:
        res = generate_a1_video(dit, codec, s, portrait, control, face, sink, chunk_dir=d)
    return dict(row, windows=len(res.plan.windows), frames=sink.frames)


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
        row = measure_in_child(__file__, args, "--child-driving", driving)
        assert row["windows"] == windows, row
        rows.append(row)
    print_growth("SkyReels-A1 peak memory (%s, %s, %dx%d, %d steps, VAE %s)"
                 % (rows[0]["device"], args.config, args.width, args.height, args.steps,
                    "tiled" if args.tiled else "untiled"), rows, "windows")


if __name__ == "__main__":
    main()
