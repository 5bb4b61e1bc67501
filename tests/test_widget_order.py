"""Widget values in the order the real ComfyUI editor saves them, and the UI->API reader.

The ComfyUI frontend (1.2x, shipped with ComfyUI 0.3.6x) puts the upload button of an
``image_upload`` / ``video_upload`` combo LAST among a node's widgets and saves its value
("image", for every upload kind) last in ``widgets_values``; a seed's "control after generate"
value comes right after the seed.  Earlier versions of this pack (and the legacy frontend)
saved the upload value right after the file name.  The reader tells the two apart from the
values; ``tests/test_editor.py`` checks the same against the real editor.
"""
import json
import os

import pytest

from skyreels_pack.cli import workflow as wf
from skyreels_pack.cli.shipped import SHIPPED
from skyreels_pack.cli.workflow_builder import editor_widget_values
from skyreels_pack.nodes.registry import NODE_CLASS_MAPPINGS as NODES

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VIDEO = NODES["SkyReelsLoadVideo"]
IMAGE = NODES["SkyReelsLoadImage"]


class UploadThenText:
    """A node whose upload combo is followed by a text widget: the one shape where the two
    placements of the upload value can mean different things."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image": (["a.png", "b.png"], {"image_upload": True}),
                             "suffix": ("STRING", {"default": ""})}}


class SeedAndUpload:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"seed": ("INT", {"default": 0, "control_after_generate": True}),
                             "video": (["v.mp4"], {"video_upload": True}),
                             "scale": ("FLOAT", {"default": 1.0})}}


# What the editor saves for a fresh node, seen in ComfyUI 0.3.6x / frontend 1.27 (widget names in
# the editor: video, frame_load_cap, skip_first_frames, select_every_nth, upload).
def test_builder_writes_what_the_editor_saves():
    assert editor_widget_values(VIDEO, {"video": "clip.mp4"}) == ["clip.mp4", 0, 0, 1, "image"]
    assert editor_widget_values(IMAGE, {"image": "a.png"}) == ["a.png", "image"]
    df = editor_widget_values(NODES["SkyReelsDFSampler"], {})
    assert df[3:5] == [0, "fixed"]                       # seed, then its control value
    assert editor_widget_values(SeedAndUpload, {"seed": 7}) == [7, "fixed", "v.mp4", 1.0, "image"]


def test_every_shipped_node_keeps_the_upload_value_last():
    for name in SHIPPED:
        with open(os.path.join(ROOT, "workflows", name), encoding="utf-8") as f:
            data = json.load(f)
        for node in data["nodes"]:
            cls = NODES.get(node["type"])
            if cls is None or not any(wf.has_upload(s) for _, s in wf.widget_inputs(cls)):
                continue
            values = node["widgets_values"]
            assert values[-1] == "image" and "image" not in values[1:-1], (name, node["type"], values)
            assert wf.detect_order(cls, values) == wf.EDITOR_ORDER


READ_CASES = [
    # (label, class, saved values, expected order, expected inputs)
    ("editor", VIDEO, ["clip.mp4", 12, 3, 2, "image"], wf.EDITOR_ORDER,
     {"video": "clip.mp4", "frame_load_cap": 12, "skip_first_frames": 3, "select_every_nth": 2}),
    ("legacy pack", VIDEO, ["clip.mp4", "video", 12, 3, 2], wf.LEGACY_ORDER,
     {"video": "clip.mp4", "frame_load_cap": 12, "skip_first_frames": 3, "select_every_nth": 2}),
    ("legacy frontend, image word", VIDEO, ["clip.mp4", "image", 12, 3, 2], wf.LEGACY_ORDER,
     {"video": "clip.mp4", "frame_load_cap": 12, "skip_first_frames": 3, "select_every_nth": 2}),
    ("no upload value", VIDEO, ["clip.mp4", 12, 3, 2], wf.BARE_ORDER,
     {"video": "clip.mp4", "frame_load_cap": 12, "skip_first_frames": 3, "select_every_nth": 2}),
    # saved before select_every_nth existed (inputs are only ever appended): fewer values
    ("editor, older node", VIDEO, ["clip.mp4", 12, 3, "image"], wf.EDITOR_ORDER,
     {"video": "clip.mp4", "frame_load_cap": 12, "skip_first_frames": 3}),
    ("legacy, older node", VIDEO, ["clip.mp4", "video", 12, 3], wf.LEGACY_ORDER,
     {"video": "clip.mp4", "frame_load_cap": 12, "skip_first_frames": 3}),
    # the old shipped file opened in the editor (shifted: frame_load_cap NaN) and saved again
    ("legacy re-saved by the editor", VIDEO, ["clip.mp4", None, 0, 0, 1], wf.LEGACY_ORDER,
     {"video": "clip.mp4", "frame_load_cap": 0, "skip_first_frames": 0, "select_every_nth": 1}),
    # values that fit both placements the same way
    ("image only", IMAGE, ["a.png", "image"], None, {"image": "a.png"}),
    ("image, no upload value", IMAGE, ["a.png"], None, {"image": "a.png"}),
    ("editor, all zeros", VIDEO, ["clip.mp4", 0, 0, 1, "image"], wf.EDITOR_ORDER,
     {"video": "clip.mp4", "frame_load_cap": 0, "skip_first_frames": 0, "select_every_nth": 1}),
    ("same text either way", UploadThenText, ["a.png", "image", "image"], None,
     {"image": "a.png", "suffix": "image"}),
    # a null/"" upload value is weaker evidence than the word the editor and the pack write
    ("editor, empty text", UploadThenText, ["a.png", "", "image"], wf.EDITOR_ORDER,
     {"image": "a.png", "suffix": ""}),
    ("legacy, empty text", UploadThenText, ["a.png", "image", ""], wf.LEGACY_ORDER,
     {"image": "a.png", "suffix": ""}),
    ("seed before the upload, editor", SeedAndUpload, [5, "increment", "v.mp4", 0.5, "image"], wf.EDITOR_ORDER,
     {"seed": 5, "video": "v.mp4", "scale": 0.5}),
    ("seed before the upload, legacy", SeedAndUpload, [5, "increment", "v.mp4", "video", 0.5], wf.LEGACY_ORDER,
     {"seed": 5, "video": "v.mp4", "scale": 0.5}),
]


@pytest.mark.parametrize("label,cls,values,order,expected", READ_CASES, ids=[c[0] for c in READ_CASES])
def test_reader_detects_where_the_upload_value_is(label, cls, values, order, expected):
    if order is not None:
        assert wf.detect_order(cls, values) == order
    assert wf.widget_values_to_inputs(cls, values) == expected


@pytest.mark.parametrize("values", [["a.png", "video", "image"], ["a.png", "image", "video"],
                                    ["a.png", "file", "audio"]])
def test_reader_refuses_to_guess_when_both_readings_differ(values):
    with pytest.raises(wf.WorkflowError) as e:
        wf.widget_values_to_inputs(UploadThenText, values, "node 5 (X): ")
    assert "node 5 (X)" in str(e.value) and "two ways" in str(e.value)


def test_old_shipped_extend_workflow_reads_like_the_new_one():
    """A file written by an earlier version of the pack converts to the same prompt."""
    with open(os.path.join(ROOT, "workflows", "skyreels_v2_df_extend.json"), encoding="utf-8") as f:
        new = json.load(f)
    old = json.loads(json.dumps(new))
    for node in old["nodes"]:
        if node["type"] == "SkyReelsLoadVideo":
            v = node["widgets_values"]
            assert v[-1] == "image"
            node["widgets_values"] = [v[0], "video"] + v[1:-1]
    assert wf.to_api(old, NODES) == wf.to_api(new, NODES)
    video = next(n for n in wf.to_api(new, NODES).values() if n["class_type"] == "SkyReelsLoadVideo")
    assert video["inputs"] == {"video": "skyreels_example_clip.mp4", "frame_load_cap": 0,
                               "skip_first_frames": 0, "select_every_nth": 1}


def test_set_ui_widgets_writes_the_right_slot_in_both_orders():
    for values in (["clip.mp4", 0, 0, 1, "image"], ["clip.mp4", "video", 0, 0, 1]):
        data = {"nodes": [{"id": 1, "type": "SkyReelsLoadVideo", "widgets_values": list(values)}]}
        assert wf.set_ui_widgets(data, NODES, {"skip_first_frames": 4}) == 1
        got = wf.widget_values_to_inputs(VIDEO, data["nodes"][0]["widgets_values"])
        assert got == {"video": "clip.mp4", "frame_load_cap": 0, "skip_first_frames": 4, "select_every_nth": 1}


def test_unhashable_saved_values_do_not_break_the_reader():
    assert wf.widget_values_to_inputs(VIDEO, ["clip.mp4", [1], {"a": 1}, 1, "image"])["video"] == "clip.mp4"
