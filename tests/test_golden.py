"""Parity with the official implementation: one test per golden case file, by kind.

Cases are found by globbing the golden folder and every subfolder (``$SKYREELS_GOLDEN_DIR``
may point at another tree of the same shape).  Each subfolder is a model family (top-level
files are the ``wan`` family).  Runners live in ``tests/parity/*.py``; each module declares
``FAMILY`` and exports ``RUNNERS = {kind: fn}``, where ``fn(case)`` either asserts by itself
or returns {output name: tensor} to compare with the stored outputs.

* A family that no parity module declares is not built yet: one visible skip names its folder.
* Inside a built family every case runs, and a kind without a runner fails the test.
"""
import importlib
import pkgutil

import pytest

from golden_cases import assert_close, case_files, case_id, family_of, golden_dir, load_case

import parity

RUNNERS = {}
FAMILIES = set()
for _info in pkgutil.iter_modules(parity.__path__):
    _mod = importlib.import_module("parity." + _info.name)
    RUNNERS.update(getattr(_mod, "RUNNERS", {}))
    if getattr(_mod, "FAMILY", None):
        FAMILIES.add(_mod.FAMILY)

_FILES = case_files()
_BUILT = [p for p in _FILES if family_of(p) in FAMILIES]
_PENDING = sorted({family_of(p) for p in _FILES} - FAMILIES)


def test_golden_folder_has_cases():
    assert _FILES, "no golden cases found in %s; set SKYREELS_GOLDEN_DIR" % golden_dir()


if _PENDING:    # every family built: no test at all (an empty parametrize would be a nameless skip)
    @pytest.mark.parametrize("family", _PENDING)
    def test_golden_family_not_built_yet(family):
        n = sum(1 for p in _FILES if family_of(p) == family)
        pytest.skip("golden folder %s/ (%d cases): the pack does not implement this family yet"
                    % (family, n))


@pytest.mark.parametrize("path", _BUILT, ids=case_id)
def test_golden_case(path):
    case = load_case(path)
    runner = RUNNERS.get(case.kind)
    assert runner is not None, "no runner for golden kind %r (%s, family %s)" % (
        case.kind, case_id(path), family_of(path))
    got = runner(case)
    if got is None:
        return
    assert got, "runner returned nothing to compare"
    for name, tensor in got.items():
        assert name in case.outputs, "runner produced %r, which the case does not store" % name
        assert_close("%s:%s" % (case.name, name), tensor, case.outputs[name], case.atol, case.rtol)
