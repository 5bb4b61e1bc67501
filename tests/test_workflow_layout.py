"""The layout rule of the workflow builder (cli/workflow_layout.py): nothing overlaps, nothing
sits below an output node.  tests/test_editor.py checks the same in the real editor."""
import pytest

from skyreels_pack.cli import workflow_layout as lay
from skyreels_pack.cli.shipped import SHIPPED
from skyreels_pack.cli.workflow_builder import Node, Note, build
from skyreels_pack.nodes.registry import NODE_CLASS_MAPPINGS as NODES


def _box(node):
    x, y = node["pos"]
    w, h = node["size"]
    return x, y - lay.TITLE_H, x + w, y + h


def _overlap(a, b):
    return min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[1], b[1])


def test_a_node_moves_down_below_what_it_would_cover():
    pos = lay.arrange([("a", (40, 40), (320, 200), False, "A"), ("b", (40, 100), (320, 100), False, "B"),
                       ("c", (400, 100), (320, 100), False, "C")])
    assert pos["a"] == (40, 40)
    assert pos["b"] == (40, 40 + 200 + lay.GAP + lay.TITLE_H)      # pushed below A, title bar included
    assert pos["c"] == (400, 100)                                  # another column: untouched


def test_nothing_may_sit_below_an_output_node_in_its_column():
    with pytest.raises(ValueError) as e:
        lay.arrange([("save", (800, 40), (320, 120), True, "Save Video #9"),
                     ("note", (700, 600), (340, 400), False, "the Note #90")])
    assert "the Note #90" in str(e.value) and "Save Video #9" in str(e.value)
    # beside it, or above it, is fine
    lay.arrange([("save", (800, 400), (320, 120), True, "S"), ("n", (1180, 600), (340, 400), False, "N"),
                 ("m", (800, 40), (320, 200), False, "M")])


def test_builder_applies_the_rule_to_any_family():
    graph = [Node(1, "SkyReelsLoadImage", (40, 40), {"image": "x.png"}),
             Node(2, "SkyReelsSaveVideo", (420, 40), {}, {"images": (1, 0)}),
             Note(3, (40, 60), "a note placed over the image")]
    data = build(graph, NODES)
    boxes = [_box(n) for n in data["nodes"]]
    assert not any(_overlap(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
    with pytest.raises(ValueError):
        build(graph + [Note(4, (420, 300), "below Save Video")], NODES)


def test_node_height_counts_slots_widgets_and_media_previews():
    save = lay.node_height(NODES["SkyReelsSaveVideo"])       # 2 input slots, 3 widgets
    assert save == 2 * lay.SLOT_H + 3 * lay.WIDGET_H + 14
    image = lay.node_height(NODES["SkyReelsLoadImage"])      # 2 outputs, combo, upload button, preview
    assert image == 2 * lay.SLOT_H + 2 * lay.WIDGET_H + lay.MEDIA_PREVIEW_H + 14


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_layouts_nothing_overlaps_and_the_view_fits(name):
    data = build(SHIPPED[name](), NODES, file_name=name)
    boxes = [_box(n) for n in data["nodes"]]
    bad = [(data["nodes"][i]["id"], data["nodes"][j]["id"]) for i, a in enumerate(boxes)
           for j, b in enumerate(boxes) if i < j and _overlap(a, b)]
    assert bad == []
    ds = data["extra"]["ds"]
    x0, y0 = min(b[0] for b in boxes), min(b[1] for b in boxes)
    x1, y1 = max(b[2] for b in boxes), max(b[3] for b in boxes)
    if ds["scale"] > lay.MIN_SCALE:  # the saved view shows the whole graph, unless it is too big to read
        assert (x1 - x0) * ds["scale"] <= lay.VIEW_W and (y1 - y0) * ds["scale"] <= lay.VIEW_H


def test_needed_scale_counts_the_result_preview_below_output_nodes():
    plain = [((0, 0, 1500, 860 - lay.RESULT_PREVIEW_H), False)]
    assert lay.needed_scale(plain) == 1.0
    assert lay.needed_scale([(plain[0][0], True)]) == 1.0                 # the preview's room just fits
    tall = [((0, 0, 320, 2 * 860 - lay.RESULT_PREVIEW_H), True)]
    assert lay.needed_scale(tall) == pytest.approx(0.5)
    assert lay.fit_view(tall)["scale"] == lay.MIN_SCALE                   # clamped: only the top left shows


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_workflow_fits_one_screen(name):
    """The saved view shows the whole graph, with the room for result previews, at a scale at
    which the editor still draws the nodes' text: no shipped workflow opens cut off."""
    data = build(SHIPPED[name](), NODES, file_name=name)
    boxes = [(_box(n), n["type"] in NODES and lay.is_result_preview(NODES[n["type"]])) for n in data["nodes"]]
    scale = lay.needed_scale(boxes)
    assert scale >= lay.MIN_SCALE, "%s needs scale %.3f to show at once (%d x %d px of canvas); rearrange it" % (
        name, scale, max(b[2] for b, _ in boxes) - min(b[0] for b, _ in boxes),
        max(b[3] + (lay.RESULT_PREVIEW_H if g else 0) for b, g in boxes) - min(b[1] for b, _ in boxes))
    assert data["extra"]["ds"]["scale"] == int(scale * 100) / 100
