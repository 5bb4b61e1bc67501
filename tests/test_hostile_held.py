"""What already held against hostile files and must keep holding (regression guards, not part
of the fixed cases): damaged weight files refused, every image mode read, decompression bombs
refused, a full disk leaves no partial file, existing files never overwritten."""
import errno
import json
import os
import struct

import numpy as np
import pytest
import torch
from PIL import Image

from skyreels_pack import api
from skyreels_pack.media.image_io import load_image
from skyreels_pack.models.loading.checkpoint import CheckpointError
from skyreels_pack.nodes.registry import NODE_CLASS_MAPPINGS as N
from skyreels_pack.sampling.chunk_store import ChunkFolder, FinishedChunk


def _valid(tmp_path):
    from safetensors.torch import save_file

    p = tmp_path / "ok.safetensors"
    save_file({"a": torch.zeros(64, 64)}, str(p))
    return p.read_bytes()


DAMAGED = {
    "empty": lambda ok: b"",
    "truncated": lambda ok: ok[: len(ok) // 2],
    "random": lambda ok: os.urandom(len(ok)),
    "huge_header_length": lambda ok: struct.pack("<Q", 1 << 60) + ok[8:],
    "header_not_json": lambda ok: struct.pack("<Q", 8) + b"{{{{{{{{" + ok[16:],
    "offsets_past_the_end": lambda ok: _with_header(ok, {"a": {"dtype": "F32", "shape": [64, 64],
                                                              "data_offsets": [0, 1 << 40]}}),
}


def _with_header(ok, header):
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + ok[8 + struct.unpack("<Q", ok[:8])[0]:]


@pytest.mark.parametrize("case", sorted(DAMAGED))
def test_damaged_safetensors_are_refused(tmp_path, case):
    p = tmp_path / "model.safetensors"
    p.write_bytes(DAMAGED[case](_valid(tmp_path)))
    with pytest.raises(CheckpointError):
        api.load(str(p))


@pytest.mark.parametrize("mode", ["1", "L", "LA", "P", "PA", "RGB", "RGBA", "CMYK", "I;16", "I", "F", "YCbCr"])
def test_every_image_mode_loads_as_rgb(tmp_path, mode):
    img = Image.fromarray(np.random.RandomState(0).randint(0, 255, (8, 8, 3), np.uint8)).convert(mode)
    p = tmp_path / ("x.tiff" if mode in ("I;16", "I", "F", "CMYK", "YCbCr", "PA") else "x.png")
    img.save(p)
    image, mask = load_image(str(p))
    assert image.shape == (1, 8, 8, 3) and mask.shape == (1, 8, 8) and torch.isfinite(image).all()


def _png_chunk(kind, data):
    import zlib

    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def test_decompression_bombs_are_refused(tmp_path):
    import zlib

    p = tmp_path / "bomb.png"  # a header claiming 900 megapixels, a few bytes of data
    p.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0))
                  + _png_chunk(b"IDAT", zlib.compress(b"")) + _png_chunk(b"IEND", b""))
    with pytest.raises(Exception, match="(?i)decompression|exceeds"):
        load_image(str(p))


def test_a_full_disk_leaves_no_partial_chunk(tmp_path, monkeypatch):
    import safetensors.torch as st

    def full(tensors, path, metadata=None):
        with open(path, "wb") as f:
            f.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(st, "save_file", full)
    store = ChunkFolder(str(tmp_path), "sig")
    with pytest.raises(OSError):
        store.add(FinishedChunk(0, torch.rand(1, 8, 8, 3), torch.zeros(1, 16, 1, 1, 1), None))
    assert sorted(os.listdir(tmp_path)) == ["run.json"]


def test_a_full_disk_leaves_no_partial_video(folders, monkeypatch):
    from skyreels_pack.media import video_io

    def full(self, rgb):  # the file is open and has its header when the disk fills
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(video_io.VideoWriter, "_encode_rgb", full)
    with pytest.raises(OSError):
        N["SkyReelsSaveVideo"]().save(torch.rand(1, 16, 16, 3), 24.0, "clip", 19)
    assert os.listdir(folders["output"]) == []


def test_existing_files_are_never_overwritten(folders):
    for i in (1, 2, 7):
        (folders["output"] / ("clip_%05d.mp4" % i)).write_bytes(b"keep")
    out = N["SkyReelsSaveVideo"]().save(torch.rand(1, 16, 16, 3), 24.0, "clip", 19)
    assert out["result"][0].endswith("clip_00008.mp4")
    assert all((folders["output"] / ("clip_%05d.mp4" % i)).read_bytes() == b"keep" for i in (1, 2, 7))
