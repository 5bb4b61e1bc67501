"""The pack's front-end extension (``web/skyreels_frames.js``, served because ``__init__.py``
declares ``WEB_DIRECTORY``) in the real editor: every ``num_frames`` widget of the pack shows the
video's length in seconds, at the fps the graph will write.

Drives the editor with ``tests/editor_probe.py frames`` (headless Chromium) on the session's
ComfyUI; skipped with the reason where the editor cannot run, a failure under
``SKYREELS_REQUIRE_COMFY=1`` (``.ci/run``).
"""
import json
import os
import subprocess

import comfy_env
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "tests", "editor_probe.py")


def test_web_directory_is_declared_and_shipped():
    from skyreels_pack import WEB_DIRECTORY

    folder = os.path.join(ROOT, WEB_DIRECTORY)
    assert sorted(f for f in os.listdir(folder) if f.endswith(".js")) == ["skyreels_frames.js"]


@pytest.fixture(scope="module")
def labels(editor_ready, comfy_server):
    files = [os.path.join(ROOT, "workflows", n) for n in ("skyreels_v2_t2v.json", "skyreels_v2_df_10s_sync.json")]
    proc = subprocess.run([comfy_env.BROWSER_PYTHON, SCRIPT, "frames", "--port", str(comfy_server.port),
                           "--chromium", comfy_env.CHROMIUM] + files, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout)


def test_extension_is_loaded_without_errors(labels):
    assert labels["extension"] is True
    assert labels["console_errors"] == []


def test_seconds_follow_frames_and_fps(labels):
    # t2v: 97 frames; no fps on the latent node or upstream: Save Video's 24 fps downstream
    assert labels["t2v"] == {"SkyReelsEmptyLatent": "num_frames (4.0 s)"}
    assert labels["t2v_241"] == {"SkyReelsEmptyLatent": "num_frames (10.0 s)"}
    assert labels["t2v_241_save_12fps"] == {"SkyReelsEmptyLatent": "num_frames (20.1 s)"}
    # DF: 257 frames at the options node's fps
    assert labels["df"] == {"SkyReelsDFSampler": "num_frames (10.7 s)"}
    assert labels["df_options_16fps"] == {"SkyReelsDFSampler": "num_frames (16.1 s)"}


def test_label_is_not_saved_into_the_workflow(labels):
    (node,) = labels["saved"]
    assert node["widgets_values"][2] == 257
    slot = next(i for i in node["inputs"] if i["name"] == "num_frames")
    assert not slot.get("label")
