"""The SMOKE settings of a shipped workflow (cli/shipped): SMOKE_COMMON, then the workflow's own.

An item is ``INPUT=VALUE`` (every node with that widget) or ``NODE.INPUT=VALUE`` (only nodes of
that type or title), as ``python . run --set`` takes them.
"""
import json
from typing import Any, List, Optional, Sequence, Tuple

from skyreels_pack.cli import workflow as wf
from skyreels_pack.cli.shipped import SMOKE, SMOKE_COMMON
from skyreels_pack.nodes.registry import NODE_CLASS_MAPPINGS


def items(name: str, extra: Sequence[str] = ()) -> List[Tuple[Optional[str], str, Any]]:
    """(node type or title or None, input, value) of every setting, in order; ``extra``
    settings (e.g. of an ``EXTRA_SMOKE`` entry) come last."""
    out = []
    for item in SMOKE_COMMON + SMOKE[name][0] + list(extra):
        key, _, raw = item.partition("=")
        node, _, inp = key.rpartition(".")
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        out.append((node or None, inp, value))
    return out


def frames(name: str) -> int:
    return SMOKE[name][1]


def fps(name: str) -> float:
    """The frame rate of the smoke video (a third SMOKE element, else 24)."""
    return SMOKE[name][2] if len(SMOKE[name]) > 2 else 24.0


def size(name: str) -> Tuple[int, int]:
    """The width and height the smoke video has."""
    plain = {inp: v for node, inp, v in items(name) if node is None}
    return plain["width"], plain["height"]


def apply(data: dict, settings) -> int:
    """Set ``settings`` [(node, input, value)] on a UI workflow with our own writer; how many
    widgets were set."""
    count = 0
    for node, inp, value in settings:
        nodes = [n for n in data["nodes"] if node is None or node in (n.get("type"), n.get("title"))]
        count += wf.set_ui_widgets({"nodes": nodes}, NODE_CLASS_MAPPINGS, {inp: value})
    return count
