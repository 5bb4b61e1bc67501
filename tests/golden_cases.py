"""Reading the golden reference cases of ../shared/golden (or $SKYREELS_GOLDEN_DIR).

A case file holds ``weights.*``, ``inputs.*`` and ``outputs.*`` tensors plus metadata (see
the README of that folder).  Every floating tensor is upcast to float32 on load.
"""
import glob
import json
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_DIR = os.path.normpath(os.path.join(ROOT, "..", "shared", "golden"))


def golden_dir() -> str:
    return os.environ.get("SKYREELS_GOLDEN_DIR") or DEFAULT_DIR


TOP_FAMILY = "wan"  # the cases at the top level of the folder: Wan2.1 / SkyReels-V2


def case_files(root: str = None) -> List[str]:
    """Every case file under ``root`` (default :func:`golden_dir`), subfolders included, sorted."""
    d = root or golden_dir()
    files = glob.glob(os.path.join(d, "**", "*.safetensors"), recursive=True)
    files += glob.glob(os.path.join(d, "**", "*.json"), recursive=True)
    return sorted(files)


def family_of(path: str, root: str = None) -> str:
    """The family a case file belongs to: its first subfolder under the golden folder, or
    :data:`TOP_FAMILY` for files at the top level."""
    rel = os.path.relpath(path, root or golden_dir())
    parts = rel.split(os.sep)
    return parts[0] if len(parts) > 1 else TOP_FAMILY


def case_id(path: str, root: str = None) -> str:
    return os.path.relpath(path, root or golden_dir()).replace(os.sep, "/")


@dataclass
class Case:
    path: str
    kind: str
    meta: Dict[str, str]
    config: Dict[str, Any] = field(default_factory=dict)
    params: Dict[str, Any] = field(default_factory=dict)
    weights: Dict[str, torch.Tensor] = field(default_factory=dict)
    inputs: Dict[str, torch.Tensor] = field(default_factory=dict)
    outputs: Dict[str, torch.Tensor] = field(default_factory=dict)
    data: Dict[str, Any] = field(default_factory=dict)  # JSON cases

    @property
    def name(self) -> str:
        return os.path.basename(self.path)

    @property
    def atol(self) -> float:
        return float(self.meta.get("atol", 1e-4))

    @property
    def rtol(self) -> float:
        return float(self.meta.get("rtol", 1e-4))

    @property
    def weights_format(self) -> str:
        return self.meta.get("weights_format", "none")


def _up(t: torch.Tensor) -> torch.Tensor:
    return t.float() if t.is_floating_point() else t


def load_case(path: str) -> Case:
    if path.endswith(".json"):
        with open(path) as f:
            data = json.load(f)
        meta = {k: v for k, v in data.items() if not isinstance(v, (list, dict))}
        return Case(path=path, kind=data.get("kind", "?"), meta={k: str(v) for k, v in meta.items()}, data=data)
    from safetensors import safe_open

    with safe_open(path, framework="pt") as f:
        meta = dict(f.metadata() or {})
        case = Case(path=path, kind=meta.get("kind", "?"), meta=meta)
        for k in f.keys():
            group, _, name = k.partition(".")
            t = _up(f.get_tensor(k))
            if group == "weights":
                case.weights[name] = t
            elif group == "inputs":
                case.inputs[name] = t
            elif group == "outputs":
                case.outputs[name] = t
    case.config = json.loads(meta["config"]) if meta.get("config") else {}
    case.params = json.loads(meta["params"]) if meta.get("params") else {}
    return case


def assert_close(name: str, actual: torch.Tensor, expected: torch.Tensor, atol: float, rtol: float) -> None:
    assert tuple(actual.shape) == tuple(expected.shape), \
        "%s: shape %s, expected %s" % (name, list(actual.shape), list(expected.shape))
    if not expected.is_floating_point():
        assert torch.equal(actual.to(expected.dtype), expected), "%s: integer values differ" % name
        return
    actual = actual.detach().double()
    expected = expected.double()
    assert torch.isfinite(actual).all(), "%s: non-finite values" % name
    diff = (actual - expected).abs()
    bound = atol + rtol * expected.abs()
    worst = (diff - bound).max().item()
    assert worst <= 0, "%s: max |diff| %.3g exceeds tolerance (atol %g, rtol %g) by %.3g" % (
        name, diff.max().item(), atol, rtol, worst)
