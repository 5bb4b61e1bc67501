"""The workflows shipped in ``workflows/``, described as small graphs, one module per family.

Each family module exports:

* ``SHIPPED``: {file name: function returning the graph (a list of Node / Note)};
* ``MODELS``: {key: (ComfyUI models subfolder, name)} of the model files its workflows name
  (the demo models use the same names, in the same formats as the real files);
* ``SMOKE``: {file name: (["INPUT=VALUE", ...], frames[, fps])}: the CPU-sized run of the tests
  (besides width=128, height=96, steps=3), the frame count of the video it writes and its
  frame rate (24 when not given);
* optionally ``EXTRA_SMOKE``: {label: (file name, ["INPUT=VALUE", ...], frames)}: more runs of
  any family's workflow with other settings or models (on top of its ``SMOKE`` entry), e.g.
  the T2V workflow on a GGUF DiT;

Example media the workflows load are drawn by the writers in ``INPUT_WRITERS``
(``python . build-workflows --inputs``).

``python . build-workflows`` rewrites the JSON files from these descriptions; a test checks
that the files on disk are exactly what these modules produce.
"""
from __future__ import annotations

import os
from typing import Dict, List

from ..workflow_builder import build, dumps
from . import (a1, a1_driver, a1_driver_inputs, a1_inputs, avatar, avatar_inputs, extension, extension_inputs, loras,
               refs, refs_inputs, v1, wan_v2, wan_v2_inputs)

FAMILIES = (wan_v2, refs, extension, loras, a1, a1_driver, v1, avatar)
INPUT_WRITERS = (wan_v2_inputs.write_example_inputs, refs_inputs.write_example_inputs,
                 extension_inputs.write_example_inputs, a1_inputs.write_example_inputs,
                 a1_driver_inputs.write_example_inputs, avatar_inputs.write_example_inputs)

SHIPPED: Dict = {}
MODELS: Dict = {}
SMOKE: Dict = {}
EXTRA_SMOKE: Dict = {}
for _fam in FAMILIES:
    for _mine, _all in ((_fam.SHIPPED, SHIPPED), (_fam.MODELS, MODELS), (_fam.SMOKE, SMOKE),
                        (getattr(_fam, "EXTRA_SMOKE", {}), EXTRA_SMOKE)):
        _clash = set(_mine) & set(_all)
        assert not _clash, "%s repeats %s" % (_fam.__name__, sorted(_clash))
        _all.update(_mine)

# The CPU-sized settings every smoke run uses (workflow overrides come on top).
SMOKE_COMMON = ["width=128", "height=96", "steps=3"]


def render_all(classes) -> Dict[str, str]:
    return {name: dumps(build(fn(), classes, file_name=name)) for name, fn in SHIPPED.items()}


def write_all(folder: str, classes) -> List[str]:
    os.makedirs(folder, exist_ok=True)
    paths = []
    for name, text in render_all(classes).items():
        p = os.path.join(folder, name)
        with open(p, "w", encoding="utf-8") as f:
            f.write(text)
        paths.append(p)
    return paths


def write_example_inputs(folder: str) -> List[str]:
    paths = []
    for writer in INPUT_WRITERS:
        paths += writer(folder)
    return paths
