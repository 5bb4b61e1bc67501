"""The signature of renders made in pieces (sampling/resumable.py), which every family's loop builds."""
import pytest
import torch

from skyreels_pack.sampling.chunk_store import run_signature
from skyreels_pack.sampling.df_video import DFVideoSettings
from skyreels_pack.sampling.guidance import ModelInputs
from skyreels_pack.sampling.resumable import digest, piece_signature


def sig(inputs, model=None, **kw):
    return run_signature(piece_signature(DFVideoSettings(), inputs, model, **kw))


def test_every_value_counts_not_only_sums():
    x = torch.arange(12.0).view(1, 3, 4)
    assert sig({"prompt": x}) == sig({"prompt": x.clone()})
    assert sig({"prompt": x}) != sig({"prompt": x.flip(1)})  # same sum and sum of squares
    assert sig({"prompt": x}) != sig({"prompt": x.double()})
    assert sig({"prompts": [ModelInputs(x)]}) != sig({"prompts": [ModelInputs(x, time_refs=x)]})
    assert sig({"prompts": [ModelInputs(x)]}) != sig({"prompts": [ModelInputs(x, rope_frame_offset=2)]})


def test_weights_count_and_stand_ins_are_none():
    a, b = torch.nn.Linear(3, 3), torch.nn.Linear(3, 3)
    assert sig({}, a) != sig({}, b)
    assert sig({}, a, modules={"pose_guider": a}) != sig({}, a, modules={"pose_guider": b})
    stand_in = piece_signature(DFVideoSettings(), {}, lambda *args: None)
    assert stand_in["dit"] is None and stand_in["vae"] is None


def test_an_input_without_a_digest_is_refused():
    with pytest.raises(TypeError, match="no digest"):
        digest(object())
