"""The cut tags of SkyReels-V3 shot switching: a prompt starts with the kind of cut to make.

``[ZOOM_IN_CUT]`` and ``[ZOOM_OUT_CUT]`` are the tags of the official code and README.  The
README names three more kinds of cut (shot / reverse shot, multi-angle, cut away) but publishes
no tag for them; the tags here follow the same pattern and are a guess (unverified).
"""
from __future__ import annotations

import re

CUT_TAGS = {
    "[ZOOM_IN_CUT]": "cut-in: a closer shot of the same subject",
    "[ZOOM_OUT_CUT]": "cut-out: a wider shot that shows the surroundings",
    "[SHOT_REVERSE_SHOT]": "shot / reverse shot: the other side of a face-to-face exchange (unofficial tag)",
    "[MULTI_ANGLE]": "multi-angle: the same moment from another camera angle (unofficial tag)",
    "[CUT_AWAY]": "cut away: to something else in the scene, then the story goes on (unofficial tag)",
}
NO_TAG = "none"

_LEADING_TAG = re.compile(r"^\s*\[[A-Z_]+\]\s*")


def with_cut_tag(prompt: str, tag: str) -> str:
    """``prompt`` starting with ``tag`` (a tag already at its start is replaced; ``none``
    removes it)."""
    if tag != NO_TAG and tag not in CUT_TAGS:
        raise ValueError("unknown cut tag %r; choose one of %s" % (tag, ", ".join([NO_TAG, *CUT_TAGS])))
    body = _LEADING_TAG.sub("", prompt or "", count=1).strip()
    return body if tag == NO_TAG else ("%s %s" % (tag, body)).strip()
