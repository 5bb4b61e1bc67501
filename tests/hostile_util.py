"""Shared pieces of the hostile-input tests: the host's folders set for one test, tiny media."""
import os

import numpy as np
import pytest
from PIL import Image

from skyreels_pack import host


@pytest.fixture
def folders(tmp_path, monkeypatch):
    """Input, output and model folders of one test (and a secret file outside all of them)."""
    base = tmp_path
    # the outside folder is not called "outside", so that the word in a message is the refusal
    dirs = {k: base / n for k, n in (("input", "input"), ("output", "output"), ("models", "models"),
                                     ("outside", "elsewhere"))}
    for d in dirs.values():
        d.mkdir()
    for kind in ("diffusion_models", "text_encoders", "vae", "clip_vision"):
        (dirs["models"] / kind).mkdir()
    img = Image.fromarray(np.full((16, 16, 3), 128, np.uint8))
    img.save(dirs["input"] / "ok.png")
    img.save(dirs["outside"] / "secret.png")
    (dirs["outside"] / "secret.safetensors").write_bytes(b"x")
    monkeypatch.setattr(host, "_input_dirs", [str(dirs["input"])])
    monkeypatch.setattr(host, "_output_dir", str(dirs["output"]))
    monkeypatch.setattr(host, "_model_roots", [str(dirs["models"])])
    return dirs


def nothing_outside(folders):
    """The outside folder holds only what the fixture put there."""
    return sorted(os.listdir(folders["outside"])) == ["secret.png", "secret.safetensors"]


@pytest.fixture(scope="session")
def demo_models(tmp_path_factory):
    from skyreels_pack.cli.demo import write_demo_models

    return write_demo_models(str(tmp_path_factory.mktemp("hostile_demo_models")))


def shipped_api(name="skyreels_v2_t2v.json"):
    """A shipped workflow in API form (a dict to change and write back)."""
    from skyreels_pack.cli import workflow as wf
    from skyreels_pack.nodes.registry import NODE_CLASS_MAPPINGS

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return wf.to_api(wf.load(os.path.join(root, "workflows", name)), NODE_CLASS_MAPPINGS)


def node_of(api, class_type):
    return next(n for n in api.values() if n["class_type"] == class_type)


SMALL = ["--set", "width=32", "--set", "height=32", "--set", "num_frames=5", "--set", "steps=1"]
