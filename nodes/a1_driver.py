"""SkyReels-A1 landmark driver: a driving video of a face -> the control video the A1 sampler reads.

The release's extra models live beside ``SkyReels-A1-5B/`` in one folder
(``models/diffusion_models/SkyReels-A1/``): ``mediapipe/`` (the face landmarker), and for the
official 3D retargeting ``smirk/`` and ``FLAME/``.  Without those two the 2D retargeting runs.
"""
from __future__ import annotations

import os

import numpy as np
import torch

from .. import host
from . import handles
from .a1 import DEFAULT_DETECTOR, _listing, _resolve
from .base import CONDITIONING, LOADERS, MAX_RESOLUTION, NodeError

DETECTOR_KINDS = ("diffusion_models", "mediapipe")
RETARGET_CHOICES = ("auto", "3d", "2d")
MODELS_3D = ("auto", "none")
MISSING_3D = ("the 3D retargeting needs SMIRK and FLAME in the A1 folder (%s): smirk/SMIRK_em1.pt, "
              "smirk/l_eyelid.npy, smirk/r_eyelid.npy, smirk/mediapipe_landmark_embedding.npz and "
              "FLAME/generic_model.pkl (FLAME needs a licence from flame.is.tue.mpg.de); or choose retarget 2d")


class A1DriverLoader:
    DESCRIPTION = ("Loads the SkyReels-A1 landmark driver's models: MediaPipe's face landmarker (the release's "
                   "mediapipe/ folder), and, when the A1 folder has them, SMIRK and FLAME for the official 3D "
                   "retargeting. Nothing is downloaded.")
    CATEGORY = LOADERS
    RETURN_TYPES = (handles.A1_DRIVER,)
    RETURN_NAMES = ("driver",)
    OUTPUT_TOOLTIPS = ("The landmarker, plus SMIRK and FLAME when found.",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        found = _listing(DETECTOR_KINDS, extensions=(".task",), include_folders=False)
        tasks = [DEFAULT_DETECTOR] + [f for f in found if f != DEFAULT_DETECTOR]
        return {
            "required": {
                "face_landmarker": (tasks, {
                    "default": DEFAULT_DETECTOR,
                    "tooltip": "MediaPipe's face_landmarker_v2_with_blendshapes.task from the A1 release's mediapipe/ "
                               "folder (models/diffusion_models/SkyReels-A1/mediapipe/...). It finds the 478 face "
                               "points of the portrait and of every driving frame."}),
                "models_3d": (list(MODELS_3D), {
                    "default": "auto",
                    "tooltip": "auto: load SMIRK and FLAME for the official 3D retargeting when the A1 folder (the "
                               "folder above mediapipe/) has smirk/ and FLAME/; none: the 2D retargeting only."}),
            },
            "optional": {
                "landmarker_path": ("STRING", {"default": "", "tooltip": "A full path to the .task file; overrides "
                                                                         "'face_landmarker'."}),
                "a1_folder": ("STRING", {"default": "", "tooltip": "The folder that holds smirk/ and FLAME/ (default: "
                                                                   "the folder above the landmarker's mediapipe/)."}),
            },
        }

    def load(self, face_landmarker, models_3d, landmarker_path="", a1_folder=""):
        task = (landmarker_path or "").strip()
        if task:  # a name or path inside the model folders only
            task = _resolve(DETECTOR_KINDS, "", task)
        else:
            try:
                task = _resolve(DETECTOR_KINDS, face_landmarker)
            except NodeError:
                raise NodeError("the face landmarker %s was not found: put the SkyReels-A1 release's mediapipe/ folder "
                                "(face_landmarker_v2_with_blendshapes.task) under models/diffusion_models/SkyReels-A1/, "
                                "or give its path in 'landmarker_path'" % face_landmarker) from None
        if not os.path.isfile(task):
            raise NodeError("face landmarker file not found: %s" % task)
        folder = (a1_folder or "").strip()
        folder = _resolve(DETECTOR_KINDS, "", folder) if folder else os.path.dirname(os.path.dirname(os.path.abspath(task)))
        handle = handles.A1DriverHandle(task, folder=folder)
        if models_3d == "auto":
            handle.smirk, handle.flame, handle.bs2eye = _load_3d(folder, os.path.dirname(task))
        return (handle,)


def _load_3d(folder: str, mediapipe_dir: str):
    """(SMIRK, FLAME, bs2eye) from the A1 folder, or Nones when it lacks smirk/ or FLAME/."""
    from ..models.a1.driver import load_bs2eye
    from ..models.a1.flame import Flame, FlameFiles
    from ..models.a1.smirk import CHECKPOINT, load_smirk
    from ..models.loading.safe_pickle import RefusedPickle

    files = FlameFiles(os.path.join(folder, "FLAME"), os.path.join(folder, "smirk"))
    smirk_file = os.path.join(files.smirk_dir, CHECKPOINT)
    if files.missing() or not os.path.isfile(smirk_file):
        host.log("SkyReels A1 driver: no smirk/ + FLAME/ in %s: 2D retargeting only" % folder)
        return None, None, None
    try:
        smirk = load_smirk(smirk_file, device=host.offload_device())
        flame = Flame.from_files(files)
        bs2eye = load_bs2eye(mediapipe_dir) if os.path.isdir(mediapipe_dir) else None
        if bs2eye is None:
            bs2eye = load_bs2eye(os.path.join(folder, "mediapipe"))
    except (RefusedPickle, ValueError, FileNotFoundError, OSError) as e:
        raise NodeError("the 3D driver models in %s could not be loaded: %s" % (folder, e)) from e
    return smirk, flame, bs2eye


class A1LandmarkDriver:
    DESCRIPTION = ("The SkyReels-A1 landmark driver: a driving video of a face -> the control video the A1 sampler "
                   "needs (frame 0: the portrait's own landmarks; then one frame per driving frame at 12 fps), drawn "
                   "exactly in the official style (eyes, brows, lips, pupils, nose). 3d: the official SMIRK + FLAME "
                   "retargeting (keeps the portrait's face shape and place, takes the driving expression and head "
                   "rotation). 2d: the driving face's motion relative to its first frame carried onto the portrait's "
                   "landmarks (needs only the landmarker).")
    CATEGORY = CONDITIONING
    RETURN_TYPES = ("IMAGE", "IMAGE", "FLOAT")
    RETURN_NAMES = ("control_video", "preview", "fps")
    OUTPUT_TOOLTIPS = ("The control video for the A1 sampler: 1 + driving frames, at width x height.",
                       "The landmarks over the portrait, with the driving frame in the corner (to check the "
                       "retargeting).",
                       "12.0: the control video's frame rate (the A1 sampler's output has it too).")
    FUNCTION = "drive"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "driver": (handles.A1_DRIVER, {"tooltip": "From SkyReels A1 Landmark Driver Loader."}),
            "portrait": ("IMAGE", {"tooltip": "The portrait to animate (the same image the A1 sampler gets)."}),
            "driving_video": ("IMAGE", {"tooltip": "Frames of a video of a face (Load Video)."}),
            "driving_fps": ("FLOAT", {"default": 24.0, "min": 0.0, "max": 1000.0, "step": 0.001,
                                      "tooltip": "The driving video's frame rate (connect Load Video's fps). It is "
                                                 "resampled to 12 fps by the official rule. 0: the frames are already "
                                                 "at 12 fps."}),
            "retarget": (list(RETARGET_CHOICES), {
                "default": "auto",
                "tooltip": "3d: official (SMIRK + FLAME; needs smirk/ and FLAME/ in the A1 folder). 2d: relative "
                           "landmark motion, needs nothing more. auto: 3d when the loader found SMIRK and FLAME, else "
                           "2d."}),
            "pose_smoothing": ("FLOAT", {"default": 0.3, "min": 0.0, "max": 0.95, "step": 0.01,
                                         "tooltip": "Weight of the previous frame's head pose (official 0.3: "
                                                    "p = 0.7 new + 0.3 previous). 0 = no smoothing."}),
            "expression_strength": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 2.0, "step": 0.05,
                                              "tooltip": "How much of the driving expression (mouth, eyes, brows) "
                                                         "the portrait takes (1 = all, as official)."}),
            "head_pose_strength": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 2.0, "step": 0.05,
                                             "tooltip": "How much of the driving head motion the portrait takes "
                                                        "(1 = all, 0 = the head stays still)."}),
            "hold_frames": ("INT", {"default": 3, "min": 0, "max": 1000,
                                    "tooltip": "Driving frames without a detectable face are given the last good "
                                               "landmarks, for gaps up to this many frames (at 12 fps); longer gaps "
                                               "stop with the frame numbers."}),
            "width": ("INT", {"default": 720, "min": 16, "max": MAX_RESOLUTION, "step": 16,
                              "tooltip": "Control video width: the A1 sampler's width (720 for the release)."}),
            "height": ("INT", {"default": 480, "min": 16, "max": MAX_RESOLUTION, "step": 16,
                               "tooltip": "Control video height: the A1 sampler's height (480 for the release)."}),
        }}

    def drive(self, driver, portrait, driving_video, driving_fps, retarget, pose_smoothing, expression_strength,
              head_pose_strength, hold_frames, width, height):
        from ..media.frames import resample_indices
        from ..models.a1.driver import TARGET_FPS, DriverSettings, Models3D, drive
        from ..models.a1.face_detect import FaceLandmarks, NoFaceError
        from ..models.a1.portrait import frame_portrait, image_to_uint8
        from ..models.placement import on_device

        for name, img in (("portrait", portrait), ("driving_video", driving_video)):
            if not isinstance(img, torch.Tensor) or img.dim() != 4 or img.shape[-1] < 3 or img.shape[0] < 1:
                raise NodeError("%s must be an IMAGE [frames, height, width, 3]" % name)
        mode = retarget if retarget != "auto" else ("3d" if driver.has_3d else "2d")
        if mode == "3d" and not driver.has_3d:
            raise NodeError(MISSING_3D % driver.folder)
        settings = DriverSettings(mode, pose_smoothing, expression_strength, head_pose_strength, hold_frames)
        image = image_to_uint8(portrait)
        count = len(resample_indices(driving_video.shape[0], driving_fps, TARGET_FPS)) if driving_fps > 0 \
            else driving_video.shape[0]
        base = frame_portrait(image, width, height).astype(np.float32) * 0.45
        preview = torch.empty(1 + count, height, width, 3)

        def on_frame(i, control, source):
            thumb = None if source is None else _thumbnail(driving_video[source], width // 4, height // 4)
            preview[i] = torch.from_numpy(_preview(base, control, thumb)).float().div_(255.0)

        landmarker = FaceLandmarks(driver.landmarker_path, min_confidence=0.1, blendshapes=True)
        try:
            with host.Progress(count, "A1 landmarks") as bar:
                if mode == "3d":
                    with on_device(driver.smirk) as device:
                        m3 = Models3D(driver.smirk, driver.flame, driver.bs2eye, device)
                        res = drive(image, driving_video, landmarker, settings, width, height, driving_fps, m3,
                                    on_frame, bar, host.check_interrupt)
                else:
                    res = drive(image, driving_video, landmarker, settings, width, height, driving_fps, None,
                                on_frame, bar, host.check_interrupt)
        except NoFaceError as e:
            raise NodeError(str(e)) from e
        except ImportError as e:
            raise NodeError(str(e)) from e
        except ValueError as e:
            raise NodeError("landmark driver: %s" % e) from e
        finally:
            landmarker.close()
        extra = " (held landmarks in %d frames without a face)" % len(res.held) if res.held else ""
        host.log("SkyReels A1 driver (%s): %d control frames from %d driving frames%s"
                 % (mode, res.control.shape[0], driving_video.shape[0], extra))
        return (res.control, preview, float(TARGET_FPS))


def _thumbnail(frame: torch.Tensor, max_w: int, max_h: int) -> np.ndarray:
    """An IMAGE frame [h, w, 3] shrunk to fit max_w x max_h, uint8."""
    import torch.nn.functional as F

    h, w = frame.shape[:2]
    s = min(max_w / w, max_h / h)
    size = (max(1, int(h * s)), max(1, int(w * s)))
    small = F.interpolate(frame[None, :, :, :3].permute(0, 3, 1, 2).float(), size=size, mode="area")
    return (small[0].permute(1, 2, 0).clamp(0, 1) * 255).round().to(torch.uint8).numpy()


def _preview(base: np.ndarray, control: np.ndarray, thumb) -> np.ndarray:
    """The control drawing over the dimmed portrait, the driving frame in the top-left corner."""
    out = base.copy()
    drawn = control.any(axis=2)
    out[drawn] = control[drawn]
    out = out.astype(np.uint8)
    if thumb is not None:
        out[:thumb.shape[0], :thumb.shape[1]] = thumb
    return out


NODES = [
    ("SkyReelsA1DriverLoader", A1DriverLoader, "SkyReels A1 Landmark Driver Loader (MediaPipe, SMIRK, FLAME)"),
    ("SkyReelsA1LandmarkDriver", A1LandmarkDriver, "SkyReels A1 Landmark Driver"),
]
