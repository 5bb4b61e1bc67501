"""The shipped workflows inside a real ComfyUI server (../shared/tools/comfyhost).

Opt-in: set SKYREELS_COMFYHOST=1 (it starts a ComfyUI server, about a minute per run).
Needs the comfyhost tool set up (``bash ../shared/tools/comfyhost/setup.sh``).
"""
import json
import os
import subprocess
import sys

import pytest

from skyreels_pack.cli import workflow as wf
from skyreels_pack.cli.demo import write_demo_models
from skyreels_pack.nodes.registry import NODE_CLASS_MAPPINGS
from skyreels_pack.cli.shipped import SMOKE, SMOKE_COMMON

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOL = os.path.normpath(os.path.join(ROOT, "..", "shared", "tools", "comfyhost", "run_workflow.py"))
INPUTS = os.path.join(ROOT, "workflows", "inputs")

pytestmark = pytest.mark.skipif(os.environ.get("SKYREELS_COMFYHOST") != "1" or not os.path.exists(TOOL),
                                reason="real-ComfyUI runs are opt-in: SKYREELS_COMFYHOST=1 with comfyhost set up")


def _small(name, tmp_path):
    data = wf.load(os.path.join(ROOT, "workflows", name))
    extra = SMOKE[name][0]
    count = 0
    for item in SMOKE_COMMON + extra:
        k, v = item.split("=", 1)
        node, _, inp = k.rpartition(".")  # NODE.INPUT: only nodes of that type or title
        nodes = [n for n in data["nodes"] if not node or node in (n.get("type"), n.get("title"))]
        count += wf.set_ui_widgets({"nodes": nodes}, NODE_CLASS_MAPPINGS, {inp: json.loads(v)})
    assert count >= 3
    p = tmp_path / name
    p.write_text(json.dumps(data))
    return str(p)


def test_shipped_workflows_run_in_comfyui(tmp_path):
    models = write_demo_models(str(tmp_path / "models"))
    # the pack's requirements go into ComfyUI's venv, as a user installs them (mediapipe for A1)
    cmd = [sys.executable, TOOL, "--pack", ROOT, "--models", models, "--timeout", "900", "--pip-install-requirements"]
    for f in sorted(os.listdir(INPUTS)):
        cmd += ["--input", os.path.join(INPUTS, f)]
    for name in sorted(SMOKE):
        cmd += ["--workflow", _small(name, tmp_path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
