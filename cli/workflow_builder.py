"""Writes UI-format (litegraph 0.4) workflow files, the kind the ComfyUI editor saves and loads.

The shipped workflows are described in ``cli/shipped/`` (one module per family) as small graphs (nodes with
widget values by name, links by input name) and turned into editor JSON here, with widget
values in the order the editor saves them (``editor_widget_values``), and laid out by
``workflow_layout`` so that no node or preview covers another, so they cannot drift from the node definitions.
"""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from .workflow import EDITOR_UPLOAD_VALUE, has_control, has_upload, is_widget, widget_inputs
from .workflow_layout import TITLE_H, arrange, fit_view, is_result_preview, node_height

PACK_ID = "comfyui-skyreels"


@dataclass
class Node:
    id: int
    type: str
    pos: Tuple[int, int]
    widgets: Dict[str, Any] = field(default_factory=dict)     # widget input -> value (others: defaults)
    links: Dict[str, Tuple[int, int]] = field(default_factory=dict)  # input -> (source node id, output index)
    title: Optional[str] = None
    size: Tuple[int, int] = (320, 0)


@dataclass
class Note:
    id: int
    pos: Tuple[int, int]
    text: str
    size: Tuple[int, int] = (340, 420)   # one column wide (nodes are 320, columns 380 apart)


def _default(spec):
    t = spec[0]
    o = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
    if "default" in o:
        return o["default"]
    if isinstance(t, (list, tuple)):
        return t[0] if t else ""
    return {"INT": 0, "FLOAT": 0.0, "STRING": "", "BOOLEAN": False}.get(t)


def editor_widget_values(cls, widgets: Dict[str, Any]) -> List[Any]:
    """``widgets_values`` exactly as the ComfyUI editor (frontend 1.2x) saves them: the widget
    inputs in declaration order, a "control after generate" value right after each seed, and
    the upload button's value after every other widget of the node."""
    values: List[Any] = []
    uploads: List[Any] = []
    for name, spec in widget_inputs(cls):
        values.append(widgets.get(name, _default(spec)))
        if has_control(name, spec):
            values.append("fixed")
        if has_upload(spec):
            uploads.append(EDITOR_UPLOAD_VALUE)
    return values + uploads


def build(nodes: List[Any], classes: Dict[str, type], version: str = "0.1.0", file_name: str = "") -> dict:
    """The editor JSON of a graph; ``file_name`` makes the workflow's id unique."""
    real = [n for n in nodes if isinstance(n, Node)]
    by_id = {n.id: n for n in real}
    links: List[list] = []
    out_links: Dict[Tuple[int, int], List[int]] = {}
    in_link: Dict[Tuple[int, str], int] = {}
    for n in real:
        cls = classes[n.type]
        types = cls.INPUT_TYPES()
        specs = dict(types.get("required", {}), **types.get("optional", {}))
        for name, (src, slot) in n.links.items():
            if name not in specs:
                raise ValueError("%s has no input %r" % (n.type, name))
            src_cls = classes[by_id[src].type]
            lid = len(links) + 1
            t = src_cls.RETURN_TYPES[slot]
            links.append([lid, src, slot, n.id, None, t])
            out_links.setdefault((src, slot), []).append(lid)
            in_link[(n.id, name)] = lid
    sizes = {n.id: _size(n, classes) for n in nodes}
    grows = {n.id: isinstance(n, Node) and is_result_preview(classes[n.type]) for n in nodes}
    pos = arrange([(n.id, n.pos, sizes[n.id], grows[n.id], _label(n)) for n in nodes])
    ui_nodes = []
    order = _order(real)
    for n in nodes:
        if isinstance(n, Note):
            ui_nodes.append({"id": n.id, "type": "Note", "pos": list(pos[n.id]), "size": list(sizes[n.id]), "flags": {},
                             "order": 0, "mode": 0, "inputs": [], "outputs": [], "properties": {},
                             "widgets_values": [n.text], "color": "#432", "bgcolor": "#653"})
            continue
        cls = classes[n.type]
        types = cls.INPUT_TYPES()
        inputs = []
        slot = 0
        for section in ("required", "optional"):
            for name, spec in types.get(section, {}).items():
                lid = in_link.get((n.id, name))
                if is_widget(spec):
                    if lid is None:
                        continue
                    entry = {"name": name, "type": _tname(spec[0]), "link": lid, "widget": {"name": name}}
                else:
                    entry = {"name": name, "type": spec[0], "link": lid}
                if section == "optional":
                    entry["shape"] = 7
                if lid is not None:
                    links[lid - 1][4] = slot
                inputs.append(entry)
                slot += 1
        unknown = set(n.widgets) - {name for name, _ in widget_inputs(cls)}
        if unknown:
            raise ValueError("%s has no widgets %s" % (n.type, sorted(unknown)))
        values = editor_widget_values(cls, n.widgets)
        outputs = []
        names = getattr(cls, "RETURN_NAMES", cls.RETURN_TYPES)
        for i, t in enumerate(cls.RETURN_TYPES):
            outputs.append({"name": names[i], "type": t, "links": out_links.get((n.id, i), []), "slot_index": i})
        node = {"id": n.id, "type": n.type, "pos": list(pos[n.id]), "size": list(sizes[n.id]), "flags": {},
                "order": order[n.id], "mode": 0, "inputs": inputs, "outputs": outputs,
                "properties": {"Node name for S&R": n.type, "cnr_id": PACK_ID, "ver": version},
                "widgets_values": values}
        if n.title:
            node["title"] = n.title
        ui_nodes.append(node)
    ids = [n.id for n in nodes]
    view = fit_view([((pos[i][0], pos[i][1] - TITLE_H, pos[i][0] + sizes[i][0], pos[i][1] + sizes[i][1]), grows[i])
                     for i in ids])
    wid = str(uuid.uuid5(uuid.NAMESPACE_URL, "%s/workflows/%s" % (PACK_ID, file_name))) if file_name else \
        "00000000-0000-4000-8000-%012d" % sum(ids)
    return {"id": wid, "revision": 0, "last_node_id": max(ids),
            "last_link_id": len(links), "nodes": ui_nodes, "links": links, "groups": [], "config": {},
            "extra": {"ds": view}, "version": 0.4}


def _size(n, classes) -> Tuple[int, int]:
    if isinstance(n, Note):
        return tuple(n.size)
    return n.size[0], n.size[1] or node_height(classes[n.type])


def _label(n) -> str:
    if isinstance(n, Note):
        return "the Note #%d" % n.id
    return "%s #%d" % (n.title or n.type, n.id)


def _tname(t):
    return "COMBO" if isinstance(t, (list, tuple)) else t


def _order(nodes: List[Node]) -> Dict[int, int]:
    done: Dict[int, int] = {}
    by_id = {n.id: n for n in nodes}

    def visit(n):
        if n.id in done:
            return
        for src, _ in n.links.values():
            visit(by_id[src])
        done[n.id] = len(done) + 1

    for n in nodes:
        visit(n)
    return done


def dumps(workflow: dict) -> str:
    return json.dumps(workflow, indent=2, ensure_ascii=False) + "\n"
