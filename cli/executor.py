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
from ..nodes.validation import check_value, is_widget


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
        guarded = getattr(cls, "_skyreels_guarded", None) is not None  # VALIDATE_INPUTS checks every value
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
                    if not 0 <= v[1] < len(rt):
                        errors.append("%s: input %r uses output %d of %s, which has %d outputs"
                                      % (_label(prompt, nid), name, v[1], _label(prompt, v[0]), len(rt)))
                    elif not _types_match(rt[v[1]], spec[0]):
                        errors.append("%s: input %r wants %s but %s gives %s" % (
                            _label(prompt, nid), name, _tname(spec[0]), _label(prompt, v[0]), rt[v[1]]))
                continue
            if not is_widget(spec):
                errors.append("%s: input %r must be connected to a node giving %s, got the value %r"
                              % (_label(prompt, nid), name, spec[0], v))
                continue
            msg = None if guarded else check_value(name, spec, v)
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


def _lazy(cls) -> set:
    """Inputs declared ``"lazy": True``: computed only when ``check_lazy_status`` asks for them."""
    out = set()
    for section in cls.INPUT_TYPES().values():
        for name, spec in section.items():
            if len(spec) > 1 and isinstance(spec[1], dict) and spec[1].get("lazy"):
                out.add(name)
    return out


def _convert(spec, v):
    """Widget values as ComfyUI hands them to nodes (an INT given as 97.0 is 97)."""
    t = spec[0] if spec else None
    if t == "INT" and isinstance(v, float):
        return int(v)
    if t == "FLOAT" and isinstance(v, int) and not isinstance(v, bool):
        return float(v)
    return v


def execute(prompt: Dict[str, dict], classes: Dict[str, type]) -> RunResult:
    """Validate, then run what the output nodes need, inputs first, as ComfyUI does: a node's
    lazy inputs are computed only after its ``check_lazy_status`` (which sees the others) asks
    for them, so a node can refuse its settings before the models it takes are loaded."""
    errors = validate(prompt, classes)
    if errors:
        raise ExecutionError("the workflow is not valid:\n  " + "\n  ".join(errors))
    result = RunResult()
    try:
        _needed(prompt, classes)  # refuses cycles and workflows without an output node
    except RecursionError:
        raise ExecutionError("the workflow's chain of nodes is too long to follow") from None
    outputs = [nid for nid, n in prompt.items() if getattr(classes[n["class_type"]], "OUTPUT_NODE", False)]
    try:
        for nid in sorted(outputs, key=lambda x: (len(x), x)):
            _run(nid, prompt, classes, result)
    except RecursionError:
        raise ExecutionError("the workflow's chain of nodes is too long to follow") from None
    return result


def _run(nid: str, prompt, classes, result: RunResult) -> None:
    if nid in result.outputs:
        return
    node = prompt[nid]
    cls = classes[node["class_type"]]
    types = cls.INPUT_TYPES()
    specs = dict(types.get("required", {}))
    specs.update(types.get("optional", {}))
    lazy = _lazy(cls)
    inputs = node["inputs"]
    for name, v in inputs.items():
        if _is_link(v) and name not in lazy:
            _run(v[0], prompt, classes, result)

    def value(name):
        v = inputs[name]
        if _is_link(v):
            return result.outputs[v[0]][v[1]] if v[0] in result.outputs else None
        return _convert(specs.get(name), v)

    obj = cls()
    if lazy and hasattr(obj, "check_lazy_status"):
        kwargs = {name: value(name) for name in inputs}
        try:
            wanted = obj.check_lazy_status(**kwargs) or []
        except (host.Interrupted, KeyboardInterrupt):
            raise
        except Exception as e:  # noqa: BLE001 - reported with the node that refused
            raise ExecutionError("%s failed: %s" % (_label(prompt, nid), e), nid, traceback.format_exc()) from e
    else:
        wanted = list(lazy)
    for name in wanted:
        v = inputs.get(name)
        if name in lazy and _is_link(v):
            _run(v[0], prompt, classes, result)
    kwargs = {name: value(name) for name in inputs}
    host.log("running %s" % _label(prompt, nid))
    t0 = time.monotonic()
    try:
        out = getattr(obj, cls.FUNCTION)(**kwargs)
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
