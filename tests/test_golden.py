"""Parity with the official implementation: one test per golden case file, by kind.

Runners live in ``tests/parity/*.py``; each module exports ``RUNNERS = {kind: fn}``, where
``fn(case)`` either asserts by itself or returns {output name: tensor} to compare with the
stored outputs.  A kind without a runner fails the test.
"""
import importlib
import os
import pkgutil

import pytest

from golden_cases import assert_close, case_files, load_case

import parity

RUNNERS = {}
for _info in pkgutil.iter_modules(parity.__path__):
    _mod = importlib.import_module("parity." + _info.name)
    RUNNERS.update(getattr(_mod, "RUNNERS", {}))


def test_golden_folder_has_cases():
    assert case_files(), "no golden cases found; set SKYREELS_GOLDEN_DIR"


@pytest.mark.parametrize("path", case_files(), ids=os.path.basename)
def test_golden_case(path):
    case = load_case(path)
    runner = RUNNERS.get(case.kind)
    assert runner is not None, "no runner for golden kind %r (%s)" % (case.kind, case.name)
    got = runner(case)
    if got is None:
        return
    assert got, "runner returned nothing to compare"
    for name, tensor in got.items():
        assert name in case.outputs, "runner produced %r, which the case does not store" % name
        assert_close("%s:%s" % (case.name, name), tensor, case.outputs[name], case.atol, case.rtol)
