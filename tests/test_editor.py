"""Every shipped workflow in the real ComfyUI editor, as an artist meets it.

With ``../shared/tools/browser/load_workflows.py`` (headless Chromium) on the session's ComfyUI
(``comfy_server``), every file of ``workflows/`` (every family's, found through
``cli.shipped.SHIPPED``):

1. is loaded into the editor's canvas the way a dropped file is; it must load clean: no missing
   node, no widget value out of place (wrong type, outside its list or range), no bad link, no
   dialog, no console error;
2. is run from the Run button (the editor's own graph-to-prompt) on the demo models, shrunk by
   the workflow's SMOKE settings (``--set`` applies to every workflow of one call, so only
   workflows whose settings do not clash share a call; settings aimed at one node are written
   into a copy of the file); the run must succeed and write a video of the SMOKE frame count;
3. the prompt the editor sent must be exactly what our own UI reader (``cli.workflow.to_api``)
   makes of the same file: the two read widget values alike;
4. no node covers another (title bars included), neither after loading, with the previews of
   loaded images and videos, nor with a result video under each output node as after a run
   (``tests/editor_probe.py``).

Screenshots of the canvas after loading and after each run go to a folder printed at the end
of the session (``SKYREELS_SHOTS`` chooses it).  Skipped with the reason where the editor
cannot run; a failure under ``SKYREELS_REQUIRE_COMFY=1`` (``.ci/run``).
"""
import json
import os
import subprocess
import time

import comfy_env
import pytest
import smoke

from skyreels_pack.cli import workflow as wf
from skyreels_pack.cli.shipped import SHIPPED, SMOKE
from skyreels_pack.cli.shipped.wan_v2 import EXAMPLE_IMAGE
from skyreels_pack.cli.workflow_builder import Node, build, dumps
from skyreels_pack.media.video_io import probe_video
from skyreels_pack.nodes.registry import NODE_CLASS_MAPPINGS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKFLOWS = os.path.join(ROOT, "workflows")
NAMES = sorted(SHIPPED)
PROBE = os.path.join(ROOT, "tests", "editor_probe.py")

# The browser resolves no host but 127.0.0.1, so the editor's own release check
# (api.comfy.org) fails with this line; nothing of the pack is ever loaded from elsewhere.
IGNORED_CONSOLE = ("Failed to load resource: net::ERR_NAME_NOT_RESOLVED",)


WARMUP = "_editor_warmup.json"


def _warmup_file(folder):
    """A tiny workflow (load the example image, save it as a one-frame video) that goes first in
    every browser session: the tool gives the editor a fixed 3 s to start, and on a busy machine
    the editor may still be loading its node list or its default graph over the first workflow."""
    graph = [Node(1, "SkyReelsLoadImage", (40, 40), {"image": EXAMPLE_IMAGE}),
             Node(2, "SkyReelsSaveVideo", (420, 40), {"filename_prefix": "SkyReels/warmup"}, {"images": (1, 0)})]
    path = os.path.join(folder, WARMUP)
    with open(path, "w", encoding="utf-8") as f:
        f.write(dumps(build(graph, NODE_CLASS_MAPPINGS, file_name=WARMUP)))
    return path


def _browser(server, files, extra, timeout, attempts=4):
    """Run the browser tool; {file name: its report}, seconds.  The tool starts on a fixed 3 s
    wait; on a busy machine the editor may not have made its graph by then and the tool dies in
    its first check, before it queued anything: that start is tried again (and reported)."""
    cmd = [comfy_env.BROWSER_PYTHON, comfy_env.BROWSER_TOOL, "--port", str(server.port),
           "--chromium", comfy_env.CHROMIUM] + extra + [_warmup_file(server.run_dir)] + files
    for attempt in range(1, attempts + 1):
        before = set(server.get("/history"))
        t0 = time.time()
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        seconds = time.time() - t0
        try:
            report = json.loads(proc.stdout[proc.stdout.index("["):])
            return {r["workflow"]: r for r in report if r["workflow"] != WARMUP}, seconds
        except ValueError:
            pass
        early = "Page.evaluate" in proc.stderr and set(server.get("/history")) == before
        if not early or attempt == attempts:
            pytest.fail("the browser tool gave no report (exit %d):\n%s\n%s"
                        % (proc.returncode, proc.stdout[-3000:], proc.stderr[-3000:]))
        comfy_env.report("editor: the browser tool died while the editor was starting (%s); started it again"
                         % proc.stderr.strip().splitlines()[-1][:200])


@pytest.fixture(scope="module")
def editor(editor_ready, comfy_server, tmp_path_factory):
    shots = os.environ.get("SKYREELS_SHOTS") or str(tmp_path_factory.mktemp("editor_shots"))
    comfy_env.report("editor screenshots (loaded/: the shipped files; run/: before and after each run): %s" % shots)
    return comfy_server, shots


@pytest.fixture(scope="module")
def loaded(editor):
    """Every shipped file loaded into the editor as it is, in one browser session: {file name: report}."""
    server, shots = editor
    files = [os.path.join(WORKFLOWS, n) for n in NAMES]
    reports, seconds = _browser(server, files, ["--shots", os.path.join(shots, "loaded")], 180 + 30 * len(files))
    comfy_env.report("editor: %d workflows loaded in %.0f s (%.1f s each, browser start included)"
                     % (len(files), seconds, seconds / len(files)))
    return reports


def _widget_names(path):
    with open(path, encoding="utf-8") as f:
        nodes = json.load(f)["nodes"]
    return {name for n in nodes if n["type"] in NODE_CLASS_MAPPINGS
            for name, _ in wf.widget_inputs(NODE_CLASS_MAPPINGS[n["type"]])}


def _share_sessions(jobs):
    """Workflows that can share one browser session.  The tool's ``--set`` sets a widget on every
    node of every workflow of the call, so a workflow joins a session only when every setting of
    each side either is the other's too, with the same value, or names no widget of the other."""
    def fit(a, b):
        (pa, na), (pb, nb) = a, b
        return all(pb[k] == v if k in pb else k not in nb for k, v in pa.items()) and \
            all(k in pa or k not in na for k in pb)

    sessions = []
    for job in jobs:
        for members in sessions:
            if all(fit(job[2:], m[2:]) for m in members):
                members.append(job)
                break
        else:
            sessions.append([job])
    return sessions


@pytest.fixture(scope="module")
def runs(editor, tmp_path_factory):
    """Every SMOKE workflow run from the editor's Run button: {file name: (report, the server's
    history entry)}.  Settings for every node with the widget go through the tool's ``--set``
    (workflows share a browser session where the settings allow it); settings for one node type or title
    (``NODE.INPUT=VALUE``), which the tool cannot aim, are written into a copy of the file first."""
    server, shots = editor
    server.clear_outputs()
    copies = tmp_path_factory.mktemp("editor_smoke_copies")
    jobs = []
    for name in sorted(SMOKE):
        settings = smoke.items(name)
        plain = {inp: v for node, inp, v in settings if node is None}
        aimed = [s for s in settings if s[0] is not None]
        path = os.path.join(WORKFLOWS, name)
        if aimed:
            data = wf.load(path)
            assert smoke.apply(data, aimed) >= len(aimed), name
            path = str(copies / name)
            with open(path, "w", encoding="utf-8") as f:
                json.dump(data, f)
        jobs.append((name, path, plain, _widget_names(path)))
    out = {}
    for members in _share_sessions(jobs):
        before = set(server.get("/history"))
        union = {}
        for _, _, plain, _ in members:
            union.update(plain)
        sets = [a for k, v in union.items() for a in ("--set", "%s=%s" % (k, json.dumps(v)))]
        files = [path for _, path, _, _ in members]
        reports, seconds = _browser(server, files, ["--queue", "--timeout", "600", "--shots",
                                                    os.path.join(shots, "run")] + sets, 180 + 700 * len(files))
        for name, _, _, _ in members:
            run = (reports.get(name) or {}).get("run") or {}
            comfy_env.report("editor: %s: ran in %s s (Run pressed to video written)" % (name, run.get("seconds")))
        comfy_env.report("editor: %d workflow(s) in one browser session: %.0f s in all"
                         % (len(members), seconds))
        history = server.get("/history")
        by_id = {}
        for pid, entry in history.items():
            if pid in before:
                continue
            extra_data = entry["prompt"][3] if len(entry.get("prompt", [])) > 3 else {}
            wid = ((extra_data.get("extra_pnginfo") or {}).get("workflow") or {}).get("id")
            by_id[wid] = entry
        for name, path, _, _ in members:
            with open(path, encoding="utf-8") as f:
                wid = json.load(f)["id"]
            out[name] = (reports.get(name), by_id.get(wid))
    return out


def test_every_shipped_workflow_is_covered():
    assert sorted(f for f in os.listdir(WORKFLOWS) if f.endswith(".json")) == NAMES == sorted(SMOKE)


@pytest.mark.parametrize("name", NAMES)
def test_loads_clean_in_the_editor(name, loaded):
    r = loaded.get(name)
    assert r is not None, "the editor did not report on %s" % name
    problems = {k: r.get(k) for k in ("missing", "widget_problems", "bad_links", "dialogs") if r.get(k)}
    console = [e for e in r.get("console_errors", []) if e not in IGNORED_CONSOLE]
    if console:
        problems["console_errors"] = console
    assert not problems, "%s in the editor: %s" % (name, json.dumps(problems, indent=1))
    with open(os.path.join(WORKFLOWS, name), encoding="utf-8") as f:
        data = json.load(f)
    assert r["nodes"] == len(data["nodes"])


@pytest.mark.parametrize("name", sorted(SMOKE))
def test_runs_from_the_run_button(name, runs, editor):
    server, _ = editor
    report, entry = runs[name]
    assert report is not None, "the editor did not report on %s" % name
    run = report.get("run")
    assert run is not None, "not queued: the workflow did not load clean: %s" % json.dumps(report, indent=1)[-3000:]
    assert run["status"] == "success", json.dumps(run, indent=1)
    own = {inp for node, inp, _ in smoke.items(name) if node is None}
    assert all(run["set"].get(k, 0) >= 1 for k in own), "a SMOKE setting found no widget: %s" % run["set"]
    assert entry is not None, "the server has no history of the editor's run"
    writers = [nid for nid, out in entry["outputs"].items()
               if any(item.get("filename", "").endswith(".mp4") for item in out.get("images", []))]
    assert len(writers) == 1, entry["outputs"]
    cached = [str(x) for kind, data in entry.get("status", {}).get("messages", []) if kind == "execution_cached"
              for x in data.get("nodes", [])]
    assert writers[0] not in cached, "the video came from ComfyUI's cache, not from this run"
    videos = [server.output_file(item) for item in entry["outputs"][writers[0]]["images"]]
    info = probe_video(videos[0])
    assert info["frames"] == smoke.frames(name)
    assert (info["width"], info["height"]) == smoke.size(name)
    assert abs(info["fps"] - smoke.fps(name)) < 1e-3


@pytest.mark.parametrize("name", sorted(SMOKE))
def test_editor_prompt_is_what_our_reader_reads(name, runs):
    """The editor's graph-to-prompt and ``cli.workflow.to_api`` agree on every input of every node."""
    _, entry = runs[name]
    assert entry is not None, "no run to compare"
    sent = entry["prompt"][2]
    data = wf.load(os.path.join(WORKFLOWS, name))
    smoke.apply(data, smoke.items(name))
    ours = wf.to_api(data, NODE_CLASS_MAPPINGS)
    assert sorted(sent) == sorted(ours)
    for nid, node in ours.items():
        assert sent[nid]["class_type"] == node["class_type"]
        # the editor also sends the values of its own widgets (e.g. "video-preview"); the server
        # drops what a node does not declare
        types = NODE_CLASS_MAPPINGS[node["class_type"]].INPUT_TYPES()
        declared = set(types.get("required", {})) | set(types.get("optional", {}))
        inputs = {k: v for k, v in sent[nid]["inputs"].items() if k in declared}
        assert inputs == node["inputs"], "node %s (%s)" % (nid, node["class_type"])


@pytest.fixture(scope="module")
def layout(editor):
    """Every shipped workflow in the editor with the previews of its loaded media, and again
    with a result video under each output node as after a run (tests/editor_probe.py)."""
    server, _ = editor
    files = [os.path.join(WORKFLOWS, n) for n in NAMES]
    proc = subprocess.run([comfy_env.BROWSER_PYTHON, PROBE, "layout", "--port", str(server.port),
                           "--chromium", comfy_env.CHROMIUM] + files,
                          capture_output=True, text=True, timeout=180 + 30 * len(files))
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout)


@pytest.mark.parametrize("name", NAMES)
def test_nothing_covers_anything_in_the_editor(name, layout):
    r = layout[name]
    assert r["result_nodes"], "no output node to show a result"
    assert all(g > 0 for g in r["grew"].values()), "no result preview appeared: %s" % r["grew"]
    assert r["overlaps_loaded"] == [], "overlapping nodes after loading"
    assert r["overlaps_after_run"] == [], "the result preview covers other nodes"
