"""SMIRK's encoder (own torch code): a 224 x 224 RGB face crop in [0, 1] -> FLAME parameters.

Three timm MobileNet-V3 "minimal" backbones (``features_only``, TF "same" padding, batch norm
eps 1e-3, ReLU, no squeeze-excite), each followed by global average pooling and a linear head:

* ``pose_encoder``: tf_mobilenetv3_small_minimal_100 -> Linear(576, 6): pose (3, axis-angle)
  and camera (3: scale, tx, ty);
* ``shape_encoder``: tf_mobilenetv3_large_minimal_100 -> Linear(960, 300);
* ``expression_encoder``: the same backbone -> Linear(960, 55): expression (50), eyelids (2,
  clamped to [0, 1]) and jaw (relu of the first, the other two clamped to +-0.2).

The checkpoint (SMIRK's ``SMIRK_em1.pt``, the A1 folder's ``smirk/``) is a flat state dict
whose encoder keys start with ``smirk_encoder.``; it is read with ``torch.load(weights_only=True)``
(a ``.safetensors`` file with the same names works too).
"""
from __future__ import annotations

import math
import os
from typing import Dict, List, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

BN_EPS = 1e-3
PREFIX = "smirk_encoder."
CHECKPOINT = "SMIRK_em1.pt"

# (block type, repeats, kernel, stride, expansion, out channels) per stage, from timm's
# _gen_mobilenet_v3 'minimal' definitions (stem 16 channels, stride 2).
SMALL_MINIMAL = (
    (("ds", 1, 3, 2, 1.0, 16),),
    (("ir", 1, 3, 2, 4.5, 24), ("ir", 1, 3, 1, 3.67, 24)),
    (("ir", 1, 3, 2, 4.0, 40), ("ir", 2, 3, 1, 6.0, 40)),
    (("ir", 2, 3, 1, 3.0, 48),),
    (("ir", 3, 3, 2, 6.0, 96),),
    (("cn", 1, 1, 1, 1.0, 576),),
)
LARGE_MINIMAL = (
    (("ds", 1, 3, 1, 1.0, 16),),
    (("ir", 1, 3, 2, 4.0, 24), ("ir", 1, 3, 1, 3.0, 24)),
    (("ir", 3, 3, 2, 3.0, 40),),
    (("ir", 1, 3, 2, 6.0, 80), ("ir", 1, 3, 1, 2.5, 80), ("ir", 2, 3, 1, 2.3, 80)),
    (("ir", 2, 3, 1, 6.0, 112),),
    (("ir", 3, 3, 2, 6.0, 160),),
    (("cn", 1, 1, 1, 1.0, 960),),
)


def make_divisible(v: float, divisor: int = 8, round_limit: float = 0.9) -> int:
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < round_limit * v else new_v


class SameConv(nn.Conv2d):
    """Conv2d with TensorFlow 'SAME' padding (asymmetric when the total is odd)."""

    def forward(self, x):
        ih, iw = x.shape[-2:]
        kh, kw = self.kernel_size
        sh, sw = self.stride
        ph = max((math.ceil(ih / sh) - 1) * sh + kh - ih, 0)
        pw = max((math.ceil(iw / sw) - 1) * sw + kw - iw, 0)
        if ph or pw:
            x = F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def _conv(cin, cout, k, stride=1, groups=1):
    return SameConv(cin, cout, k, stride=stride, groups=groups, bias=False)


def _bn(c):
    return nn.BatchNorm2d(c, eps=BN_EPS)


class ConvBnAct(nn.Module):
    def __init__(self, cin, cout, k, stride):
        super().__init__()
        self.conv = _conv(cin, cout, k, stride)
        self.bn1 = _bn(cout)

    def forward(self, x):
        return F.relu(self.bn1(self.conv(x)))


class DepthwiseSeparable(nn.Module):
    def __init__(self, cin, cout, k, stride):
        super().__init__()
        self.conv_dw = _conv(cin, cin, k, stride, groups=cin)
        self.bn1 = _bn(cin)
        self.conv_pw = _conv(cin, cout, 1)
        self.bn2 = _bn(cout)
        self.skip = stride == 1 and cin == cout

    def forward(self, x):
        y = self.bn2(self.conv_pw(F.relu(self.bn1(self.conv_dw(x)))))
        return y + x if self.skip else y


class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, k, stride, exp):
        super().__init__()
        mid = make_divisible(cin * exp)
        self.conv_pw = _conv(cin, mid, 1)
        self.bn1 = _bn(mid)
        self.conv_dw = _conv(mid, mid, k, stride, groups=mid)
        self.bn2 = _bn(mid)
        self.conv_pwl = _conv(mid, cout, 1)
        self.bn3 = _bn(cout)
        self.skip = stride == 1 and cin == cout

    def forward(self, x):
        y = F.relu(self.bn1(self.conv_pw(x)))
        y = F.relu(self.bn2(self.conv_dw(y)))
        y = self.bn3(self.conv_pwl(y))
        return y + x if self.skip else y


class MobileNetV3Features(nn.Module):
    """timm's MobileNetV3Features (keys ``conv_stem``, ``bn1``, ``blocks.i.j.*``); returns the last feature map."""

    def __init__(self, arch: Sequence[Sequence[Tuple]], stem: int = 16):
        super().__init__()
        self.conv_stem = _conv(3, stem, 3, 2)
        self.bn1 = _bn(stem)
        cin = stem
        stages: List[nn.Module] = []
        for stage in arch:
            blocks = []
            for kind, repeats, k, stride, exp, cout in stage:
                for r in range(repeats):
                    s = stride if r == 0 and not blocks else 1
                    if kind == "ds":
                        blocks.append(DepthwiseSeparable(cin, cout, k, s))
                    elif kind == "ir":
                        blocks.append(InvertedResidual(cin, cout, k, s, exp))
                    else:
                        blocks.append(ConvBnAct(cin, cout, k, s))
                    cin = cout
            stages.append(nn.Sequential(*blocks))
        self.blocks = nn.Sequential(*stages)
        self.out_channels = cin

    def forward(self, x):
        return self.blocks(F.relu(self.bn1(self.conv_stem(x))))


def _pool(x):
    return F.adaptive_avg_pool2d(x, 1).flatten(1)


class PoseEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = MobileNetV3Features(SMALL_MINIMAL)
        self.pose_cam_layers = nn.Sequential(nn.Linear(self.encoder.out_channels, 6))

    def forward(self, img):
        out = self.pose_cam_layers(_pool(self.encoder(img)))
        return {"pose_params": out[:, :3], "cam": out[:, 3:]}


class ShapeEncoder(nn.Module):
    def __init__(self, n_shape: int = 300):
        super().__init__()
        self.encoder = MobileNetV3Features(LARGE_MINIMAL)
        self.shape_layers = nn.Sequential(nn.Linear(self.encoder.out_channels, n_shape))

    def forward(self, img):
        return {"shape_params": self.shape_layers(_pool(self.encoder(img)))}


class ExpressionEncoder(nn.Module):
    def __init__(self, n_exp: int = 50):
        super().__init__()
        self.n_exp = n_exp
        self.encoder = MobileNetV3Features(LARGE_MINIMAL)
        self.expression_layers = nn.Sequential(nn.Linear(self.encoder.out_channels, n_exp + 2 + 3))

    def forward(self, img):
        p = self.expression_layers(_pool(self.encoder(img)))
        n = self.n_exp
        return {"expression_params": p[:, :n],
                "eyelid_params": torch.clamp(p[:, n:n + 2], 0, 1),
                "jaw_params": torch.cat([F.relu(p[:, n + 2:n + 3]), torch.clamp(p[:, n + 3:n + 5], -0.2, 0.2)], 1)}


class SmirkEncoder(nn.Module):
    def __init__(self, n_exp: int = 50, n_shape: int = 300):
        super().__init__()
        self.pose_encoder = PoseEncoder()
        self.shape_encoder = ShapeEncoder(n_shape)
        self.expression_encoder = ExpressionEncoder(n_exp)

    @torch.no_grad()
    def forward(self, img: torch.Tensor) -> Dict[str, torch.Tensor]:
        """``img`` [B, 3, 224, 224] RGB in [0, 1] -> FLAME parameter dict."""
        out = {}
        out.update(self.pose_encoder(img))
        out.update(self.shape_encoder(img))
        out.update(self.expression_encoder(img))
        return out


def encoder_state_dict(sd: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """The encoder's tensors of a SMIRK checkpoint (``smirk_encoder.`` prefix removed; other
    networks of the checkpoint, e.g. the generator, dropped)."""
    if any(k.startswith(PREFIX) for k in sd):
        return {k[len(PREFIX):]: v for k, v in sd.items() if k.startswith(PREFIX)}
    return dict(sd)


def read_checkpoint(path: str) -> Dict[str, torch.Tensor]:
    if path.lower().endswith((".safetensors", ".sft")):
        from safetensors.torch import load_file

        return load_file(path)
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ValueError("%s could not be read as a SMIRK checkpoint with torch.load(weights_only=True): %s"
                         % (os.path.basename(path), str(e).splitlines()[0] if str(e) else type(e).__name__)) from e
    for key in ("state_dict", "model"):
        if isinstance(sd, dict) and isinstance(sd.get(key), dict):
            sd = sd[key]
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise ValueError("%s is not a SMIRK checkpoint (a state dict of tensors)" % os.path.basename(path))
    return sd


def load_smirk(path: str, device="cpu", dtype=torch.float32) -> SmirkEncoder:
    """SMIRK's encoder from ``smirk/SMIRK_em1.pt`` (or a folder holding it)."""
    if os.path.isdir(path):
        path = os.path.join(path, CHECKPOINT)
    if not os.path.isfile(path):
        raise FileNotFoundError("SMIRK checkpoint not found: %s" % path)
    sd = encoder_state_dict(read_checkpoint(path))
    model = SmirkEncoder()
    want = model.state_dict()
    missing = sorted(set(want) - set(sd))
    unexpected = sorted(set(sd) - set(want))
    bad = [k for k in want if k in sd and tuple(sd[k].shape) != tuple(want[k].shape)]
    if missing or unexpected or bad:
        parts = []
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", bad)):
            if keys:
                parts.append("%d %s (e.g. %s)" % (len(keys), label, ", ".join(keys[:3])))
        raise ValueError("%s does not hold SMIRK's encoder: %s" % (os.path.basename(path), "; ".join(parts)))
    model.load_state_dict({k: v.to(want[k].dtype) if v.is_floating_point() else v for k, v in sd.items()})
    return model.to(device=device, dtype=dtype).eval()
