"""Talking avatar (SkyReels-V3 A2V): load audio, the wav2vec2 audio encoder, the sampler.

One fps contract: the audio features are made at 25 fps (one per video frame), the sampler
makes 25 fps video and says so on its ``fps`` output, and its ``audio`` output is the input
audio trimmed to the video, so Save Video writes them in sync.
"""
from __future__ import annotations

import os

from .. import host
from ..sampling import conditioning as cond
from . import handles
from .base import CONDITIONING, LOADERS, MEDIA, SAMPLING, NodeError, model_list, seed_input

AUDIO_FILES = (".wav", ".flac", ".mp3", ".m4a", ".aac", ".ogg", ".opus")
AVATAR_FPS = 25


class AudioEncoderLoader:
    DESCRIPTION = ("Loads the wav2vec2 audio encoder of the SkyReels-V3 talking avatar (chinese-wav2vec2-base) from "
                   "local files: the released folder (config.json + pytorch_model.bin) or a single file.")
    CATEGORY = LOADERS
    RETURN_TYPES = (handles.AUDIO_ENCODER,)
    RETURN_NAMES = ("audio_encoder",)
    OUTPUT_TOOLTIPS = ("The audio encoder; it goes to the GPU only while encoding.",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": (model_list("audio_encoders"), {
                    "tooltip": "In ComfyUI's models/audio_encoders: the TencentGameMate/chinese-wav2vec2-base folder "
                               "(config.json, preprocessor_config.json, pytorch_model.bin) or a single file. "
                               "Never downloaded."}),
                "dtype": (["fp32", "fp16", "bf16"], {
                    "default": "fp32",
                    "tooltip": "Precision of the encoder. fp32 as the official code (0.4 GB, only while encoding)."}),
            },
            "optional": {
                "path": ("STRING", {"default": "", "tooltip": "A full path; overrides 'model' when not empty."}),
            },
        }

    def load(self, model, dtype, path=""):
        from ..models.audio.wav2vec2 import load_wav2vec2
        from .loaders import _path

        full = _path("audio_encoders", model, path)
        enc = load_wav2vec2(full, dtype=dtype, device=host.offload_device())
        host.log("loaded audio encoder %s: %d layers x %d" % (full, enc.layers, enc.hidden_size))
        return (handles.AudioEncoderHandle(enc, full),)


class LoadAudio:
    DESCRIPTION = ("Loads the sound of an audio or video file (wav, flac, mp3, m4a, ogg ...) from ComfyUI's input "
                   "folder. Core ComfyUI's Load Audio (with an upload button) works as well.")
    CATEGORY = MEDIA
    RETURN_TYPES = ("AUDIO",)
    RETURN_NAMES = ("audio",)
    OUTPUT_TOOLTIPS = ("The sound at its own rate and channels.",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "audio": (host.list_inputs(AUDIO_FILES) or ["(put audio files in ComfyUI's input folder)"], {
                "tooltip": "An audio file in ComfyUI's input folder."}),
            "start_seconds": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 100000.0, "step": 0.1,
                                        "tooltip": "Skip this much from the start."}),
            "duration_seconds": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 100000.0, "step": 0.1,
                                           "tooltip": "Keep at most this much (0 = to the end)."}),
        }}

    @classmethod
    def VALIDATE_INPUTS(cls, audio=None, **_):
        if audio is None:
            return True
        try:
            host.resolve_input(audio)
        except (FileNotFoundError, host.PathError) as e:
            return str(e)
        return True

    @classmethod
    def IS_CHANGED(cls, audio, **_):
        try:
            p = host.resolve_input(audio)
            return "%s:%s" % (os.path.getmtime(p), os.path.getsize(p))
        except (OSError, ValueError):
            return audio

    def load(self, audio, start_seconds, duration_seconds):
        from ..media.audio_io import load_audio

        try:
            out = load_audio(host.resolve_input(audio), start=start_seconds,
                             duration=duration_seconds if duration_seconds > 0 else None)
        except ValueError as e:
            raise NodeError("%s: %s" % (audio, e)) from e
        if out["waveform"].shape[-1] == 0:
            raise NodeError("%s has no sound after %.1f s" % (audio, start_seconds))
        return (out,)


class AudioEncode:
    DESCRIPTION = ("Audio features for the talking avatar: the sound is mixed to mono, resampled to 16 kHz, "
                   "loudness-normalised to -23 LUFS and run through wav2vec2; one 12 x 768 feature per video frame "
                   "at 25 fps. The encoder leaves the GPU afterwards.")
    CATEGORY = CONDITIONING
    RETURN_TYPES = (handles.AUDIO_FEATURES,)
    RETURN_NAMES = ("audio_features",)
    OUTPUT_TOOLTIPS = ("Features at 25 fps, with the audio they come from (for the saved video).",)
    FUNCTION = "encode"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "audio_encoder": (handles.AUDIO_ENCODER, {"tooltip": "From the SkyReels audio encoder loader."}),
                "audio": ("AUDIO", {"tooltip": "The voice (0.4 s or more; the official limit is 200 s)."}),
                "normalize_loudness": ("BOOLEAN", {
                    "default": True,
                    "tooltip": "Bring the voice to -23 LUFS first, as the official pipeline (skipped for silence "
                               "or near silence)."}),
            },
        }

    def encode(self, audio_encoder, audio, normalize_loudness):
        from ..media.audio_io import check_audio
        from ..memory.offload import prepare_for_sampling, release
        from ..models.audio.features import encode_waveform, to_mono_16k

        try:
            waveform, rate = check_audio(audio)
        except ValueError as e:
            raise NodeError(str(e)) from e
        if waveform.shape[0] > 1:
            host.log("the audio has %d items; the first is encoded" % waveform.shape[0])
        mono = to_mono_16k(waveform[0], rate)
        if mono.shape[0] < 6400:
            raise NodeError("the audio is %.2f s long; the talking avatar needs at least 0.4 s"
                            % (mono.shape[0] / 16000))
        enc = audio_encoder.encoder
        prepare_for_sampling(enc.model, host.torch_device(), None)
        try:
            feats = encode_waveform(enc, mono, loudness_norm=normalize_loudness, fps=AVATAR_FPS)
        finally:
            release(enc.model)
        feats.audio = {"waveform": waveform[:1].float().cpu(), "sample_rate": rate}
        host.log("audio features: %.2f s -> %d frames at %d fps%s" % (
            feats.seconds, feats.frames, feats.fps,
            ", loudness %.1f LUFS -> -23" % feats.loudness if feats.normalized else ""))
        return (feats,)


class TalkingAvatarOptions:
    DESCRIPTION = "Less used talking-avatar settings. 0 means: as the preset (or the size bucket) says."
    CATEGORY = SAMPLING
    RETURN_TYPES = (handles.AVATAR_OPTIONS,)
    RETURN_NAMES = ("options",)
    OUTPUT_TOOLTIPS = ("Connect to the 'options' input of the talking-avatar sampler.",)
    FUNCTION = "make"

    @classmethod
    def INPUT_TYPES(cls):
        d = handles.AvatarOptions()
        return {"required": {
            "steps": ("INT", {"default": d.steps, "min": 0, "max": 200,
                              "tooltip": "Denoising steps per window; 0 = the preset's (4 distilled, 40 full)."}),
            "shift": ("FLOAT", {"default": d.shift, "min": 0.0, "max": 100.0, "step": 0.1,
                                "tooltip": "Sigma shift; 0 = the preset's (11 distilled, 5 full)."}),
            "text_guidance": ("FLOAT", {"default": d.text_guidance, "min": 0.0, "max": 30.0, "step": 0.1,
                                        "tooltip": "Text guidance scale; 0 = the preset's (1 distilled, 5 full). "
                                                   "1 or less skips the negative-prompt pass."}),
            "audio_guidance": ("FLOAT", {"default": d.audio_guidance, "min": 0.0, "max": 30.0, "step": 0.1,
                                         "tooltip": "Audio guidance scale; 0 = the preset's (1 distilled, 4 full). "
                                                    "Above 1 adds a pass with silent audio."}),
            "width": ("INT", {"default": d.width, "min": 0, "max": 4096, "step": 16,
                              "tooltip": "Video width; 0 = the official bucket for the portrait's shape."}),
            "height": ("INT", {"default": d.height, "min": 0, "max": 4096, "step": 16,
                               "tooltip": "Video height; 0 = the official bucket for the portrait's shape."}),
            "frames_per_window": ("INT", {"default": d.frames_per_window, "min": 17, "max": 201, "step": 4,
                                          "tooltip": "Frames the model makes at once (official 81 = 3.24 s)."}),
            "motion_frames": ("INT", {"default": d.motion_frames, "min": 1, "max": 100,
                                      "tooltip": "Frames each window takes over from the one before (5 shipped, "
                                                 "25 in the pipeline's defaults)."}),
            "drop_frames": ("INT", {"default": d.drop_frames, "min": 0, "max": 100,
                                    "tooltip": "Frames dropped at the end of each window but the last (official 12)."}),
            "max_frames": ("INT", {"default": d.max_frames, "min": 1, "max": 100000,
                                   "tooltip": "Longest video in frames (official 5000 = 200 s); longer audio is cut."}),
            "color_match_strength": ("FLOAT", {
                "default": d.color_match_strength, "min": 0.0, "max": 1.0, "step": 0.05,
                "tooltip": "Colour match of every window to the portrait (official 1)."}),
            "chunk_folder": ("STRING", {"default": d.chunk_folder,
                                        "tooltip": "Folder where every finished window is saved; running again with "
                                                   "the same inputs resumes after a crash or cancel. Relative paths "
                                                   "are inside ComfyUI's output folder. Empty = off."}),
        }}

    @classmethod
    def VALIDATE_INPUTS(cls, chunk_folder=None, **_):
        if (chunk_folder or "").strip():
            try:
                host.check_output_dir(chunk_folder, "chunk_folder")
            except host.PathError as e:
                return str(e)
        return True

    def make(self, **kw):
        return (handles.AvatarOptions(**kw),)


class TalkingAvatarSampler:
    DESCRIPTION = ("SkyReels-V3 talking avatar: a portrait and a voice in, a lip-synced 25 fps video as long as the "
                   "audio out (the official keyframe-constrained windows of 81 frames, colour-matched to the "
                   "portrait). Outputs the frames, the audio trimmed to them and the frame rate for Save Video.")
    CATEGORY = SAMPLING
    RETURN_TYPES = ("IMAGE", "AUDIO", "FLOAT")
    RETURN_NAMES = ("images", "audio", "fps")
    OUTPUT_TOOLTIPS = ("The video frames, one per audio frame.", "The input audio trimmed to the video (in sync).",
                       "25: the frame rate the audio features were made for; connect it to Save Video.")
    FUNCTION = "sample"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": (handles.DIT, {"tooltip": "The SkyReels-V3 A2V (talking avatar) model."}),
                "vae": (handles.VAE, {"tooltip": "The Wan2.1 VAE."}),
                "clip_vision": (handles.CLIP_VISION, {"tooltip": "CLIP ViT-H (tokens of the portrait and of each "
                                                                 "window's first motion frame)."}),
                "positive": ("CONDITIONING", {"tooltip": "The prompt: describe the person and the scene."}),
                "negative": ("CONDITIONING", {"tooltip": "The negative prompt (used when text guidance is above 1)."}),
                "portrait": ("IMAGE", {"tooltip": "The person's picture (the first frame)."}),
                "audio_features": (handles.AUDIO_FEATURES, {"tooltip": "From SkyReels Audio Encode."}),
                "preset": (["distilled", "full"], {
                    "default": "distilled",
                    "tooltip": "distilled: the released setting, 4 steps, shift 11, no guidance (1 model call per "
                               "step). full: 40 steps, shift 5, text guidance 5, audio guidance 4 (3 calls per "
                               "step)."}),
                "resolution": (["720P", "480P"], {
                    "default": "720P",
                    "tooltip": "Size class; the portrait's aspect picks the official bucket (720P: e.g. 720x1280, "
                               "960x960; 480P: 480x832, 640x640). 480P needs about half the memory and time."}),
                "seed": seed_input(),
                "later_windows": (["official", "prompt_and_portrait"], {
                    "default": "official",
                    "tooltip": "What windows after the keyframe pass are conditioned on. official: the connection "
                               "prompt (connect an encode of 'a person is talking') and CLIP of each window's first "
                               "frame, as the model was trained and distilled. prompt_and_portrait: your prompt and "
                               "the portrait throughout (stronger identity, may repeat prompt actions)."}),
            },
            "optional": {
                "connection": ("CONDITIONING", {
                    "tooltip": "The connection prompt of later windows (official: 'a person is talking')."}),
                "options": (handles.AVATAR_OPTIONS, {"tooltip": "The talking-avatar options node."}),
            },
        }

    def sample(self, model, vae, clip_vision, positive, negative, portrait, audio_features, preset, resolution, seed,
               later_windows, connection=None, options=None):
        import torch

        from ..media.audio_io import fit_audio_length
        from ..media.frames import center_crop_resize
        from ..models.placement import on_device
        from ..sampling.avatar_plan import bucket_size
        from ..sampling.avatar_video import AvatarConditioning, AvatarSettings, generate_avatar_video
        from ..sampling.chunk_store import CollectFrames
        from ..sampling.video_codec import VideoCodec
        from .model_session import dit_session

        opt = options or handles.AvatarOptions()
        cfg = model.config
        if getattr(cfg, "audio", None) is None:
            raise NodeError("%s is not a talking-avatar model (it has no audio adapter); load SkyReels-V3-A2V"
                            % model.name)
        feats = audio_features
        if int(feats.fps) != AVATAR_FPS:
            raise NodeError("the audio features were made for %s fps; the talking avatar runs at %d fps"
                            % (feats.fps, AVATAR_FPS))
        per_frame = int(feats.features.shape[1] * feats.features.shape[2])
        if per_frame != cfg.audio.per_frame:
            raise NodeError("the audio features have %d x %d values per frame, this model takes %d: use the audio "
                            "encoder that belongs to it (chinese-wav2vec2-base)"
                            % (feats.features.shape[1], feats.features.shape[2], cfg.audio.per_frame))
        if later_windows == "official" and connection is None:
            raise NodeError("later_windows 'official' needs the connection prompt: connect a text encode of "
                            "'a person is talking' to 'connection', or choose prompt_and_portrait")
        if opt.width and opt.height:
            width, height = opt.width, opt.height
        else:
            width, height = bucket_size(int(portrait.shape[1]), int(portrait.shape[2]), resolution)
        if width % 16 or height % 16:
            raise NodeError("width and height must be multiples of 16, got %dx%d" % (width, height))
        preset_values = AvatarSettings.preset(preset)
        settings = AvatarSettings(
            width=width, height=height, steps=opt.steps or preset_values.steps, shift=opt.shift or preset_values.shift,
            text_scale=opt.text_guidance or preset_values.text_scale,
            audio_scale=opt.audio_guidance or preset_values.audio_scale, frame_num=opt.frames_per_window,
            motion_frame=opt.motion_frames, drop_frame=opt.drop_frames, max_frames=opt.max_frames, seed=seed,
            later_windows=later_windows, color_match_strength=opt.color_match_strength)
        image = center_crop_resize(portrait[:1, ..., :3], width, height, "bilinear")
        ctx = lambda c, what: cond.contexts(c, cfg.text_dim, cfg.text_len, what, 1)[0]  # noqa: E731
        conditioning = AvatarConditioning(
            portrait=image, features=feats.features, prompt=ctx(positive, "positive"),
            connection=ctx(connection, "connection") if connection is not None else None,
            negative=ctx(negative, "negative"))
        chunk_dir = opt.chunk_folder.strip()
        if chunk_dir:  # inside the output folder only (host.resolve_output_dir refuses '..', paths elsewhere, links out)
            try:
                chunk_dir = host.resolve_output_dir(chunk_dir, create=True, what="chunk_folder")
            except host.PathError as e:
                raise NodeError(str(e)) from e
        enc = clip_vision.encoder

        def encode_clip(frame):
            with on_device(enc.model):
                return enc.encode(frame).float().cpu()

        sink = CollectFrames()
        latent = ((opt.frames_per_window - 1) // 4 + 1, height // 8, width // 8)
        with dit_session(model, latent) as dit:
            device = dit.device
            vae.vae.to(device)
            try:
                generate_avatar_video(dit, VideoCodec(vae.vae, device, vae.tile), encode_clip, settings,
                                      conditioning, sink, chunk_dir=chunk_dir or None)
            except ValueError as e:
                raise NodeError(str(e)) from e
            finally:
                vae.vae.to(host.offload_device())
        images = sink.images()
        seconds = images.shape[0] / AVATAR_FPS
        audio = feats.audio if feats.audio is not None else {"waveform": torch.zeros(1, 1, 1), "sample_rate": 16000}
        return (images, fit_audio_length(audio, seconds), float(AVATAR_FPS))


NODES = [
    ("SkyReelsAudioEncoderLoader", AudioEncoderLoader, "SkyReels Audio Encoder Loader (wav2vec2)"),
    ("SkyReelsLoadAudio", LoadAudio, "SkyReels Load Audio"),
    ("SkyReelsAudioEncode", AudioEncode, "SkyReels Audio Encode"),
    ("SkyReelsTalkingAvatarOptions", TalkingAvatarOptions, "SkyReels Talking Avatar Options"),
    ("SkyReelsTalkingAvatarSampler", TalkingAvatarSampler, "SkyReels Talking Avatar Sampler"),
]
