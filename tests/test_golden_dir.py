"""``$SKYREELS_GOLDEN_DIR`` changes which golden cases run, and nothing else.

Only the case-discovery tests (``tests/test_golden.py``) read it; fixtures that borrow tiny
weights from golden files take them from the public folder (``golden_cases.DEFAULT_DIR``).  The
suite is collected twice, with the public folder and with a folder of other case files (in
subfolders too): every test outside ``test_golden.py`` must be the same.
"""
import glob
import json
import os
import re
import shutil
import subprocess
import sys

from golden_cases import DEFAULT_DIR

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GOLDEN_TESTS = "tests/test_golden.py::"


def _collect(golden=None):
    env = dict(os.environ)
    env.pop("SKYREELS_GOLDEN_DIR", None)
    if golden:
        env["SKYREELS_GOLDEN_DIR"] = golden
    proc = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "tests"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return {line.strip() for line in proc.stdout.splitlines() if "::" in line}


def _other_cases(folder):
    """Two public top-level cases under other names, and cases of two families no pack builds
    (names no family will take), one of them three levels down."""
    public = sorted(glob.glob(os.path.join(DEFAULT_DIR, "*.json")))[:1] + \
        sorted(glob.glob(os.path.join(DEFAULT_DIR, "*.safetensors")))[:1]
    assert len(public) == 2, "the public golden folder %s has no cases" % DEFAULT_DIR
    for i, src in enumerate(public):
        shutil.copy(src, os.path.join(folder, "mine_%d_%s" % (i, os.path.basename(src))))
    deep = os.path.join(folder, "zz_unbuilt", "deep", "er")
    os.makedirs(deep)
    with open(os.path.join(deep, "made_up.json"), "w") as f:
        json.dump({"kind": "made_up_kind"}, f)
    os.makedirs(os.path.join(folder, "zz_newfamily"))
    with open(os.path.join(folder, "zz_newfamily", "x.json"), "w") as f:
        json.dump({"kind": "x"}, f)
    return [os.path.basename(p) for p in public]


def test_only_case_discovery_depends_on_the_golden_dir(tmp_path):
    names = _other_cases(str(tmp_path))
    public = _collect()
    other = _collect(str(tmp_path))
    assert {t for t in public if not t.startswith(GOLDEN_TESTS)} == \
        {t for t in other if not t.startswith(GOLDEN_TESTS)}
    golden = {t[len(GOLDEN_TESTS):] for t in other if t.startswith(GOLDEN_TESTS)}
    assert golden == {"test_golden_folder_has_cases",
                      "test_golden_case[mine_0_%s]" % names[0], "test_golden_case[mine_1_%s]" % names[1],
                      "test_golden_family_not_built_yet[zz_unbuilt]", "test_golden_family_not_built_yet[zz_newfamily]"}
    assert {t for t in public if t.startswith(GOLDEN_TESTS)} != {GOLDEN_TESTS + t for t in golden}


def test_no_other_test_reads_the_golden_dir_setting():
    allowed = {"golden_cases.py", "test_golden.py", "test_golden_dir.py"}
    pattern = re.compile(r"SKYREELS_GOLDEN_DIR|golden_dir\(")
    readers = []
    for path in glob.glob(os.path.join(ROOT, "tests", "**", "*.py"), recursive=True):
        if os.path.basename(path) in allowed:
            continue
        with open(path, encoding="utf-8") as f:
            if pattern.search(f.read()):
                readers.append(os.path.relpath(path, ROOT))
    assert readers == [], "these read $SKYREELS_GOLDEN_DIR; borrow from golden_cases.DEFAULT_DIR instead"
