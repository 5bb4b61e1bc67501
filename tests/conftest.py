import importlib.util
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_spec = importlib.util.spec_from_file_location("_skyreels_main", os.path.join(ROOT, "__main__.py"))
_main = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_main)
_main.load_pack(ROOT)

from skyreels_pack import host  # noqa: E402

host.set_quiet(True)

# The test models are tiny: one thread avoids thread hand-off costs that dominate tiny ops
# (and stalls when the machine is busy).  SKYREELS_TEST_THREADS overrides.
import torch  # noqa: E402

torch.set_num_threads(int(os.environ.get("SKYREELS_TEST_THREADS", "1")))


@pytest.fixture(autouse=True)
def _deterministic():
    import torch

    torch.manual_seed(0)
    host.clear_interrupt()
    yield


# Fixtures of the hostile-input tests (tests/test_hostile_*.py): the host's folders for one
# test, and the demo models once per session (the real-ComfyUI tests use them too).
from hostile_util import demo_models, folders  # noqa: E402, F401


@pytest.fixture(scope="session")
def editor_ready():
    """Chromium and playwright for the real editor (checked before a server is started)."""
    import comfy_env

    comfy_env.require(comfy_env.missing_editor())


@pytest.fixture(scope="session")
def comfy_server(demo_models):  # noqa: F811 (the fixture imported above)
    """One real ComfyUI (comfyhost) with this pack and the demo models for the whole session;
    skipped with the reason where it is not set up (a failure under SKYREELS_REQUIRE_COMFY=1)."""
    import comfy_env

    comfy_env.require(comfy_env.missing_comfyui())
    port = os.environ.get("SKYREELS_COMFY_PORT")
    server = comfy_env.Server(demo_models, int(port) if port else None)
    try:
        server.start()
        yield server
    finally:
        server.stop()


def pytest_terminal_summary(terminalreporter):
    import comfy_env

    for line in comfy_env.NOTES:
        terminalreporter.write_line(line)
