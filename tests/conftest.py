import importlib.util
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_spec = importlib.util.spec_from_file_location("_skyreels_main", os.path.join(ROOT, "__main__.py"))
_main = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_main)
_main.load_pack(ROOT)

import skyreels_pack  # noqa: E402
from skyreels_pack import host  # noqa: E402

host.set_quiet(True)


@pytest.fixture(autouse=True)
def _deterministic():
    import torch

    torch.manual_seed(0)
    host.clear_interrupt()
    yield
