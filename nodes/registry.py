"""Every node of the pack, by id.  Ids carry the ``SkyReels`` prefix and never change;
new inputs are only ever appended, so saved workflows keep working."""
from . import conditioning, df, latent, loaders, media, sampling

_NODES = [
    # id, class, display name
    ("SkyReelsDiTLoader", loaders.DiTLoader, "SkyReels DiT Loader"),
    ("SkyReelsTextEncoderLoader", loaders.TextEncoderLoader, "SkyReels Text Encoder Loader (umT5)"),
    ("SkyReelsCLIPVisionLoader", loaders.CLIPVisionLoader, "SkyReels CLIP Vision Loader"),
    ("SkyReelsVAELoader", loaders.VAELoader, "SkyReels VAE Loader"),
    ("SkyReelsTextEncode", conditioning.TextEncode, "SkyReels Text Encode"),
    ("SkyReelsCLIPVisionEncode", conditioning.CLIPVisionEncode, "SkyReels CLIP Vision Encode"),
    ("SkyReelsImageToVideo", conditioning.ImageToVideo, "SkyReels Image to Video"),
    ("SkyReelsEmptyLatent", conditioning.EmptyLatent, "SkyReels Empty Video Latent"),
    ("SkyReelsSampler", sampling.Sampler, "SkyReels Sampler"),
    ("SkyReelsTeaCache", sampling.TeaCache, "SkyReels TeaCache"),
    ("SkyReelsDFSampler", df.DFSampler, "SkyReels Diffusion Forcing Sampler"),
    ("SkyReelsDFOptions", df.DFOptions, "SkyReels Diffusion Forcing Options"),
    ("SkyReelsVAEDecode", latent.VAEDecode, "SkyReels VAE Decode"),
    ("SkyReelsVAEEncode", latent.VAEEncode, "SkyReels VAE Encode"),
    ("SkyReelsLoadImage", media.LoadImage, "SkyReels Load Image"),
    ("SkyReelsLoadVideo", media.LoadVideo, "SkyReels Load Video"),
    ("SkyReelsSaveVideo", media.SaveVideo, "SkyReels Save Video"),
]

NODE_CLASS_MAPPINGS = {nid: cls for nid, cls, _ in _NODES}
NODE_DISPLAY_NAME_MAPPINGS = {nid: name for nid, _, name in _NODES}
