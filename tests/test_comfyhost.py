"""Every shipped workflow inside a real ComfyUI server (../shared/tools/comfyhost), through its
HTTP API, on the demo models shrunk by the workflow's SMOKE settings; and the T2V workflows on the
demo GGUF DiT (city96's layout, every quant type), alone and with a LoRA stacked on it.

Uses the session's ComfyUI (``comfy_server`` in conftest.py); skipped with the reason where
ComfyUI is not set up, a failure under ``SKYREELS_REQUIRE_COMFY=1`` (``.ci/run``).
"""
import json
import os
import subprocess

import pytest
import smoke

from skyreels_pack.cli import workflow as wf
from skyreels_pack.cli.demo.loras import GGUF_TYPES
from skyreels_pack.cli.shipped import EXTRA_SMOKE, MODELS, SMOKE
from skyreels_pack.media.video_io import probe_video

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _small(name, folder, extra=(), file_name=None):
    data = wf.load(os.path.join(ROOT, "workflows", name))
    settings = smoke.items(name, extra)
    assert smoke.apply(data, settings) >= len(settings)
    p = folder / (file_name or name)
    p.write_text(json.dumps(data))
    return str(p)


@pytest.fixture(scope="module")
def api_runs(comfy_server, tmp_path_factory):
    """All SMOKE workflows, run once through the server's API: {file name: the tool's record}."""
    comfy_server.clear_outputs()
    folder = tmp_path_factory.mktemp("comfyhost_workflows")
    cmd = comfy_server.base_args() + ["--timeout", "900"]
    for name in sorted(SMOKE):
        cmd += ["--workflow", _small(name, folder)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    try:
        report = json.loads(proc.stdout[proc.stdout.index("{"):])
    except ValueError:
        pytest.fail("comfyhost gave no report (exit %d):\n%s" % (proc.returncode, proc.stderr[-4000:]))
    runs = {os.path.basename(r["workflow"]): r for r in report.get("workflows", [])}
    return runs, proc


@pytest.mark.parametrize("name", sorted(SMOKE))
def test_shipped_workflow_runs_in_comfyui(name, api_runs):
    runs, proc = api_runs
    assert name in runs, proc.stderr[-4000:]
    rec = runs[name]
    assert rec["status"] == "success" and not rec.get("node_errors"), json.dumps(rec, indent=1)[-4000:]
    videos = [f for f in rec.get("files", []) if f["path"].endswith(".mp4")]
    assert len(videos) == 1 and videos[0]["exists"], rec.get("files")
    info = probe_video(videos[0]["path"])
    assert info["frames"] == smoke.frames(name)
    assert (info["width"], info["height"]) == smoke.size(name)
    assert abs(info["fps"] - smoke.fps(name)) < 1e-3


# The EXTRA_SMOKE runs on the demo GGUF T2V DiT: the T2V workflow, and the distill-LoRA workflow
# with a LoRA made for that DiT stacked on it.
GGUF_LABELS = ("gguf_t2v", "gguf_t2v_lora")


@pytest.fixture(scope="module")
def gguf_runs(comfy_server, tmp_path_factory):
    """Each GGUF run through the server's API, on its own: {label: (the tool's record, what the
    server logged during the run)}."""
    folder = tmp_path_factory.mktemp("comfyhost_gguf")
    out = {}
    for label in GGUF_LABELS:
        name, extra, _frames = EXTRA_SMOKE[label]
        path = _small(name, folder, extra, file_name=label + ".json")
        start = comfy_server.log_size()
        cmd = comfy_server.base_args() + ["--timeout", "900", "--workflow", path]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
        try:
            report = json.loads(proc.stdout[proc.stdout.index("{"):])
        except ValueError:
            pytest.fail("comfyhost gave no report for %s (exit %d):\n%s" % (label, proc.returncode, proc.stderr[-4000:]))
        runs = report.get("workflows", [])
        assert len(runs) == 1, proc.stderr[-4000:]
        out[label] = (runs[0], comfy_server.log_since(start))
    return out


@pytest.mark.parametrize("label", GGUF_LABELS)
def test_gguf_dit_runs_in_comfyui(label, gguf_runs):
    name, _extra, frames = EXTRA_SMOKE[label]
    rec, log = gguf_runs[label]
    assert rec["status"] == "success" and not rec.get("node_errors"), json.dumps(rec, indent=1)[-4000:]
    videos = [f for f in rec.get("files", []) if f["path"].endswith(".mp4")]
    assert len(videos) == 1 and videos[0]["exists"], rec.get("files")
    info = probe_video(videos[0]["path"])
    assert info["frames"] == frames
    assert (info["width"], info["height"]) == smoke.size(name)

    # the DiT loader inside ComfyUI read the .gguf file and kept its quantized tensors: its log
    # line names the file and every GGUF type the demo file holds
    gguf_name = MODELS["t2v_gguf"][1]
    loaded = [line for line in log.splitlines() if "[SkyReels] loaded " in line and gguf_name in line]
    assert loaded, "no DiT loader line naming %s in the server log:\n%s" % (gguf_name, log[-4000:])
    assert "GGUF tensors: " in loaded[-1], loaded[-1]
    types = {part.split()[0] for part in loaded[-1].split("GGUF tensors: ", 1)[1].split(", ")}
    assert set(GGUF_TYPES) <= types, loaded[-1]
    if label == "gguf_t2v_lora":  # every layer of the LoRA applies to the GGUF DiT
        lora = MODELS["gguf_lora"][1]
        lines = [line for line in log.splitlines() if lora in line and " layers apply" in line]
        assert lines, "no LoRA line naming %s in the server log:\n%s" % (lora, log[-4000:])
        applied, total = (int(v) for v in lines[-1].split("): ", 1)[1].split(" layers apply")[0].split(" of "))
        assert applied == total > 0, lines[-1]
