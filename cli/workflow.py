"""Workflow files: the UI (litegraph) format the ComfyUI editor saves, and the API format.

``to_api(workflow, node_classes)`` turns either into the API form ``{id: {"class_type",
"inputs", "_meta"}}``, the way the ComfyUI frontend does: widget values are matched to the
node's widget inputs in declaration order (with the extra "control after generate" value
after seeds; the upload-button value of an upload combo is saved last by the editor and right
after the file name by earlier versions of this pack: ``detect_order`` tells which from the
values), links become
``[source_id, output_index]``, notes and other UI-only nodes are dropped, muted nodes removed
and bypassed nodes wired around.
"""
from __future__ import annotations

import codecs
import json
import os
from typing import Any, Dict, List, Optional, Tuple

WIDGET_TYPES = ("INT", "FLOAT", "STRING", "BOOLEAN")
UI_ONLY = {"Note", "MarkdownNote", "PrimitiveNode", "Reroute"}
CONTROL_VALUES = {"fixed", "increment", "decrement", "randomize"}
UPLOAD_VALUES = {"image", "video", "audio", "file", None, ""}
MODE_MUTED, MODE_BYPASS = 2, 4


class WorkflowError(ValueError):
    """A workflow file that cannot be read or converted; the message says where."""


MAX_WORKFLOW_BYTES = 64 << 20  # real workflows are kilobytes; a bigger file is not one


def load(path: str) -> dict:
    """The JSON object of a workflow file; a :class:`WorkflowError` with a plain message for
    anything that is not one (missing, a folder, not text, not JSON, not an object)."""
    if os.path.isdir(path):
        raise WorkflowError("%s is a folder, not a workflow file" % path)
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_WORKFLOW_BYTES + 1)
    except FileNotFoundError:
        raise WorkflowError("workflow file %s not found" % path) from None
    except OSError as e:
        raise WorkflowError("cannot read %s: %s" % (path, e.strerror or e)) from None
    if len(raw) > MAX_WORKFLOW_BYTES:
        raise WorkflowError("%s is larger than %d MB; it is not a workflow" % (path, MAX_WORKFLOW_BYTES >> 20))
    text = _decode(raw, path)
    try:
        data = json.loads(text)
    except RecursionError:
        raise WorkflowError("%s is nested too deeply to be a workflow" % path) from None
    except ValueError as e:
        raise WorkflowError("%s is not valid JSON: %s" % (path, e)) from None
    if not isinstance(data, dict):
        raise WorkflowError("%s holds %s, not a workflow (a JSON object: the editor's format with 'nodes', or the "
                            "API format)" % (path, _json_kind(data)))
    return data


def _json_kind(v) -> str:
    if v is None:
        return "null"
    return {list: "a JSON array", str: "a JSON string", bool: "a JSON boolean"}.get(type(v), "a JSON number")


# RFC 8259 text is UTF-8; editors on Windows also save UTF-8 with a BOM or UTF-16 with a BOM.
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def _decode(raw: bytes, path: str) -> str:
    encoding = next((enc for bom, enc in _BOMS if raw.startswith(bom)), None)
    if encoding is None and len(raw) >= 2 and (raw[0] == 0) != (raw[1] == 0):  # UTF-16 without a BOM
        encoding = "utf-16-be" if raw[0] == 0 else "utf-16-le"
    try:
        return raw.decode(encoding or "utf-8")
    except UnicodeDecodeError as e:
        raise WorkflowError("%s is not UTF-8 text (a byte at position %d cannot be read); save the workflow as UTF-8"
                            % (path, e.start)) from None


def is_api(workflow: dict) -> bool:
    return bool(workflow) and "nodes" not in workflow and all(
        isinstance(v, dict) and "class_type" in v for v in workflow.values())


def is_widget(spec) -> bool:
    t = spec[0]
    return isinstance(t, (list, tuple)) or t in WIDGET_TYPES or t == "COMBO"


def widget_inputs(node_cls) -> List[Tuple[str, tuple]]:
    """(name, spec) of the widget inputs, in the order the editor lays them out."""
    types = node_cls.INPUT_TYPES()
    out = []
    for section in ("required", "optional"):
        for name, spec in types.get(section, {}).items():
            if is_widget(spec):
                out.append((name, spec))
    return out


def _opts(spec) -> dict:
    return spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}


def has_control(name: str, spec) -> bool:
    """Whether the editor adds a "control after generate" widget after this input."""
    o = _opts(spec)
    return spec[0] == "INT" and bool(o.get("control_after_generate") or name in ("seed", "noise_seed"))


def has_upload(spec) -> bool:
    """Whether the editor adds an upload button for this combo (``image_upload``, ``video_upload``, ...)."""
    return any(k.endswith("_upload") and v for k, v in _opts(spec).items())


# The value the editor saves for an upload button (ComfyUI frontend 1.2x, every upload kind).
EDITOR_UPLOAD_VALUE = "image"
# Upload-button values in files: the editor writes "image"; earlier versions of this pack wrote
# "video" for video combos; some old saves hold null or "".
STRONG_UPLOAD_VALUES = {"image", "video", "audio", "file"}

# Where the extra upload-button values sit in ``widgets_values``.
EDITOR_ORDER = "editor"   # the ComfyUI frontend 1.2x: after every other widget of the node
LEGACY_ORDER = "legacy"   # earlier versions of this pack (and the legacy frontend): right after the combo
BARE_ORDER = "bare"       # no upload value at all (hand-written files, other tools)
ORDERS = (EDITOR_ORDER, LEGACY_ORDER, BARE_ORDER)


def fits(spec, value) -> bool:
    """Whether a saved value has the type of its widget (what the editor would accept)."""
    t = spec[0]
    if isinstance(t, (list, tuple)) or t == "COMBO":
        return isinstance(value, str) or (isinstance(value, (int, float)) and not isinstance(value, bool)
                                          and isinstance(t, (list, tuple)) and value in t)
    if t == "INT":
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer())
    if t == "FLOAT":
        return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value
    if t == "BOOLEAN":
        return isinstance(value, bool)
    if t == "STRING":
        return isinstance(value, str)
    return True


def _word(value, words) -> bool:
    return (value is None or isinstance(value, str)) and value in words


def _layout(widgets, values: List[Any], order: str):
    """One reading of ``values``: (positions [(name, spec, index)], upload slots, indices used)."""
    uploads = sum(1 for _, spec in widgets if has_upload(spec))
    end = len(values)
    slots: List[int] = []
    if order == EDITOR_ORDER and uploads:
        end = max(0, len(values) - uploads)
        slots = list(range(end, len(values)))
    positions = []
    used = len(slots)
    i = 0
    for name, spec in widgets:
        if i >= end:
            break
        positions.append((name, spec, i))
        i += 1
        if has_control(name, spec) and i < end and _word(values[i], CONTROL_VALUES):
            i += 1
        if order == LEGACY_ORDER and has_upload(spec) and i < end:
            slots.append(i)
            i += 1
    used += min(i, end)
    return positions, slots, used


def _score(values: List[Any], positions, slots, used):
    """Evidence against a reading (lower is better), in order of weight: an upload slot holding
    something no upload button saves; saved values that do not fit their widget; values the
    reading leaves unused; upload slots holding null or "" rather than a word."""
    structural = all(_word(values[s], UPLOAD_VALUES) for s in slots)
    misfits = sum(1 for _, spec, i in positions if not fits(spec, values[i]))
    weak = sum(1 for s in slots if not _word(values[s], STRONG_UPLOAD_VALUES))
    return (not structural, misfits, len(values) - used, weak)


def detect_order(node_cls, values: List[Any], where: str = "") -> str:
    """Where a UI node's ``widgets_values`` keeps its upload-button values (``EDITOR_ORDER``,
    ``LEGACY_ORDER`` or ``BARE_ORDER``), decided from the values themselves: the reading with the
    least evidence against it.  Readings that tie but give the same widget values are the same;
    a tie with different meanings (only possible with text widgets that hold an upload-button word)
    raises WorkflowError rather than guess."""
    widgets = widget_inputs(node_cls)
    if not any(has_upload(spec) for _, spec in widgets):
        return EDITOR_ORDER
    readings = []
    for order in ORDERS:
        positions, slots, used = _layout(widgets, values, order)
        meaning = [(n, values[i]) for n, _, i in positions]
        readings.append((_score(values, positions, slots, used), order, meaning))
    best = min(r[0] for r in readings)
    top = [r for r in readings if r[0] == best]
    if all(r[2] == top[0][2] for r in top):
        return top[0][1]
    raise WorkflowError(
        "%sthe saved widget values %s can be read two ways (upload button saved last, as the ComfyUI editor "
        "does, or right after the file name, as earlier versions of this pack did); open the workflow in the "
        "ComfyUI editor, check the node's widgets and save it again" % (where, _short(values)))


def _short(values: List[Any]) -> str:
    text = json.dumps(values, ensure_ascii=False, default=str)
    return text if len(text) <= 200 else text[:197] + "..."


def widget_positions(node_cls, values: List[Any], where: str = ""):
    """(input name, index in ``values``) of each widget present in a UI node's ``widgets_values``,
    stepping over the editor's extra values (seed control, upload button) wherever they were saved."""
    positions, _, _ = _layout(widget_inputs(node_cls), values, detect_order(node_cls, values, where))
    for name, _, i in positions:
        yield name, i


def widget_values_to_inputs(node_cls, values: List[Any], where: str = "") -> Dict[str, Any]:
    return {name: values[i] for name, i in widget_positions(node_cls, values, where)}


def _check_api(workflow: dict) -> None:
    for k, v in workflow.items():
        if not isinstance(v.get("class_type"), str):
            raise WorkflowError("node %s: 'class_type' must be a node type name, got %r" % (k, v.get("class_type")))
        if not isinstance(v.get("inputs", {}), dict):
            raise WorkflowError("node %s (%s): 'inputs' must be an object of input names and values"
                                % (k, v["class_type"]))
        if not isinstance(v.get("_meta", {}), dict):
            raise WorkflowError("node %s (%s): '_meta' must be an object" % (k, v["class_type"]))


def _is_id(v) -> bool:
    return (isinstance(v, int) and not isinstance(v, bool)) or isinstance(v, str)


def _is_slot(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 10000


def _check_ui(workflow: dict) -> None:
    """The structure the conversion relies on: a plain message for anything else."""
    nodes, links = workflow.get("nodes"), workflow.get("links", [])
    if not isinstance(nodes, list):
        raise WorkflowError("'nodes' must be a list of nodes")
    if links is None:
        links = workflow["links"] = []
    if not isinstance(links, list):
        raise WorkflowError("'links' must be a list of links")
    defs = workflow.get("definitions")
    if defs is not None and not isinstance(defs, dict):
        raise WorkflowError("'definitions' must be an object")
    seen = set()
    for i, n in enumerate(nodes):
        if not isinstance(n, dict):
            raise WorkflowError("node #%d of 'nodes' is not an object" % (i + 1))
        nid = n.get("id")
        if not _is_id(nid):
            raise WorkflowError("node #%d has no usable 'id' (%r)" % (i + 1, nid))
        if nid in seen:
            raise WorkflowError("two nodes have the id %s" % nid)
        seen.add(nid)
        if not isinstance(n.get("type"), str):
            raise WorkflowError("node %s has no node type ('type': %r)" % (nid, n.get("type")))
        wv = n.get("widgets_values")
        if wv is not None and not isinstance(wv, (list, dict)):
            raise WorkflowError("node %s (%s): 'widgets_values' must be a list" % (nid, n["type"]))
        for key in ("inputs", "outputs"):
            slots = n.get(key)
            if slots is None:
                continue
            if not isinstance(slots, list) or not all(isinstance(x, dict) for x in slots):
                raise WorkflowError("node %s (%s): '%s' must be a list of objects" % (nid, n["type"], key))
        for inp in n.get("inputs") or []:
            if not isinstance(inp.get("name"), str):
                raise WorkflowError("node %s (%s): an input has no name" % (nid, n["type"]))
            if inp.get("link") is not None and not _is_id(inp["link"]):
                raise WorkflowError("node %s (%s): input %r has a malformed link %r"
                                    % (nid, n["type"], inp["name"], inp["link"]))
        if n.get("mode") is not None and not isinstance(n.get("mode"), int):
            raise WorkflowError("node %s (%s): 'mode' must be a number" % (nid, n["type"]))
    for i, link in enumerate(links):
        if isinstance(link, dict):
            fields = [link.get(k) for k in ("id", "origin_id", "origin_slot", "target_id", "target_slot")]
        elif isinstance(link, list) and len(link) >= 5:
            fields = link[:5]
        else:
            raise WorkflowError("link #%d is malformed (%s)" % (i + 1, json.dumps(link)[:80]))
        lid, origin, oslot, target, tslot = fields
        if not (_is_id(lid) and _is_id(origin) and _is_id(target) and _is_slot(oslot) and _is_slot(tslot)):
            raise WorkflowError("link #%d is malformed (%s)" % (i + 1, json.dumps(link)[:80]))


def to_api(workflow: dict, node_classes: Dict[str, type]) -> Dict[str, dict]:
    if not isinstance(workflow, dict):
        raise WorkflowError("not a ComfyUI workflow (a JSON object is needed)")
    if is_api(workflow):
        _check_api(workflow)
        return {str(k): {"class_type": v["class_type"], "inputs": dict(v.get("inputs", {})),
                         "_meta": dict(v.get("_meta", {}))} for k, v in workflow.items()}
    if "nodes" not in workflow:
        raise WorkflowError("not a ComfyUI workflow (neither the UI format with 'nodes' nor the API format)")
    _check_ui(workflow)
    if (workflow.get("definitions") or {}).get("subgraphs"):
        raise WorkflowError("workflows with subgraphs are not supported headless; run it in ComfyUI or flatten it")
    nodes = {n["id"]: n for n in workflow["nodes"]}
    links = {}
    for link in workflow.get("links", []):
        if isinstance(link, dict):
            links[link["id"]] = (link["origin_id"], link["origin_slot"], link["target_id"], link["target_slot"])
        else:
            links[link[0]] = (link[1], link[2], link[3], link[4])

    def source(link_id) -> Optional[Tuple[int, int]]:
        """Follow a link to a real producing node, through reroutes and bypassed nodes."""
        seen = 0
        while link_id is not None and seen < 1000:
            seen += 1
            if link_id not in links:
                return None
            origin, slot, _, _ = links[link_id]
            node = nodes.get(origin)
            if node is None:
                return None
            if node.get("type") == "Reroute" or node.get("mode") == MODE_BYPASS:
                link_id = _bypass_input(node, slot)
                continue
            if node.get("mode") == MODE_MUTED:
                return None
            return origin, slot
        return None

    def _bypass_input(node, out_slot):
        out_type = None
        outs = node.get("outputs") or []
        if out_slot < len(outs):
            out_type = outs[out_slot].get("type")
        candidates = [inp for inp in (node.get("inputs") or []) if inp.get("link") is not None]
        for inp in candidates:
            if out_type is None or inp.get("type") == out_type:
                return inp["link"]
        return None

    api: Dict[str, dict] = {}
    for nid, node in nodes.items():
        ntype = node.get("type")
        if ntype in UI_ONLY or node.get("mode") in (MODE_MUTED, MODE_BYPASS):
            continue
        cls = node_classes.get(ntype)
        if cls is None:
            raise WorkflowError("node %s uses the node type %r, which is not installed" % (nid, ntype))
        values = node.get("widgets_values") or []
        if isinstance(values, dict):  # some editors save widgets by name
            inputs = {k: v for k, v in values.items() if k in dict(widget_inputs(cls))}
        else:
            inputs = widget_values_to_inputs(cls, values, "node %s (%s): " % (nid, ntype))
        for inp in node.get("inputs") or []:
            if inp.get("link") is None:
                continue
            src = source(inp["link"])
            if src is None:
                inputs.pop(inp["name"], None)
                continue
            inputs[inp["name"]] = [str(src[0]), src[1]]
        meta = {"title": node.get("title") or ntype}
        api[str(nid)] = {"class_type": ntype, "inputs": inputs, "_meta": meta}
    return api


def widget_index(node_cls, name: str, values: List[Any], where: str = "") -> Optional[int]:
    """Position of widget ``name`` in a UI node's ``widgets_values`` (None if absent)."""
    return next((i for n, i in widget_positions(node_cls, values, where) if n == name), None)


def set_ui_widgets(workflow: dict, node_classes: Dict[str, type], values: Dict[str, Any]) -> int:
    """Set widgets by name on every UI node that has them; returns how many were set."""
    count = 0
    for node in workflow.get("nodes", []):
        cls = node_classes.get(node.get("type"))
        if cls is None:
            continue
        for name, value in values.items():
            idx = widget_index(cls, name, node.get("widgets_values") or [],
                               "node %s (%s): " % (node.get("id"), node.get("type")))
            if idx is not None:
                node["widgets_values"][idx] = value
                count += 1
    return count
