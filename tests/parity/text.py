"""Golden runner for the umT5 text encoder (official and transformers namings)."""
import torch

from skyreels_pack.models.text.prompt import encode_token_ids
from skyreels_pack.models.text.umt5 import UMT5Config
from skyreels_pack.models.text.umt5_loader import load_umt5_model


def run_umt5(case):
    model, cfg = load_umt5_model(case.weights, weight_dtype="fp32", compute_dtype=torch.float32)
    declared = UMT5Config.from_official(case.config)
    assert cfg == declared, "config inferred from the weights %s differs from the case's %s" % (cfg, declared)
    ids, mask = case.inputs["ids"], case.inputs["mask"]
    with torch.no_grad():
        hidden = model(ids, mask)
    context = encode_token_ids(model, ids, mask)  # trimmed to the longest real sequence, then re-padded
    assert torch.all(context[mask == 0] == 0), "padded rows of the context must be exactly zero"
    return {"hidden_states": hidden, "context": context}


FAMILY = "wan"

RUNNERS = {"umt5_encoder": run_umt5}
