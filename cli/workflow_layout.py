"""Where the shipped workflows' nodes sit on the editor's canvas, so that nothing covers anything.

The families give each node a position (columns by x, order by y); ``arrange`` keeps every x and
moves a node down only as far as needed so that no node, title bar included, overlaps another,
with node heights estimated the way the ComfyUI editor (frontend 1.2x) computes them.  Two kinds
of node grow in the editor:

* a node with an upload combo shows the loaded image or video under its widgets at once (room
  for it is part of its height);
* an output node (``OUTPUT_NODE``, e.g. Save Video) shows its result under its widgets after a
  run, as tall as the video's aspect makes it.  Nothing may sit below an output node in its
  column: ``arrange`` refuses such a layout, naming both nodes.

``fit_view`` gives the saved view (``extra.ds``) that shows the whole graph on a laptop screen.
"""
from __future__ import annotations

from typing import Any, Dict, List, Tuple

from .workflow import has_control, has_upload, widget_inputs

# The editor's measures (LiteGraph in ComfyUI frontend 1.2x), checked against its computeSize().
TITLE_H = 30            # the title bar, drawn above a node's pos
SLOT_H = 20             # one row of input/output slots
WIDGET_H = 24           # one widget and its margin
MULTILINE_H = 80        # a multiline text box (the editor's minimum is 54; prompts want room)
MEDIA_PREVIEW_H = 224   # the preview of a loaded image or video at the default node width
GAP = 24                # free space kept between a node and the title bar below it
RESULT_PREVIEW_H = 320  # room counted below an output node when fitting the view

# What the saved view should show at once: the canvas of a 1920x1080 screen, less the side and
# top bars, with a margin.
VIEW_W, VIEW_H = 1500, 860
MIN_SCALE = 0.6         # below this the editor draws nodes without text: the view shows the top left part


def node_height(cls) -> int:
    """The height the editor gives a node of this class (its ``computeSize``), previews of
    loaded media included."""
    types = cls.INPUT_TYPES()
    widgets = widget_inputs(cls)
    names = {name for name, _ in widgets}
    sockets = sum(1 for section in ("required", "optional") for name in types.get(section, {})
                  if name not in names)
    rows = max(sockets, len(cls.RETURN_TYPES))
    h = 0
    for name, spec in widgets:
        o = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
        h += MULTILINE_H if spec[0] == "STRING" and o.get("multiline") else WIDGET_H
        if has_control(name, spec):
            h += WIDGET_H
        if has_upload(spec):
            h += WIDGET_H + MEDIA_PREVIEW_H
    return rows * SLOT_H + h + (14 if widgets else 6)


def is_result_preview(cls) -> bool:
    """Whether the editor shows this node's result under it after a run (output nodes)."""
    return bool(getattr(cls, "OUTPUT_NODE", False))


Box = Tuple[int, int, int, int]  # x0, top (title bar included), x1, bottom


def arrange(items: List[Tuple[Any, Tuple[int, int], Tuple[int, int], bool, str]]) -> Dict[Any, Tuple[int, int]]:
    """Positions for ``items`` = [(key, (x, y), (w, h), grows_below, label)] with nothing
    overlapping: in order of y, each node moves down below whatever it would overlap.  A node that
    would have to sit below an output node in its column raises ValueError."""
    placed: List[Tuple[Box, bool, str]] = []
    out: Dict[Any, Tuple[int, int]] = {}
    for key, (x, y), (w, h), grows, label in sorted(items, key=lambda it: (it[1][1], it[1][0])):
        while True:
            top, bottom = y - TITLE_H, y + h
            hit = None
            for (bx0, btop, bx1, bbottom), bgrows, blabel in placed:
                if x >= bx1 or bx0 >= x + w:
                    continue
                if bgrows and top >= btop:
                    raise ValueError(
                        "%s sits below %s, whose result preview grows down over it after a run; move it to "
                        "another column" % (label, blabel))
                if top < bbottom + GAP and btop < bottom + GAP:
                    hit = bbottom
                    break
            if hit is None:
                break
            y = hit + GAP + TITLE_H
        placed.append(((x, y - TITLE_H, x + w, y + h), grows, label))
        out[key] = (x, y)
    return out


def _bounds(boxes: List[Tuple[Box, bool]]) -> Box:
    """x0, y0, x1, y1 of every box and the room for result previews below output nodes."""
    return (min(b[0] for b, _ in boxes), min(b[1] for b, _ in boxes), max(b[2] for b, _ in boxes),
            max(b[3] + (RESULT_PREVIEW_H if grows else 0) for b, grows in boxes))


def needed_scale(boxes: List[Tuple[Box, bool]]) -> float:
    """The scale at which every box, and the room for result previews below output nodes, fits in
    VIEW_W x VIEW_H screen pixels (at most 1).  Below MIN_SCALE the graph does not fit one screen."""
    x0, y0, x1, y1 = _bounds(boxes)
    return min(1.0, VIEW_W / (x1 - x0), VIEW_H / (y1 - y0))


def fit_view(boxes: List[Tuple[Box, bool]]) -> Dict[str, Any]:
    """The saved view (``extra.ds``) that shows every box, and the room for result previews."""
    x0, y0, _, _ = _bounds(boxes)
    scale = max(MIN_SCALE, int(needed_scale(boxes) * 100) / 100)
    margin = 20 / scale
    return {"scale": scale, "offset": [round(margin - x0, 1), round(margin - y0, 1)]}
