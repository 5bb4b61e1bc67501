"""Run an API-format workflow without ComfyUI: validate, order, execute, collect outputs.

Like the ComfyUI server it checks every node first (known type, required inputs present,
links to existing outputs of the right type, widget values in range or in their list, the
node's own VALIDATE_INPUTS), then runs only what the output nodes need, in dependency
order, each node once.
"""
from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from .. import host



class ExecutionError(RuntimeError):
    def __init__(self, message: str, node_id: Optional[str] = None, detail: str = ""):
        super().__init__(message)
        self.node_id = node_id
        self.detail = detail


@dataclass
class RunResult:
    outputs: Dict[str, Any] = field(default_factory=dict)   # node id -> its return tuple
    ui: Dict[str, dict] = field(default_factory=dict)       # output node id -> its "ui" dict
    order: List[str] = field(default_factory=list)
    seconds: Dict[str, float] = field(default_factory=dict)


def _label(prompt, nid):
    n = prompt[nid]
    title = n.get("_meta", {}).get("title")
    return "node %s (%s)" % (nid, title if title and title != n["class_type"] else n["class_type"])


def _is_link(v) -> bool:
    return isinstance(v, list) and len(v) == 2 and isinstance(v[0], str) and isinstance(v[1], int)


def validate(prompt: Dict[str, dict], classes: Dict[str, type]) -> List[str]:
    """Every problem found, as readable lines (empty when the workflow can run)."""
    errors = []
    for nid, node in prompt.items():
        cls = classes.get(node["class_type"])
        if cls is None:
            errors.append("%s: unknown node type %r" % (_label(prompt, nid), node["class_type"]))
            continue
        types = cls.INPUT_TYPES()
        req, opt = types.get("required", {}), types.get("optional", {})
        given = node.get("inputs", {})
        for name, spec in list(req.items()) + list(opt.items()):
            if name not in given:
                if name in req:
                    errors.append("%s: required input %r is missing" % (_label(prompt, nid), name))
                continue
            v = given[name]
            if _is_link(v):
                src = prompt.get(v[0])
                if src is None:
                    errors.append("%s: input %r is linked to node %s, which is not in the workflow"
                                  % (_label(prompt, nid), name, v[0]))
                    continue
                scls = classes.get(src["class_type"])
                if scls is not None:
                    rt = scls.RETURN_TYPES
                    if v[1] >= len(rt):
                        errors.append("%s: input %r uses output %d of %s, which has %d outputs"
                                      % (_label(prompt, nid), name, v[1], _label(prompt, v[0]), len(rt)))
                    elif not _types_match(rt[v[1]], spec[0]):
                        errors.append("%s: input %r wants %s but %s gives %s" % (
                            _label(prompt, nid), name, _tname(spec[0]), _label(prompt, v[0]), rt[v[1]]))
                continue
            msg = _check_value(name, spec, v)
            if msg:
                errors.append("%s: %s" % (_label(prompt, nid), msg))
        if hasattr(cls, "VALIDATE_INPUTS"):
            consts = {k: v for k, v in given.items() if not _is_link(v)}
            try:
                ok = cls.VALIDATE_INPUTS(**consts)
            except TypeError:
                ok = True
            if ok is not True:
                errors.append("%s: %s" % (_label(prompt, nid), ok))
    return errors


def _tname(t):
    return "a choice" if isinstance(t, (list, tuple)) else t


def _types_match(out_type, in_type) -> bool:
    if isinstance(in_type, (list, tuple)):
        return True  # a widget converted to an input, fed by a primitive
    if out_type == "*" or in_type == "*":
        return True
    return set(str(out_type).split(",")) & set(str(in_type).split(",")) != set()


def _check_value(name, spec, v) -> Optional[str]:
    t = spec[0]
    o = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
    if isinstance(t, (list, tuple)):
        free = name in ("model",) or o.get("image_upload") or o.get("video_upload")
        if not free and v not in t:
            return "%r is not one of the choices for %r (%s)" % (v, name, ", ".join(map(str, t[:12])))
        return None
    if t == "INT":
        if isinstance(v, bool) or not isinstance(v, (int, float)) or int(v) != v:
            return "%r must be a whole number, got %r" % (name, v)
    if t == "FLOAT" and (isinstance(v, bool) or not isinstance(v, (int, float))):
        return "%r must be a number, got %r" % (name, v)
    if t in ("INT", "FLOAT"):
        if "min" in o and v < o["min"]:
            return "%r is %s, below its minimum %s" % (name, v, o["min"])
        if "max" in o and v > o["max"]:
            return "%r is %s, above its maximum %s" % (name, v, o["max"])
    if t == "BOOLEAN" and not isinstance(v, bool):
        return "%r must be true or false, got %r" % (name, v)
    if t == "STRING" and not isinstance(v, str):
        return "%r must be text, got %r" % (name, v)
    return None


def _needed(prompt, classes) -> List[str]:
    """Nodes the output nodes depend on, in an order where inputs come first."""
    outputs = [nid for nid, n in prompt.items() if getattr(classes[n["class_type"]], "OUTPUT_NODE", False)]
    if not outputs:
        raise ExecutionError("the workflow has no output node (for example SkyReels Save Video)")
    order, state = [], {}

    def visit(nid, path):
        if state.get(nid) == 2:
            return
        if state.get(nid) == 1:
            raise ExecutionError("the workflow has a cycle through %s" % " -> ".join(path + [nid]))
        state[nid] = 1
        for v in prompt[nid]["inputs"].values():
            if _is_link(v):
                visit(v[0], path + [nid])
        state[nid] = 2
        order.append(nid)

    for nid in sorted(outputs, key=lambda x: (len(x), x)):
        visit(nid, [])
    return order


def execute(prompt: Dict[str, dict], classes: Dict[str, type]) -> RunResult:
    errors = validate(prompt, classes)
    if errors:
        raise ExecutionError("the workflow is not valid:\n  " + "\n  ".join(errors))
    result = RunResult()
    order = _needed(prompt, classes)
    for nid in order:
        node = prompt[nid]
        cls = classes[node["class_type"]]
        kwargs = {}
        for name, v in node["inputs"].items():
            kwargs[name] = result.outputs[v[0]][v[1]] if _is_link(v) else v
        host.log("running %s" % _label(prompt, nid))
        t0 = time.monotonic()
        try:
            out = getattr(cls(), cls.FUNCTION)(**kwargs)
        except host.Interrupted:
            raise
        except KeyboardInterrupt:
            raise
        except Exception as e:  # noqa: BLE001 - reported with the node that failed
            raise ExecutionError("%s failed: %s" % (_label(prompt, nid), e), nid, traceback.format_exc()) from e
        result.seconds[nid] = time.monotonic() - t0
        if isinstance(out, dict):
            if "ui" in out:
                result.ui[nid] = out["ui"]
            out = out.get("result", ())
        result.outputs[nid] = tuple(out) if out is not None else ()
        result.order.append(nid)
    return result
