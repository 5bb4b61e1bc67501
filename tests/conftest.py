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
# test, and the demo models once per session.
from hostile_util import demo_models, folders  # noqa: E402, F401
