"""Input checks shared by nodes (used in VALIDATE_INPUTS, so ComfyUI reports them before running)."""
from __future__ import annotations


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
