"""The two drawing styles of the SkyReels-A1 control video (facts of the official visualizers).

The model was trained on control frames drawn exactly this way; a different colour, order or
marker size is a different input to it.

* **Frame 0** (``inference.py``: ``FaceMeshVisualizer2d(forehead_edge=False, draw_head=False,
  draw_iris=False).draw_landmarks_v3``) draws the portrait's own 478 FaceLandmarker points:
  :data:`REFERENCE_EDGES` (mediapipe's eye and eyebrow edge sets in their Python 3.11 iteration
  order, then 8 lip chains), 2x2 pupil blocks and a 4x4 grey nose block.
* **Frames 1..** (``renderer.py`` with ``draw_util.FaceMeshVisualizer(forehead_edge=False)``)
  draw 105 points, :data:`INDEX_MAPPING` (the mediapipe points SMIRK's FLAME embedding holds),
  with :data:`RETARGET_EDGES`: eyes, brows and lips (two eye edges in black, i.e. invisible);
  then 3x3 pupil markers and a 5x5 white nose square on point 57 (mediapipe 4).

Colours are in the channel order of the control video (RGB as stored); every line is
OpenCV ``LINE_8`` with thickness 1, drawn in the listed order (the order matters where
colours overlap).
"""
from __future__ import annotations

from typing import List, Sequence, Tuple

Colour = Tuple[int, int, int]
Edge = Tuple[int, int]

LEFT_EYE_COLOUR = (180, 200, 10)       # mediapipe "left" = the person's left eye (image right)
RIGHT_EYE_COLOUR = (10, 200, 180)
LEFT_BROW_COLOUR = (180, 220, 10)
RIGHT_BROW_COLOUR = (10, 220, 180)
BLACK = (0, 0, 0)

# The 8 custom lip chains of both visualizers, in their order.
LIP_CHAINS: Sequence[Tuple[Colour, Sequence[Edge]]] = (
    ((10, 180, 20), ((61, 146), (146, 91), (91, 181), (181, 84), (84, 17))),        # outer bottom left
    ((20, 10, 180), ((17, 314), (314, 405), (405, 321), (321, 375), (375, 291))),   # outer bottom right
    ((100, 100, 30), ((78, 95), (95, 88), (88, 178), (178, 87), (87, 14))),         # inner bottom left
    ((100, 150, 50), ((14, 317), (317, 402), (402, 318), (318, 324), (324, 308))),  # inner bottom right
    ((20, 80, 100), ((61, 185), (185, 40), (40, 39), (39, 37), (37, 0))),           # outer top left
    ((80, 100, 20), ((0, 267), (267, 269), (269, 270), (270, 409), (409, 291))),    # outer top right
    ((120, 100, 200), ((78, 191), (191, 80), (80, 81), (81, 82), (82, 13))),        # inner top left
    ((150, 120, 100), ((13, 312), (312, 311), (311, 310), (310, 415), (415, 308))),  # inner top right
)

# --------------------------------------------------------------------------- frame 0

REFERENCE_GROUPS: Sequence[Tuple[Colour, Sequence[Edge]]] = (
    (LEFT_EYE_COLOUR, ((374, 380), (390, 373), (249, 390), (385, 384), (373, 374), (263, 466), (387, 386),
                       (381, 382), (384, 398), (466, 388), (386, 385), (388, 387), (263, 249), (380, 381),
                       (398, 362), (382, 362))),
    (RIGHT_EYE_COLOUR, ((154, 155), (33, 7), (246, 161), (159, 158), (144, 145), (173, 133), (158, 157),
                        (163, 144), (153, 154), (7, 163), (161, 160), (157, 173), (33, 246), (160, 159),
                        (145, 153), (155, 133))),
    (LEFT_BROW_COLOUR, ((334, 296), (276, 283), (293, 334), (295, 285), (296, 336), (282, 295), (283, 282),
                        (300, 293))),
    (RIGHT_BROW_COLOUR, ((46, 53), (66, 107), (52, 65), (53, 52), (63, 105), (70, 63), (65, 55), (105, 66))),
) + tuple(LIP_CHAINS)

# (landmark, colour): the pupils, then the nose tip
REFERENCE_PUPILS: Sequence[Tuple[int, Colour]] = ((468, (10, 200, 250)), (473, (250, 200, 10)))
REFERENCE_PUPIL_HALF = 1          # canvas[y-1:y+1, x-1:x+1]: 2x2
REFERENCE_NOSE: Tuple[int, Colour] = (4, (200, 200, 200))
REFERENCE_NOSE_HALF = 2           # 4x4

# --------------------------------------------------------------------------- frames 1..

# The 105 mediapipe points of the FLAME embedding, in the embedding's order.
INDEX_MAPPING: Sequence[int] = (
    276, 282, 283, 285, 293, 295, 296, 300, 334, 336, 46, 52, 53, 55, 63, 65, 66, 70, 105, 107, 249, 263, 362,
    373, 374, 380, 381, 382, 384, 385, 386, 387, 388, 390, 398, 466, 7, 33, 133, 144, 145, 153, 154, 155, 157,
    158, 159, 160, 161, 163, 173, 246, 168, 6, 197, 195, 5, 4, 129, 98, 97, 2, 326, 327, 358, 0, 13, 14, 17, 37,
    39, 40, 61, 78, 80, 81, 82, 84, 87, 88, 91, 95, 146, 178, 181, 185, 191, 267, 269, 270, 291, 308, 310, 311,
    312, 314, 317, 318, 321, 324, 375, 402, 405, 409, 415)
# The renderer appends 8 FLAME eye vertices (never drawn): 113 points in all.
EYE_VERTICES_RIGHT = (4543, 4511, 4479, 4575)
EYE_VERTICES_LEFT = (3997, 3965, 3933, 4020)
RETARGET_POINTS = len(INDEX_MAPPING) + len(EYE_VERTICES_RIGHT) + len(EYE_VERTICES_LEFT)

# In mediapipe ids; drawn between the points' positions in the 113-point list.
RETARGET_GROUPS_MP: Sequence[Tuple[Colour, Sequence[Edge]]] = (
    (RIGHT_EYE_COLOUR, ((144, 145), (145, 153), (153, 154), (154, 155))),
    (BLACK, ((155, 157),)),
    (RIGHT_EYE_COLOUR, ((157, 158), (158, 159), (159, 160), (160, 161))),
    (BLACK, ((161, 33),)),
    (RIGHT_EYE_COLOUR, ((33, 7), (7, 163), (163, 144))),
    (LEFT_EYE_COLOUR, ((362, 382), (382, 381), (381, 380), (380, 374), (374, 373), (373, 390), (390, 249),
                       (249, 263), (263, 466), (466, 388), (388, 387), (387, 386), (386, 385), (385, 384),
                       (384, 398), (398, 362))),
    (LEFT_BROW_COLOUR, ((285, 295), (295, 282), (282, 283), (283, 276), (336, 296), (296, 334), (334, 293),
                        (293, 300))),
    (RIGHT_EYE_COLOUR, ((155, 133), (133, 173), (173, 157), (161, 246), (246, 33))),
    (RIGHT_BROW_COLOUR, ((46, 53), (53, 52), (52, 65), (65, 55), (70, 63), (63, 105), (105, 66), (66, 107))),
) + tuple(LIP_CHAINS)

RETARGET_LEFT_PUPIL_COLOUR = (10, 200, 250)    # at the pupil of point 468
RETARGET_RIGHT_PUPIL_COLOUR = (250, 200, 10)   # at the pupil of point 473
RETARGET_NOSE_POSITION = 57                    # INDEX_MAPPING[57] == 4, the nose tip
RETARGET_NOSE_COLOUR = (255, 255, 255)

# The 16 eye-contour points the pupils are placed by (a RANSAC affine from the driving frame's
# contour onto the drawn one), and the two pupil landmarks.
EYE_CONTOUR_468: Sequence[int] = (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246)
EYE_CONTOUR_473: Sequence[int] = (362, 382, 381, 380, 374, 373, 390, 249, 263, 466, 388, 387, 386, 385, 384, 398)
PUPIL_RANSAC_THRESHOLD = 3.0


def flat(groups: Sequence[Tuple[Colour, Sequence[Edge]]]) -> List[Tuple[int, int, Colour]]:
    """[(a, b, colour), ...] in drawing order."""
    return [(a, b, colour) for colour, edges in groups for a, b in edges]


def reference_connections() -> List[Tuple[int, int, Colour]]:
    """Frame 0's connections over the 478 FaceLandmarker points."""
    return flat(REFERENCE_GROUPS)


def retarget_connections() -> List[Tuple[int, int, Colour]]:
    """Frames 1..'s connections over the 113-point list (positions in :data:`INDEX_MAPPING`)."""
    pos = {mp: i for i, mp in enumerate(INDEX_MAPPING)}
    return [(pos[a], pos[b], colour) for a, b, colour in flat(RETARGET_GROUPS_MP)]
