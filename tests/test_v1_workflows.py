"""The SkyReels-V1 workflows carry the official defaults of video_generate.py."""
import os

from skyreels_pack.cli import workflow as wf
from skyreels_pack.cli.shipped import v1
from skyreels_pack.nodes.registry import NODE_CLASS_MAPPINGS

WORKFLOWS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "workflows")


def test_v1_workflows_have_the_official_defaults():
    assert set(v1.SHIPPED) == {"skyreels_v1_t2v.json", "skyreels_v1_i2v.json"}
    for name in v1.SHIPPED:
        api = wf.to_api(wf.load(os.path.join(WORKFLOWS, name)), NODE_CLASS_MAPPINGS)
        by_type = {n["class_type"]: n["inputs"] for n in api.values()}
        s = by_type["SkyReelsV1Sampler"]
        assert (s["steps"], s["cfg"], s["embedded_guidance"], s["shift"], s["seed"]) == (30, 6.0, 1.0, 7.0, 42)
        size = by_type["SkyReelsV1ImageToVideo" if "i2v" in name else "SkyReelsEmptyLatent"]
        assert (size["width"], size["height"], size["num_frames"]) == (960, 544, 97)
        enc = by_type["SkyReelsV1TextEncode"]
        assert enc["prompt"].startswith("FPS-24, ") and enc["negative_prompt"].startswith("Aerial view")
        assert by_type["SkyReelsSaveVideo"]["fps"] == 24.0
        loader = by_type["SkyReelsV1ModelLoader"]
        assert loader["model"] == v1.MODELS["v1_i2v" if "i2v" in name else "v1_t2v"][1]
