"""Looks at things in the real editor that ../shared/tools/browser does not report.

    BROWSER_PYTHON tests/editor_probe.py layout --port P [--chromium PATH] [--video NAME] WF.json ...
    BROWSER_PYTHON tests/editor_probe.py frames --port P [--chromium PATH] T2V.json DF.json

``layout``: loads each workflow, lets the previews of loaded images and videos appear, then shows
a result video under every output node the way the editor does when a run finishes (the
``executed`` event, with the input video NAME as the result), and reports every pair of nodes
whose boxes (title bar included) overlap, before and after.

``frames``: checks the pack's extension (web/skyreels_frames.js): the num_frames labels the editor
draws as frames and fps change, and what a saved workflow keeps.

Run by tests/test_editor.py and tests/test_web_extension.py with a python that has playwright;
prints one JSON object.
"""
import argparse
import json
import sys

from playwright.sync_api import sync_playwright

READY = """() => {
  const app = window.app;
  const LG = window.LiteGraph;
  return !!(app && app.graph && app.canvas && LG && LG.registered_node_types
            && Object.keys(LG.registered_node_types).some((t) => t.startsWith('SkyReels')));
}"""

DRAW = "() => { window.app.graph.setDirtyCanvas(true, true); window.app.canvas.draw(true, true); }"

LOAD = "async (d) => { await window.app.loadGraphData(d, true, true, 'probe'); }"

BOXES = """() => {
  const app = window.app;
  const LG = window.LiteGraph;
  app.graph.setDirtyCanvas(true, true);
  app.canvas.draw(true, true);
  const title = LG.NODE_TITLE_HEIGHT || 30;
  return (app.graph._nodes || app.graph.nodes).map((n) => ({
    id: n.id, type: n.type, title: n.title,
    output: !!(n.constructor.nodeData && n.constructor.nodeData.output_node),
    box: [n.pos[0], n.pos[1] - title, n.pos[0] + n.size[0], n.pos[1] + n.size[1]]}));
}"""

SHOW_RESULT = """(video) => {
  const app = window.app;
  const api = app.api || (window.comfyAPI && window.comfyAPI.api && window.comfyAPI.api.api);
  const shown = [];
  for (const n of app.graph._nodes || app.graph.nodes) {
    if (!(n.constructor.nodeData && n.constructor.nodeData.output_node)) continue;
    const output = {images: [{filename: video, subfolder: '', type: 'input'}], animated: [true]};
    api.dispatchCustomEvent('executed', {node: String(n.id), display_node: String(n.id), output, prompt_id: 'probe'});
    shown.push(n.id);
  }
  return shown;
}"""

LABELS = """() => {
  const app = window.app;
  app.graph.setDirtyCanvas(true, true);
  app.canvas.draw(true, true);
  const out = {};
  for (const n of app.graph._nodes || app.graph.nodes || []) {
    const w = (n.widgets || []).find((w) => w.name === 'num_frames');
    if (w) out[n.type] = w.label || w.name;
  }
  return out;
}"""

SET = """([type, name, value]) => {
  const app = window.app;
  for (const n of app.graph._nodes || app.graph.nodes || []) {
    if (n.type !== type) continue;
    const w = n.widgets.find((w) => w.name === name);
    w.value = value;
    if (w.callback) w.callback(value);
  }
}"""


def overlaps(nodes):
    out = []
    for i, a in enumerate(nodes):
        for b in nodes[i + 1:]:
            (ax0, ay0, ax1, ay1), (bx0, by0, bx1, by1) = a["box"], b["box"]
            if min(ax1, bx1) > max(ax0, bx0) and min(ay1, by1) > max(ay0, by0):
                out.append("%s #%s and %s #%s" % (a["title"] or a["type"], a["id"], b["title"] or b["type"], b["id"]))
    return out


def layout(page, a, out):
    for path in a.workflows:
        with open(path, encoding="utf-8") as f:
            page.evaluate(LOAD, json.load(f))
        page.wait_for_timeout(2500)  # previews of loaded images and videos
        loaded = page.evaluate(BOXES)
        shown = page.evaluate(SHOW_RESULT, a.video)
        for _ in range(6):  # the preview is made when the node is drawn; it grows once the video's size is known
            page.evaluate(DRAW)
            page.wait_for_timeout(500)
        after = page.evaluate(BOXES)
        grew = {n["id"]: round(n["box"][3] - m["box"][3]) for n, m in zip(after, loaded) if n["id"] in shown}
        out[path.replace("\\", "/").rsplit("/", 1)[-1]] = {
            "overlaps_loaded": overlaps(loaded), "overlaps_after_run": overlaps(after), "result_nodes": shown,
            "grew": grew, "nodes": after}


def frames(page, a, out):
    t2v, df = a.workflows
    with open(t2v, encoding="utf-8") as f:
        page.evaluate(LOAD, json.load(f))
    page.wait_for_timeout(500)
    out["t2v"] = page.evaluate(LABELS)
    page.evaluate(SET, ["SkyReelsEmptyLatent", "num_frames", 241])
    out["t2v_241"] = page.evaluate(LABELS)
    page.evaluate(SET, ["SkyReelsSaveVideo", "fps", 12])
    out["t2v_241_save_12fps"] = page.evaluate(LABELS)
    with open(df, encoding="utf-8") as f:
        page.evaluate(LOAD, json.load(f))
    page.wait_for_timeout(500)
    out["df"] = page.evaluate(LABELS)
    page.evaluate(SET, ["SkyReelsDFOptions", "fps", 16])
    out["df_options_16fps"] = page.evaluate(LABELS)
    out["saved"] = page.evaluate(
        "() => window.app.graph.serialize().nodes.filter((n) => n.type === 'SkyReelsDFSampler')"
        ".map((n) => ({widgets_values: n.widgets_values, inputs: n.inputs}))")


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["layout", "frames"])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--video", default="skyreels_example_clip.mp4", help="an input video shown as the result")
    ap.add_argument("workflows", nargs="+")
    a = ap.parse_args(argv)
    out = {"console_errors": []}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=a.chromium, headless=True,
                                    args=["--no-sandbox", "--disable-gpu",
                                          "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"])
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.on("console", lambda m: out["console_errors"].append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: out["console_errors"].append(str(e)))
        page.goto("http://127.0.0.1:%d/" % a.port, wait_until="domcontentloaded", timeout=180000)
        page.wait_for_function(READY, timeout=180000)
        page.wait_for_timeout(3000)
        out["console_errors"].clear()  # the editor's own start-up noise; what follows is ours
        out["extension"] = page.evaluate(
            "() => (window.app.extensions || []).some((e) => e.name === 'SkyReels.FrameSeconds')")
        (layout if a.mode == "layout" else frames)(page, a, out)
        browser.close()
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
