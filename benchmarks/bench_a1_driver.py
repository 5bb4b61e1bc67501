"""Speed of the SkyReels-A1 landmark driver on the example clip (the astronaut, 36 driving frames at
12 fps), with the real MediaPipe FaceLandmarker and the demo SMIRK / FLAME stand-ins (the real
architectures with random weights: the same cost as the real files).

    python benchmarks/bench_a1_driver.py [--threads 1] [--repeat 2]

Prints one Markdown row per retargeting path: seconds in all, seconds per driving frame, and
the share spent in the FaceLandmarker (measured by timing its calls).  The portrait's own three
landmark passes (whole portrait, face crop, 512 crop) are included.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TASK = os.path.join(ROOT, "..", "shared", "models", "mediapipe", "face_landmarker_v2_with_blendshapes.task")


def _load_pack():
    import importlib.util

    spec = importlib.util.spec_from_file_location("_m", os.path.join(ROOT, "__main__.py"))
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return m.load_pack(ROOT)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=2, help="runs per path; the fastest is kept")
    ap.add_argument("--task", default=os.environ.get("SKYREELS_FACE_LANDMARKER", TASK))
    args = ap.parse_args(argv)
    import numpy as np
    import torch
    from PIL import Image

    torch.set_num_threads(args.threads)
    pack = _load_pack()
    sys.modules.setdefault("skyreels_pack", pack)
    from skyreels_pack.cli.demo import a1_driver as demo
    from skyreels_pack.cli.shipped import a1_driver_inputs as inputs
    from skyreels_pack.media.video_io import read_video
    from skyreels_pack.models.a1.driver import DriverSettings, Models3D, drive, load_bs2eye
    from skyreels_pack.models.a1.face_detect import FaceLandmarks
    from skyreels_pack.models.a1.flame import Flame, FlameFiles
    from skyreels_pack.models.a1.smirk import load_smirk

    folder = os.path.join(ROOT, "workflows", "inputs")
    portrait = np.asarray(Image.open(os.path.join(folder, inputs.PORTRAIT)).convert("RGB"))
    frames, fps, _ = read_video(os.path.join(folder, inputs.DRIVING))
    with tempfile.TemporaryDirectory() as tmp:
        demo.write_smirk(tmp)
        demo.write_flame(tmp)
        a1 = os.path.join(tmp, "diffusion_models", demo.A1_ROOT)
        m3 = Models3D(load_smirk(os.path.join(a1, "smirk")),
                      Flame.from_files(FlameFiles(os.path.join(a1, "FLAME"), os.path.join(a1, "smirk"))),
                      load_bs2eye(os.path.join(a1, "mediapipe")))
    lm = FaceLandmarks(args.task, min_confidence=0.1, blendshapes=True)
    spent = [0.0]
    detect = lm.detect

    def timed(img):
        t = time.perf_counter()
        try:
            return detect(img)
        finally:
            spent[0] += time.perf_counter() - t

    lm.detect = timed
    lm.detect(portrait)  # load the model outside the timing
    rows = []
    for mode in ("2d", "3d"):
        best = None
        for _ in range(args.repeat):
            spent[0] = 0.0
            t = time.perf_counter()
            res = drive(portrait, frames, lm, DriverSettings(retarget=mode), fps=fps,
                        models3d=m3 if mode == "3d" else None)
            total = time.perf_counter() - t
            if best is None or total < best[0]:
                best = (total, spent[0], len(res.driving_indices))
        rows.append((mode,) + best)
    lm.close()
    print("| path | driving frames | seconds | per frame | in the FaceLandmarker |")
    print("| --- | --- | --- | --- | --- |")
    for mode, total, land, n in rows:
        print("| %s | %d | %.1f | %.3f | %.0f %% |" % (mode, n, total, total / n, 100 * land / total))


if __name__ == "__main__":
    main()
