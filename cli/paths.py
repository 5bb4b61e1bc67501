"""The pack's own folders, below every other module of ``cli/`` (the shipped workflows' input
writers read the example inputs; the command line serves them to headless runs)."""
from __future__ import annotations

import os

PACK_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKFLOWS = os.path.join(PACK_DIR, "workflows")
EXAMPLE_INPUTS = os.path.join(WORKFLOWS, "inputs")
