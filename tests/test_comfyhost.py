"""Every shipped workflow inside a real ComfyUI server (../shared/tools/comfyhost), through its
HTTP API, on the demo models shrunk by the workflow's SMOKE settings.

Uses the session's ComfyUI (``comfy_server`` in conftest.py); skipped with the reason where
ComfyUI is not set up, a failure under ``SKYREELS_REQUIRE_COMFY=1`` (``.ci/run``).
"""
import json
import os
import subprocess

import pytest
import smoke

from skyreels_pack.cli import workflow as wf
from skyreels_pack.cli.shipped import SMOKE
from skyreels_pack.media.video_io import probe_video

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _small(name, folder):
    data = wf.load(os.path.join(ROOT, "workflows", name))
    settings = smoke.items(name)
    assert smoke.apply(data, settings) >= len(settings)
    p = folder / name
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
