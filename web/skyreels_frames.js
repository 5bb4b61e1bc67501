// SkyReels for ComfyUI: shows how long the video will be next to every num_frames widget of the
// pack's nodes, e.g. "num_frames (4.0 s)" for 97 frames at 24 fps.
//
// The frame rate is the node's own fps widget, else that of a node linked into it (the DF sampler
// reads it from its options node), else that of the nearest node downstream with one (Save
// Video), else 24, the rate SkyReels-V2 makes.  The label is refreshed whenever the node is drawn,
// so it follows every change of the value, the fps or the links.
import { app } from "../../scripts/app.js";

export const DEFAULT_FPS = 24;
const DOWNSTREAM_HOPS = 4;

function widget(node, name) {
  return (node && node.widgets ? node.widgets : []).find((w) => w.name === name);
}

function fpsOf(node) {
  const w = widget(node, "fps");
  const v = w ? Number(w.value) : NaN;
  return v > 0 ? v : null;
}

function link(graph, id) {
  if (id == null || !graph || !graph.links) return null;
  return graph.links instanceof Map ? graph.links.get(id) : graph.links[id];
}

export function framesPerSecond(node) {
  const own = fpsOf(node);
  if (own) return own;
  const graph = node.graph;
  for (const input of node.inputs || []) {
    const l = link(graph, input.link);
    const v = l && fpsOf(graph.getNodeById(l.origin_id));
    if (v) return v;
  }
  let front = [node];
  const seen = new Set([node.id]);
  for (let hop = 0; hop < DOWNSTREAM_HOPS && front.length; hop++) {
    const next = [];
    for (const n of front) {
      for (const output of n.outputs || []) {
        for (const id of output.links || []) {
          const l = link(graph, id);
          const target = l && graph.getNodeById(l.target_id);
          if (!target || seen.has(target.id)) continue;
          seen.add(target.id);
          const v = fpsOf(target);
          if (v) return v;
          next.push(target);
        }
      }
    }
    front = next;
  }
  return DEFAULT_FPS;
}

export function framesLabel(frames, fps) {
  const n = Number(frames);
  if (!(n >= 0) || !(fps > 0)) return "num_frames";
  return "num_frames (" + (n / fps).toFixed(1) + " s)";
}

app.registerExtension({
  name: "SkyReels.FrameSeconds",
  beforeRegisterNodeDef(nodeType, nodeData) {
    if (!nodeData || !String(nodeData.name).startsWith("SkyReels")) return;
    const inputs = Object.assign({}, (nodeData.input || {}).required, (nodeData.input || {}).optional);
    if (!inputs.num_frames) return;
    const draw = nodeType.prototype.onDrawForeground;
    nodeType.prototype.onDrawForeground = function () {
      const result = draw ? draw.apply(this, arguments) : undefined;
      const w = widget(this, "num_frames");
      if (w) w.label = framesLabel(w.value, framesPerSecond(this));
      return result;
    };
  },
});
