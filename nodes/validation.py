"""Input checks shared by nodes (used in VALIDATE_INPUTS, so ComfyUI reports them before running).

Every node class registered in ``nodes/registry.py`` goes through :func:`guard`: its
VALIDATE_INPUTS first checks every widget value against the node's own INPUT_TYPES (a
number, finite, within min/max, one of the choices) and then runs the node's own checks.
ComfyUI's range checks let NaN through (``NaN < min`` is false) and are skipped altogether
for a node whose VALIDATE_INPUTS takes ``**kwargs``, so without this a ``cfg`` of NaN would
render a black video.  Nodes of every family get it by being registered.
"""
from __future__ import annotations

import inspect
import math
import time
from typing import Any, Dict, Optional

WIDGET_TYPES = ("INT", "FLOAT", "STRING", "BOOLEAN")
FREE_COMBOS = ("model",)  # file lists: a name that is not listed is checked (and refused) when loading


def _near(value: int, multiple: int):
    lo = (value // multiple) * multiple
    return [v for v in (lo, lo + multiple) if v > 0]


def check_size(width=None, height=None, num_frames=None, frames_rule: str = "4k+1"):
    """True, or a message naming the nearest valid values."""
    problems = []
    for name, v in (("width", width), ("height", height)):
        if v is not None and (v < 16 or v % 16):
            problems.append("%s %d is not a multiple of 16 (use %s)" % (name, v, " or ".join(map(str, _near(v, 16)))))
    if num_frames is not None:
        if frames_rule == "4k+1" and (num_frames < 1 or (num_frames - 1) % 4):
            lo = num_frames - (num_frames - 1) % 4
            problems.append("num_frames %d is not 4k+1 (use %s)" % (
                num_frames, " or ".join(str(v) for v in (lo, lo + 4) if v >= 1)))
        if frames_rule == "4k" and (num_frames < 4 or num_frames % 4):
            problems.append("num_frames %d is not a multiple of 4 (use %s)" % (
                num_frames, " or ".join(map(str, _near(num_frames, 4)))))
    return True if not problems else "; ".join(problems)


def is_widget(spec) -> bool:
    t = spec[0]
    return isinstance(t, (list, tuple)) or t in WIDGET_TYPES or t == "COMBO"


def check_value(name: str, spec, v) -> Optional[str]:
    """Why widget value ``v`` does not fit ``spec`` (an INPUT_TYPES entry), or None."""
    t = spec[0]
    o = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
    if isinstance(t, (list, tuple)):
        free = name in FREE_COMBOS or any(k.endswith("_upload") and u for k, u in o.items())
        try:
            listed = v in t
        except TypeError:
            listed = False
        if not free and not listed:
            return "%r is not one of the choices for %r (%s)" % (v, name, ", ".join(map(str, t[:12])))
        if free and not isinstance(v, str):
            return "%r must be a name, got %r" % (name, v)
        return None
    if t in ("INT", "FLOAT"):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return "%r must be a %s, got %r" % (name, "whole number" if t == "INT" else "number", v)
        if not math.isfinite(v):
            return "%r must be a finite number, got %r" % (name, v)
        if t == "INT" and int(v) != v:
            return "%r must be a whole number, got %r" % (name, v)
        if "min" in o and v < o["min"]:
            return "%r is %s, below its minimum %s" % (name, v, o["min"])
        if "max" in o and v > o["max"]:
            return "%r is %s, above its maximum %s" % (name, v, o["max"])
    if t == "BOOLEAN" and not isinstance(v, bool):
        return "%r must be true or false, got %r" % (name, v)
    if t == "STRING" and not isinstance(v, str):
        return "%r must be text, got %r" % (name, v)
    return None


_SPECS: Dict[type, tuple] = {}
SPEC_SECONDS = 5.0  # INPUT_TYPES may list model folders: not again for every node of one prompt


def _input_types(node_cls) -> dict:
    now = time.monotonic()
    hit = _SPECS.get(node_cls)
    if hit is None or now - hit[0] > SPEC_SECONDS:
        hit = _SPECS[node_cls] = (now, node_cls.INPUT_TYPES())
    return hit[1]


def check_widget_values(node_cls, values: Dict[str, Any]):
    """True, or every problem of the widget values in ``values`` ("; "-joined)."""
    types = _input_types(node_cls)
    specs = dict(types.get("required", {}))
    specs.update(types.get("optional", {}))
    problems = []
    for name, v in values.items():
        spec = specs.get(name)
        if spec is None or not is_widget(spec) or v is None:
            continue
        msg = check_value(name, spec, v)
        if msg:
            problems.append(msg)
    return True if not problems else "; ".join(problems)


def guard(node_cls):
    """Give ``node_cls`` a VALIDATE_INPUTS that checks every widget value, then runs the node's
    own VALIDATE_INPUTS (if any) with the arguments it declares.  Idempotent."""
    if getattr(node_cls, "_skyreels_guarded", None) is node_cls:
        return node_cls
    own = getattr(node_cls, "VALIDATE_INPUTS", None)
    params = inspect.signature(own).parameters if own is not None else {}
    takes_all = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    wants_types = "input_types" in params

    def run_own(kwargs):
        if own is None:
            return True
        args = kwargs if takes_all else {k: v for k, v in kwargs.items() if k in params}
        try:
            return own(**args)
        except (TypeError, ValueError, AttributeError) as e:  # odd values the node did not expect
            return "cannot check the inputs: %s" % e

    if wants_types:
        def VALIDATE_INPUTS(cls, input_types=None, **kwargs):
            ok = check_widget_values(cls, kwargs)
            return ok if ok is not True else run_own(dict(kwargs, input_types=input_types))
    else:
        def VALIDATE_INPUTS(cls, **kwargs):
            ok = check_widget_values(cls, kwargs)
            return ok if ok is not True else run_own(kwargs)

    VALIDATE_INPUTS.__doc__ = "Widget values in range and finite, then the node's own checks."
    node_cls.VALIDATE_INPUTS = classmethod(VALIDATE_INPUTS)
    node_cls._skyreels_guarded = node_cls
    return node_cls
