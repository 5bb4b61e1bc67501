"""The SkyReels-A1 landmark driver: a portrait and a driving video of a face in, the control video
the A1 sampler reads out (``[the portrait's own landmarks, one retargeted frame per driving
frame]``, at the portrait's framing, 12 fps).

Steps (official ``inference.py`` + ``pre_process_lmk3d.py``, differences marked *ours*):

1. The portrait is framed to width x height (:func:`portrait.frame_portrait`, as the sampler
   frames it).  Its face box gives the face crop: the official rule widens the box to twice its
   width and makes it square (``face_crop``).  *Ours:* the box is the extent of the 478
   FaceLandmarker points (the official code takes insightface's detector box, a downloaded
   model).
2. Frame 0: the crop resized to 512 x 512, its landmarks drawn in the reference style.
3. The driving video is resampled to 12 fps by the official rule (``media.frames``); every
   frame's landmarks come from the FaceLandmarker (*ours:* run on a crop around the previous
   frame's face, falling back to the whole frame; frames without a face are held from their
   neighbours for up to ``hold_frames`` frames, else refused with the frame numbers; the
   official code silently drops them, shifting the video against its sound).
4. Retargeting: ``3d`` is the official SMIRK -> FLAME path (:mod:`retarget`, :mod:`flame`,
   :mod:`smirk`); ``2d`` (ours, always available) carries the relative landmark motion
   (:mod:`retarget_2d`).  Both are drawn in the official retarget style with the pupils placed
   by the driving frame's eyes, and pasted at the crop's place in a black frame.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable, Iterable, List, Optional, Sequence, Tuple

import numpy as np
import torch

from . import landmark_style as style
from .face_detect import FaceLandmarks, FaceResult, NoFaceError
from .landmark_draw import draw_reference_crop, draw_retarget_crop, paste
from .retarget import compose_flame_params, crop_face, project_points, pupil_points, warp_crop
from .retarget_2d import Retarget2D

RETARGET_MODES = ("2d", "3d")
REFERENCE_SIZE = 512
TARGET_FPS = 12.0
DETECT_WIDTH, DETECT_HEIGHT = 720, 480


@dataclass
class DriverSettings:
    retarget: str = "2d"
    smoothing: float = 0.3              # weight of the previous head pose (official: 1 - 0.7)
    expression_strength: float = 1.0
    pose_strength: float = 1.0
    hold_frames: int = 3

    def check(self) -> None:
        if self.retarget not in RETARGET_MODES:
            raise ValueError("retarget must be one of %s, got %r" % (", ".join(RETARGET_MODES), self.retarget))
        if not 0.0 <= self.smoothing < 1.0:
            raise ValueError("smoothing must be in [0, 1), got %r" % self.smoothing)
        if self.hold_frames < 0:
            raise ValueError("hold_frames must be >= 0")


@dataclass
class Models3D:
    """What the official 3D path needs: SMIRK's encoder, FLAME, and optionally the mediapipe
    blendshape -> FLAME eye-pose map ``bs2eye`` [52, 6]."""
    smirk: torch.nn.Module
    flame: torch.nn.Module
    bs2eye: Optional[np.ndarray] = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))


@dataclass
class PortraitFace:
    """The portrait's face, found on the portrait framed at the detection size (at least 720 x 480,
    the release's size: exactly the official pipeline there) and placed on the output frame."""
    framed: np.ndarray                  # [h, w, 3] uint8, the portrait framed at the detection size
    box: Tuple[int, int, int, int]      # x1, y1, x2, y2 of the face crop in ``framed``
    reference: np.ndarray               # [478, 3] normalised landmarks of the crop (at 512 x 512): frame 0
    crop_kpt: np.ndarray                # [478, 2] landmark pixels of the crop at its own size (3D source)
    out_box: Tuple[int, int, int, int] = None   # the crop's place on the output frame

    @property
    def crop(self) -> np.ndarray:
        x1, y1, x2, y2 = self.box
        return self.framed[y1:y2, x1:x2]

    @property
    def face_hw(self) -> Tuple[int, int]:
        x1, y1, x2, y2 = self.box
        return y2 - y1, x2 - x1

    @property
    def out_hw(self) -> Tuple[int, int]:
        x1, y1, x2, y2 = self.out_box
        return y2 - y1, x2 - x1


@dataclass
class DriverResult:
    control: torch.Tensor               # IMAGE [1 + V, H, W, 3]
    face: PortraitFace
    driving_indices: List[int]          # source frame of each driving frame (after 12 fps resampling)
    held: List[int] = field(default_factory=list)   # driving frames whose landmarks were held


def face_box(points: np.ndarray, width: int, height: int) -> Tuple[int, int, int, int]:
    """The official face crop (``face_crop``) around the box of ``points`` [N, 2]: twice as wide as
    the box, square, clipped to the image."""
    bx0, by0 = np.min(points[:, 0]), np.min(points[:, 1])
    bx1, by1 = np.max(points[:, 0]), np.max(points[:, 1])
    w, h = bx1 - bx0, by1 - by0
    x1 = max(0, int(bx0 - w / 2))
    x2 = min(width - 1, int(bx1 + w / 2))
    y_offset = ((x2 - x1) - h) / 2.0
    y1 = max(0, int(by0 - y_offset))
    y2 = min(height, int(by1 + y_offset))
    if (x2 - x1) > (y2 - y1):
        comp = int(((x2 - x1) - (y2 - y1)) / 2)
        x1, x2 = x1 + comp, x2 - comp
    if x2 - x1 < 2 or y2 - y1 < 2:
        raise NoFaceError("the face is too small to crop (%d x %d pixels)" % (x2 - x1, y2 - y1))
    return x1, y1, x2, y2


def detection_size(width: int, height: int) -> Tuple[int, int]:
    """The size the portrait is framed at to find its face: the output size, scaled up so that it
    covers 720 x 480 (the release's size, where this is exactly the official framing)."""
    s = max(1.0, DETECT_WIDTH / width, DETECT_HEIGHT / height)
    return int(round(width * s)), int(round(height * s))


def find_portrait_face(portrait: np.ndarray, landmarker: FaceLandmarks, width: int = DETECT_WIDTH,
                       height: int = DETECT_HEIGHT) -> PortraitFace:
    """Frames the portrait (any size, [H, W, 3] uint8) like the sampler does and finds its face."""
    import cv2

    from .portrait import frame_portrait

    dw, dh = detection_size(width, height)
    framed = frame_portrait(portrait, dw, dh)
    h, w = framed.shape[:2]
    whole = landmarker.detect(framed)
    if whole is None:
        raise NoFaceError("no face was found in the portrait; use a photo with a clearly visible, roughly frontal face")
    box = face_box(whole.pixels(), w, h)
    x1, y1, x2, y2 = box
    crop = np.ascontiguousarray(framed[y1:y2, x1:x2])
    native = landmarker.detect(crop)
    crop_kpt = native.pixels() if native is not None else whole.pixels() - np.array([x1, y1], dtype=np.float64)
    ref = landmarker.detect(cv2.resize(crop, (REFERENCE_SIZE, REFERENCE_SIZE)))
    if ref is not None:
        reference = ref.points
    else:  # the official script would fail here; the crop's own landmarks are the same points
        reference = np.concatenate([crop_kpt / np.array([x2 - x1, y2 - y1], dtype=np.float64),
                                    np.zeros((crop_kpt.shape[0], 1))], 1)
    sx, sy = width / w, height / h
    out_box = (int(round(x1 * sx)), int(round(y1 * sy)), int(round(x2 * sx)), int(round(y2 * sy)))
    return PortraitFace(framed, box, reference, crop_kpt, out_box)


class DrivingTracker:
    """FaceLandmarker results per driving frame: first on a crop around the previous face (the
    official driver also runs on face crops), then on the whole frame."""

    def __init__(self, landmarker: FaceLandmarks):
        self.landmarker = landmarker
        self.box: Optional[Tuple[int, int, int, int]] = None

    def __call__(self, frame: np.ndarray) -> Optional[FaceResult]:
        h, w = frame.shape[:2]
        found = None
        if self.box is not None:
            x1, y1, x2, y2 = self.box
            sub = self.landmarker.detect(np.ascontiguousarray(frame[y1:y2, x1:x2]))
            if sub is not None:
                px = sub.pixels() + np.array([x1, y1], dtype=np.float64)
                pts = sub.points.copy()
                pts[:, 0], pts[:, 1] = px[:, 0] / w, px[:, 1] / h
                found = FaceResult(pts, sub.blendshapes, (h, w))
        if found is None:
            found = self.landmarker.detect(frame)
        if found is not None:
            try:
                self.box = face_box(found.pixels(), w, h)
            except NoFaceError:
                self.box = None
        return found


def fill_dropouts(faces: List[Optional[FaceResult]], hold: int, source_frames: Sequence[int]) -> List[int]:
    """Fills frames without a face from the nearest earlier face (the first face for leading
    ones) when the gap is at most ``hold`` frames, in place; returns the filled frames.  Raises
    :class:`NoFaceError` naming the frames it cannot fill."""
    missing = [i for i, f in enumerate(faces) if f is None]
    if not missing:
        return []
    if len(missing) == len(faces):
        raise NoFaceError("no face was found in any of the %d driving frames; the driving video must show a "
                          "face" % len(faces))
    bad, held = [], []
    i = 0
    while i < len(faces):
        if faces[i] is not None:
            i += 1
            continue
        j = i
        while j < len(faces) and faces[j] is None:
            j += 1
        if j - i > hold:
            bad.extend(range(i, j))
        else:
            src = faces[i - 1] if i > 0 else faces[j]
            for k in range(i, j):
                faces[k] = src
                held.append(k)
        i = j
    if bad:
        shown = ", ".join("%d (source frame %d)" % (k, source_frames[k]) for k in bad[:6])
        more = " and %d more" % (len(bad) - 6) if len(bad) > 6 else ""
        raise NoFaceError("no face was found in driving frames %s%s (of %d, counted at 12 fps from 0). Trim those "
                          "frames, or raise hold_frames to %d to hold the last good landmarks through them"
                          % (shown, more, len(faces), _longest_run(bad)))
    return held


def _longest_run(frames: Sequence[int]) -> int:
    best = run = 1
    for a, b in zip(frames, frames[1:]):
        run = run + 1 if b == a + 1 else 1
        best = max(best, run)
    return best


def _image_frame(images: torch.Tensor, i: int) -> np.ndarray:
    return (images[i, :, :, :3].float().clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()


def smirk_params(models: Models3D, crops: Sequence[np.ndarray], batch: int = 16) -> List[dict]:
    """SMIRK's FLAME parameters of 224 x 224 RGB crops, one dict of [1, d] tensors each."""
    out = []
    for i in range(0, len(crops), batch):
        x = torch.from_numpy(np.stack(crops[i:i + batch])).permute(0, 3, 1, 2).float().div(255.0)
        p = models.smirk(x.to(models.device, next(models.smirk.parameters()).dtype))
        for b in range(x.shape[0]):
            out.append({k: v[b:b + 1].float().cpu() for k, v in p.items()})
    return out


def _eye_pose(models: Models3D, face: FaceResult) -> torch.Tensor:
    if models.bs2eye is None or face.blendshapes is None or face.blendshapes.shape[0] != models.bs2eye.shape[0]:
        return torch.zeros(1, 6)
    return torch.from_numpy((face.blendshapes[None].astype(np.float32) @ models.bs2eye.astype(np.float32)))


def drive(portrait: np.ndarray, driving: torch.Tensor, landmarker: FaceLandmarks, settings: DriverSettings,
          width: int = DETECT_WIDTH, height: int = DETECT_HEIGHT, fps: float = TARGET_FPS,
          models3d: Optional[Models3D] = None,
          on_frame: Optional[Callable[[int, np.ndarray, Optional[int]], None]] = None,
          progress=None, check_interrupt: Callable[[], None] = lambda: None) -> DriverResult:
    """The control video [1 + V, height, width, 3] for a portrait [H, W, 3] uint8 (framed like the
    sampler frames it) and a driving IMAGE [T, h, w, 3].

    ``fps``: the driving video's frame rate; it is resampled to 12 fps by the official rule
    (0: the frames are already at 12 fps and are used as they are).  ``on_frame(i, control,
    source)`` sees each finished control frame and the driving frame it comes from (None for
    frame 0), e.g. for previews."""
    from ...media.frames import resample_indices

    settings.check()
    if settings.retarget == "3d" and models3d is None:
        raise ValueError("the 3D retargeting needs SMIRK and FLAME")
    count = int(driving.shape[0])
    indices = resample_indices(count, fps, TARGET_FPS) if fps and fps > 0 else list(range(count))
    if not indices:
        raise ValueError("the driving video has no frames")
    face = find_portrait_face(portrait, landmarker, width, height)
    det_hw = face.face_hw
    out_hw = face.out_hw
    ox, oy = face.out_box[0], face.out_box[1]
    exact = out_hw == det_hw
    out = torch.empty(1 + len(indices), height, width, 3)
    first = paste(draw_reference_crop(face.reference.astype(np.float32), out_hw), (height, width), (oy, ox))
    out[0] = torch.from_numpy(first).float().div_(255.0)
    if on_frame is not None:
        on_frame(0, first, None)

    tracker = DrivingTracker(landmarker)
    faces: List[Optional[FaceResult]] = []
    crops: List[Optional[np.ndarray]] = []
    for i in indices:
        check_interrupt()
        frame = _image_frame(driving, i)
        f = tracker(frame)
        faces.append(f)
        if settings.retarget == "3d":
            crops.append(warp_crop(frame, crop_face(f.pixels())) if f is not None else None)
        if progress is not None:
            progress.update(1)
    held = fill_dropouts(faces, settings.hold_frames, indices)
    if settings.retarget == "3d":
        for k in held:  # a held frame takes its source's crop
            src = faces[k]
            crops[k] = next(crops[j] for j in range(len(faces)) if faces[j] is src and crops[j] is not None)

    pixels = [f.pixels() for f in faces]
    if settings.retarget == "2d":
        source = face.reference[:, :2] * np.array([det_hw[1], det_hw[0]], dtype=np.float64)
        mapper = Retarget2D(source, pixels[0], settings.expression_strength, settings.pose_strength,
                            settings.smoothing)
        frames = ((pts[list(style.INDEX_MAPPING)], None) for pts in map(mapper, pixels))
    else:
        frames = _flame_frames(face, faces, crops, models3d, settings, check_interrupt)

    for k, (pts, norm) in enumerate(frames):
        check_interrupt()
        if norm is None:
            norm = np.stack([pts[:, 0] / det_hw[1], pts[:, 1] / det_hw[0]], 1).astype(np.float32)
        pupils = pupil_points(pixels[k], pts)
        if exact:   # the official truncation of the pupil pixels
            pupils = [None if p is None else np.array(p, dtype=np.int32) for p in pupils]
        else:       # carried to the output crop first
            pupils = [None if p is None else np.array([p[0] * out_hw[1] / det_hw[1], p[1] * out_hw[0] / det_hw[0]],
                                                      dtype=np.int32) for p in pupils]
        crop = draw_retarget_crop(norm, pupils[0], pupils[1], out_hw)
        frame = paste(crop, (height, width), (oy, ox))
        out[k + 1] = torch.from_numpy(frame).float().div_(255.0)
        if on_frame is not None:
            on_frame(k + 1, frame, indices[k])
    return DriverResult(out, face, indices, held)


def _flame_frames(face: PortraitFace, faces: List[FaceResult], crops: List[np.ndarray], models: Models3D,
                  settings: DriverSettings, check_interrupt) -> Iterable[Tuple[np.ndarray, np.ndarray]]:
    """(pixels [113, 2] float64, normalised float32) per driving frame, through SMIRK and FLAME."""
    tform = crop_face(face.crop_kpt)
    source = smirk_params(models, [warp_crop(face.crop, tform)])[0]
    unique, slots = [], {}
    for c in crops:  # held frames share a crop: encode once
        if id(c) not in slots:
            slots[id(c)] = len(unique)
            unique.append(c)
    encoded = smirk_params(models, unique)
    driving = []
    for k, c in enumerate(crops):
        d = dict(encoded[slots[id(c)]])
        d["eye_pose_params"] = _eye_pose(models, faces[k])
        driving.append(d)
    params = compose_flame_params(source, driving, alpha=1.0 - settings.smoothing,
                                  expression_strength=settings.expression_strength,
                                  pose_strength=settings.pose_strength)
    flame = models.flame
    for p in params:
        check_interrupt()
        with torch.no_grad():
            verts = flame(p)
            pts = flame.project(verts, p["cam"])[0]
        yield project_points(pts, tform, face.face_hw)


def load_bs2eye(folder: Optional[str]) -> Optional[np.ndarray]:
    """The mediapipe blendshape -> FLAME eye-pose map (``bs2eye.npy`` [52, 6]) if the folder has it."""
    if not folder:
        return None
    p = os.path.join(folder, "bs2eye.npy")
    if not os.path.isfile(p):
        return None
    arr = np.load(p, allow_pickle=False)
    if arr.ndim != 2 or arr.shape[1] != 6:
        raise ValueError("%s is not a blendshape -> eye pose map ([52, 6]), got %s" % (p, list(arr.shape)))
    return arr
