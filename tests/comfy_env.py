"""A real ComfyUI and its editor for the tests: one server per test session.

The tools live beside the project in ``../shared/tools``: ``comfyhost`` runs ComfyUI (CPU) with
this pack in ``custom_nodes``; ``browser`` opens its editor in headless Chromium.  Set up once
per machine (``.ci/run`` does all of it):

    apt-get install chromium
    python3 -m venv ~/.cache/comfyhost/venv-browser && ~/.cache/comfyhost/venv-browser/bin/pip install playwright
    bash ../shared/tools/comfyhost/setup.sh

When something is missing, the tests that need it are skipped with the reason; with
``SKYREELS_REQUIRE_COMFY=1`` (set by ``.ci/run``) they fail instead.

Environment: ``COMFYHOST_EXT`` (where setup.sh put ComfyUI, default ``~/.cache/comfyhost``),
``SKYREELS_BROWSER_PYTHON`` (a python with playwright, default ``$COMFYHOST_EXT/venv-browser``),
``SKYREELS_CHROMIUM`` (default ``/usr/bin/chromium``), ``SKYREELS_COMFY_PORT`` (default: a free
port), ``SKYREELS_SHOTS`` (where the editor screenshots go, default a pytest temporary folder).
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import urllib.request
from typing import List, Optional

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOLS = os.path.normpath(os.path.join(ROOT, "..", "shared", "tools"))
COMFYHOST = os.path.join(TOOLS, "comfyhost", "run_workflow.py")
BROWSER_TOOL = os.path.join(TOOLS, "browser", "load_workflows.py")
EXT = os.environ.get("COMFYHOST_EXT") or os.path.join(os.path.expanduser("~"), ".cache", "comfyhost")
BROWSER_PYTHON = os.environ.get("SKYREELS_BROWSER_PYTHON") or os.path.join(EXT, "venv-browser", "bin", "python")
CHROMIUM = os.environ.get("SKYREELS_CHROMIUM") or "/usr/bin/chromium"
INPUTS = os.path.join(ROOT, "workflows", "inputs")
REQUIRED = os.environ.get("SKYREELS_REQUIRE_COMFY") == "1"

SETUP_HINT = ("set it up as tests/comfy_env.py says (apt-get install chromium; a venv with playwright; "
              "bash ../shared/tools/comfyhost/setup.sh), or run .ci/run")


def missing_comfyui() -> Optional[str]:
    """Why a real ComfyUI cannot run here (None when it can)."""
    if not os.path.isfile(COMFYHOST):
        return "the comfyhost tool is not at %s" % COMFYHOST
    if not os.path.isfile(os.path.join(EXT, "ComfyUI", "main.py")):
        return "ComfyUI is not set up in %s (bash ../shared/tools/comfyhost/setup.sh)" % EXT
    if not os.access(os.path.join(EXT, "venv-comfy", "bin", "python"), os.X_OK):
        return "ComfyUI's venv is missing in %s (bash ../shared/tools/comfyhost/setup.sh)" % EXT
    return None


def missing_editor() -> Optional[str]:
    """Why the real editor cannot be driven here (None when it can)."""
    why = missing_comfyui()
    if why:
        return why
    if not os.path.isfile(BROWSER_TOOL):
        return "the browser tool is not at %s" % BROWSER_TOOL
    if not os.path.isfile(CHROMIUM):
        return "Chromium is not at %s (apt-get install chromium)" % CHROMIUM
    if not os.access(BROWSER_PYTHON, os.X_OK):
        return "no python with playwright at %s (python3 -m venv ... && pip install playwright)" % BROWSER_PYTHON
    r = subprocess.run([BROWSER_PYTHON, "-c", "import playwright.sync_api"], capture_output=True, text=True)
    if r.returncode:
        return "playwright does not import in %s: %s" % (BROWSER_PYTHON, r.stderr.strip()[-300:])
    return None


def require(why: Optional[str]) -> None:
    """Skip, visibly and with the reason, or fail where the set-up was promised."""
    if why is None:
        return
    if REQUIRED:
        pytest.fail("SKYREELS_REQUIRE_COMFY=1 but %s" % why, pytrace=False)
    pytest.skip("real ComfyUI not available: %s; %s" % (why, SETUP_HINT))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A ComfyUI started by the comfyhost tool, with this pack and the demo models."""

    def __init__(self, models: str, port: Optional[int] = None):
        self.models = models
        self.own_port = port is None
        self.port = port or _free_port()
        self.run_dir = os.path.join(EXT, "runs", "port-%d" % self.port)
        self.started = False

    def base_args(self) -> List[str]:
        return [sys.executable, COMFYHOST, "--pack", ROOT, "--models", self.models, "--port", str(self.port)]

    def start(self) -> None:
        # the pack's requirements go into ComfyUI's venv first, as a user installs them
        args = self.base_args() + ["--keep-server", "--startup-timeout", "300", "--pip-install-requirements"]
        for f in sorted(os.listdir(INPUTS)):
            args += ["--input", os.path.join(INPUTS, f)]
        proc = subprocess.run(args, capture_output=True, text=True, timeout=900)
        self.started = True
        if proc.returncode:
            raise RuntimeError("ComfyUI did not start with the pack (exit %d):\n%s\n%s"
                               % (proc.returncode, proc.stdout[-4000:], proc.stderr[-4000:]))

    def stop(self) -> None:
        if not self.started:
            return
        subprocess.run([sys.executable, COMFYHOST, "--port", str(self.port), "--stop"], capture_output=True,
                       timeout=120)
        if self.own_port:  # a folder of our own, made for this session only
            shutil.rmtree(self.run_dir, ignore_errors=True)

    def clear_outputs(self) -> None:
        """Empty the server's output folder (made for this session), so that a test module's runs
        start from nothing: no video of an earlier module, no chunks a DF run would resume from.
        Only a folder of our own: with SKYREELS_COMFY_PORT the outputs stay."""
        if not self.own_port:
            return
        folder = os.path.join(self.run_dir, "output")
        for entry in os.listdir(folder) if os.path.isdir(folder) else []:
            p = os.path.join(folder, entry)
            shutil.rmtree(p) if os.path.isdir(p) and not os.path.islink(p) else os.unlink(p)

    @property
    def log_path(self) -> str:
        """The server's log (what ComfyUI and the pack print), written by the comfyhost tool."""
        return os.path.join(self.run_dir, "server.log")

    def log_size(self) -> int:
        return os.path.getsize(self.log_path) if os.path.isfile(self.log_path) else 0

    def log_since(self, offset: int) -> str:
        """What the server logged after ``offset`` bytes (from :meth:`log_size`)."""
        with open(self.log_path, "rb") as f:
            f.seek(offset)
            return f.read().decode("utf-8", errors="replace")

    def get(self, path: str):
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (self.port, path), timeout=60) as r:
            return json.load(r)

    def output_file(self, item: dict) -> str:
        """The file of one ``ui`` output entry ({filename, subfolder, type})."""
        return os.path.join(self.run_dir, item.get("type") or "output", item.get("subfolder") or "",
                            item["filename"])


NOTES: List[str] = []


def report(line: str) -> None:
    """A line for the end of the session's output (conftest prints them): where the screenshots
    are, how long the editor took."""
    NOTES.append(line)
