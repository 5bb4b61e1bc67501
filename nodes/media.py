"""Media nodes: load an image, load a video, save a video (mp4 H.264 with optional audio)."""
from __future__ import annotations

import os

from .. import host
from .base import MEDIA, NodeError

IMAGE_EXT = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
VIDEO_EXT = (".mp4", ".mov", ".webm", ".mkv", ".avi", ".gif", ".m4v")


def _choices(exts):
    return host.list_inputs(exts) or ["(put files in ComfyUI's input folder)"]


def _check_input(name):
    """VALIDATE_INPUTS for a file input: True, or why the file cannot be found."""
    if name is None:  # linked input: checked when it runs
        return True
    try:
        host.resolve_input(name)
    except (FileNotFoundError, host.PathError) as e:
        return str(e)
    return True


class LoadImage:
    DESCRIPTION = "Loads an image from ComfyUI's input folder (or any path)."
    CATEGORY = MEDIA
    RETURN_TYPES = ("IMAGE", "MASK")
    RETURN_NAMES = ("image", "mask")
    OUTPUT_TOOLTIPS = ("The image [1, H, W, 3] in 0..1.",
                       "1 - alpha, ComfyUI's mask convention (transparent = 1); zeros when there is no alpha.")
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image": (_choices(IMAGE_EXT), {
            "image_upload": True, "tooltip": "An image in ComfyUI's input folder (upload one here)."})}}

    @classmethod
    def VALIDATE_INPUTS(cls, image=None):
        return _check_input(image)

    @classmethod
    def IS_CHANGED(cls, image):
        try:
            p = host.resolve_input(image)
            return "%s:%s" % (os.path.getmtime(p), os.path.getsize(p))
        except (OSError, ValueError):
            return image

    def load(self, image):
        from ..media.image_io import load_image

        img, mask = load_image(host.resolve_input(image))
        return (img, mask)


class LoadVideo:
    DESCRIPTION = "Loads a video's frames, frame rate and sound (PyAV; no other pack needed)."
    CATEGORY = MEDIA
    RETURN_TYPES = ("IMAGE", "FLOAT", "AUDIO", "INT")
    RETURN_NAMES = ("images", "fps", "audio", "frame_count")
    OUTPUT_TOOLTIPS = ("Frames [frames, H, W, 3] in 0..1.", "Frames per second of what was loaded.",
                       "The sound track (silence when the file has none).", "Number of frames loaded.")
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "video": (_choices(VIDEO_EXT), {"video_upload": True, "tooltip": "A video in ComfyUI's input folder."}),
            "frame_load_cap": ("INT", {"default": 0, "min": 0, "max": 100000,
                                       "tooltip": "Load at most this many frames (0 = all)."}),
            "skip_first_frames": ("INT", {"default": 0, "min": 0, "max": 1000000,
                                          "tooltip": "Frames to skip at the start."}),
            "select_every_nth": ("INT", {"default": 1, "min": 1, "max": 1000,
                                         "tooltip": "Keep one frame in n (the fps output is divided accordingly)."}),
        }}

    @classmethod
    def VALIDATE_INPUTS(cls, video=None, **_):
        return _check_input(video)

    def load(self, video, frame_load_cap, skip_first_frames, select_every_nth):
        from ..media.video_io import NoFramesSelected, read_video

        try:
            images, fps, audio = read_video(host.resolve_input(video), max_frames=frame_load_cap or None,
                                            start_frame=skip_first_frames, stride=select_every_nth)
        except NoFramesSelected as e:
            raise NodeError("%s: %s (check skip_first_frames and select_every_nth)" % (video, e)) from e
        except ValueError as e:  # not a video, no video stream, undecodable: the file is the problem
            raise NodeError("%s: %s" % (video, e)) from e
        if audio is None:
            import torch

            audio = {"waveform": torch.zeros(1, 1, 1), "sample_rate": 44100}
        return (images, float(fps), audio, int(images.shape[0]))


class SaveVideo:
    DESCRIPTION = "Saves frames as an mp4 (H.264) in ComfyUI's output folder, with optional sound."
    CATEGORY = MEDIA
    RETURN_TYPES = ("STRING",)
    RETURN_NAMES = ("path",)
    OUTPUT_TOOLTIPS = ("Full path of the written file.",)
    OUTPUT_NODE = True
    FUNCTION = "save"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "images": ("IMAGE", {"tooltip": "The frames."}),
                "fps": ("FLOAT", {"default": 24.0, "min": 1.0, "max": 240.0, "step": 1.0,
                                  "tooltip": "Frames per second (SkyReels-V2 makes 24)."}),
                "filename_prefix": ("STRING", {"default": "SkyReels",
                                               "tooltip": "File name start; a counter is added. May contain a subfolder."}),
                "crf": ("INT", {"default": 19, "min": 0, "max": 51,
                                "tooltip": "H.264 quality: lower is better and bigger (19 is visually lossless)."}),
            },
            "optional": {"audio": ("AUDIO", {"tooltip": "Sound to put in the file (cut or padded to the video)."})},
        }

    @classmethod
    def VALIDATE_INPUTS(cls, filename_prefix=None, **_):
        if filename_prefix is None:  # linked: checked when it runs
            return True
        try:
            host.check_output_prefix(filename_prefix, ".mp4")
        except host.PathError as e:
            return str(e)
        return True

    def save(self, images, fps, filename_prefix, crf, audio=None):
        from ..media.video_io import write_video

        try:
            target = host.reserve_output_file(filename_prefix, ".mp4")
        except host.PathError as e:
            raise NodeError(str(e)) from e
        try:
            write_video(target.path, images, fps, audio=audio, crf=crf)
        except BaseException:
            target.discard()  # no empty or partial file is left behind
            raise
        path = target.path
        host.log("saved %s (%d frames, %dx%d, %g fps)" % (path, images.shape[0], images.shape[2], images.shape[1], fps))
        ui = {"images": [{"filename": target.filename, "subfolder": target.subfolder, "type": "output"}],
              "animated": (True,)}
        return {"ui": ui, "result": (path,)}


NODES = [
    ("SkyReelsLoadImage", LoadImage, "SkyReels Load Image"),
    ("SkyReelsLoadVideo", LoadVideo, "SkyReels Load Video"),
    ("SkyReelsSaveVideo", SaveVideo, "SkyReels Save Video"),
]
