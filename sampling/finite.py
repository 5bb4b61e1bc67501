"""The guard every sampling loop runs after each step: latents that turn NaN or infinite stop
the run at once, naming the step, instead of decoding a black or grey video at the end."""
from __future__ import annotations

import torch


class NonFiniteError(FloatingPointError):
    """The latents stopped being finite numbers during sampling."""


HINT = ("the model produced values that are not numbers. Check the weights (a damaged or wrongly converted "
        "file, NaN in the file), the weight dtype (fp16 can overflow: try bf16), and cfg / shift")


def check_finite(x: torch.Tensor, step: int, total: int, what: str = "step") -> None:
    """Raise :class:`NonFiniteError` when ``x`` holds NaN or infinity after ``step`` (1-based)."""
    if not bool(torch.isfinite(x).all()):
        raise NonFiniteError("the latents became NaN or infinite at %s %d of %d: %s" % (what, step, total, HINT))
