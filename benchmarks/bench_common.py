"""What the benchmarks share: the pack, memory readings, the machine line, generated weights,
and measurements in fresh processes (so that one run's peak memory cannot hide another's).

A benchmark is a script that runs itself again as a child process for each measurement:
the parent passes its own options on (:func:`child_argv`), the child prints one JSON object
as its last line, the parent reads it (:func:`run_json`) and prints the table.
"""
from __future__ import annotations

import contextlib
import datetime
import importlib.util
import json
import os
import platform
import resource
import subprocess
import sys
import time
import zlib
from typing import Callable, Dict, List, Optional, Sequence

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Large CPU buffers straight from mmap and back on free: peak RSS then follows live memory
# instead of glibc's heap growth history.
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "0"}


def load_pack():
    """The pack, imported as ``skyreels_pack`` (once per process)."""
    if "skyreels_pack" in sys.modules:
        return sys.modules["skyreels_pack"]
    spec = importlib.util.spec_from_file_location("_skyreels_main", os.path.join(ROOT, "__main__.py"))
    main = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(main)
    return main.load_pack(ROOT)


# --------------------------------------------------------------------------- memory and machine


def _status(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def current_rss() -> int:
    """This process's resident memory now (VmRSS)."""
    return _status("VmRSS")


def peak_rss() -> int:
    """This process's peak resident memory (ru_maxrss)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def peak_hwm() -> int:
    """This process image's peak RSS (VmHWM).  Unlike ru_maxrss it does not carry the parent's
    peak across fork + exec."""
    return _status("VmHWM")


def machine_line(device: str) -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        where = "%s (%.0f GB)" % (props.name, props.total_memory / 2**30)
    else:
        where = "CPU only"
    return "%s; %d cores (%s); torch %s; %s" % (datetime.date.today().isoformat(), os.cpu_count(), cpu,
                                               torch.__version__, where)


def start_child(threads: Optional[int] = None):
    """In a measurement process: the pack loaded and quiet, torch seeded with 0 (and limited to
    ``threads``); returns (device, compute dtype): CUDA in bf16 when present, else the CPU in fp32."""
    import torch

    load_pack()
    from skyreels_pack import host

    host.set_quiet(True)
    if threads is not None:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    cuda = torch.cuda.is_available()
    return torch.device("cuda" if cuda else "cpu"), torch.bfloat16 if cuda else torch.float32


@contextlib.contextmanager
def peak_memory(device):
    """Measures the block: yields a dict that gets ``seconds``, ``peak_bytes`` (the GPU's max
    allocated memory with CUDA, else the process's peak RSS), ``device`` and ``metric``."""
    import torch

    cuda = device.type == "cuda"
    out: Dict = {}
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    t0 = time.monotonic()
    yield out
    out["seconds"] = time.monotonic() - t0
    out["peak_bytes"] = torch.cuda.max_memory_allocated() if cuda else peak_rss()
    out.update(device=str(device), metric="cuda max allocated" if cuda else "peak RSS")


def random_wan(cfg, vae_dim: int, device, dtype):
    """(DiT, VAE): a Wan DiT of ``cfg`` in ``dtype`` and a Wan VAE of width ``vae_dim`` in fp32, with
    the demo models' seeded random weights, on ``device``, ready to run."""
    from skyreels_pack.cli.demo.common import randomize
    from skyreels_pack.models.wan.dit import WanDiT
    from skyreels_pack.models.wan.vae import WanVAE, WanVAEConfig

    dit = WanDiT(cfg)
    dit.load_state_dict(randomize(dit, 1))
    dit.to(device, dtype).eval().requires_grad_(False)
    dit.compute_dtype = dtype
    vae = WanVAE(WanVAEConfig(dim=vae_dim))
    vae.load_state_dict(randomize(vae, 2), strict=False)
    vae.to(device).eval().requires_grad_(False)
    return dit, vae


def frame_counter():
    """A chunk sink that only counts the frames it receives (``.frames``)."""
    from skyreels_pack.sampling.chunk_store import ChunkSink

    class Count(ChunkSink):
        frames = 0

        def add(self, chunk):
            self.frames += chunk.frames.shape[0]

    return Count()


# --------------------------------------------------------------------------- generated weights


def generate(key: str, shape, torch, rest: float = 0.1, adjust: Optional[Callable] = None):
    """The benchmark weight of ``key``: reproducible, independent of the order of creation (a
    seed per key).  Norm weights near 1, matrices scaled by their fan-in, the rest by ``rest``;
    ``adjust(key, tensor)`` may change the drawn values first."""
    g = torch.Generator().manual_seed(zlib.crc32(key.encode()))
    t = torch.randn(shape, generator=g)
    if adjust is not None:
        t = adjust(key, t)
    if "norm" in key and key.endswith("weight"):
        return 1 + 0.1 * t
    if key.endswith("weight") and len(shape) >= 2:
        fan_in = 1
        for s in shape[1:]:
            fan_in *= s
        return t / fan_in ** 0.5
    return rest * t


def generated_source(shapes: Dict[str, Sequence[int]], make: Callable):
    """A TensorSource whose tensors ``make(key, shape)`` generates on demand, one at a time (no full
    fp32 copy exists when the loader stores bf16 or fp8)."""
    import torch

    from skyreels_pack.models.loading.checkpoint import TensorSource

    class GeneratedSource(TensorSource):
        def __init__(self):
            self.files = ["<generated>"]
            self.metadata = {}
            self._shape = {k: tuple(s) for k, s in shapes.items()}
            self._dtype = {k: torch.float32 for k in shapes}
            self._where = {k: 0 for k in shapes}
            self._handles = [self]

        def get(self, key):
            return make(key, self._shape[key])

    return GeneratedSource()


# --------------------------------------------------------------------------- fresh processes


def run_json(script: str, argv: List[str], timeout: Optional[float] = None, env: Optional[Dict] = None):
    """Run ``python script argv`` in a fresh process: (the last JSON object it printed, or None;
    the finished process, for its stderr and return code).  A run past ``timeout`` raises
    ``subprocess.TimeoutExpired``."""
    proc = subprocess.run([sys.executable, os.path.abspath(script)] + list(argv), capture_output=True, text=True,
                          timeout=timeout, env=env)
    for line in reversed(proc.stdout.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line), proc
    return None, proc


def child_argv(args, flag: str, value) -> List[str]:
    """The command line of a child measurement: ``flag value`` and every other option of the
    parent's parsed ``args`` (so the child runs the same settings)."""
    own = flag.lstrip("-").replace("-", "_")
    return [flag, str(value)] + [a for k, v in vars(args).items() if k != own
                                 for a in ("--" + k.replace("_", "-"), str(v))]


def measure_in_child(script: str, args, flag: str, value) -> Dict:
    """One measurement of ``script`` in a fresh process (see :func:`child_argv`)."""
    row, proc = run_json(script, child_argv(args, flag, value), env=dict(os.environ, **MALLOC_ENV))
    if row is None or proc.returncode:
        raise RuntimeError("the measurement %s %s failed:\n%s" % (flag, value, proc.stderr[-3000:]))
    return row


def print_growth(title: str, rows: List[Dict], unit: str) -> None:
    """The peak-memory table of runs of a growing number of ``unit`` (e.g. "chunks": the key
    of each row too), and the growth from the first run to the last."""
    print(title)
    print("| %s | frames | %s (MiB) | seconds |" % (unit, rows[0]["metric"]))
    print("| --- | --- | --- | --- |")
    for r in rows:
        print("| %d | %d | %.1f | %.1f |" % (r[unit], r["frames"], r["peak_bytes"] / 2**20, r["seconds"]))
    growth = rows[-1]["peak_bytes"] / rows[0]["peak_bytes"] - 1
    print("growth from %d to %d %s: %+.1f %%" % (rows[0][unit], rows[-1][unit], unit, 100 * growth))
