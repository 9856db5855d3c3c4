"""Visual frame features: dlib's HOG face detector + 68-point landmarks -> facial geometry.

The models ship inside PyPI packages (``dlib-bin``; ``face-recognition-models`` holds the
68-point shape predictor), so nothing is downloaded at run time. Per frame the largest
detected face is measured; distances are divided by the inter-ocular distance (outer eye
corners) so they do not depend on image size. Columns (``VISUAL_FEATURES``):

- ``has_face``: 1 when a face was found, else 0 (the geometric columns are then NaN, so a
  word's average uses face frames only, and a word without any is flagged, not invented);
- ``eye_open_l``/``eye_open_r``: eye aspect ratio (eyelid gap / eye width);
- ``brow_raise_l``/``brow_raise_r``: brow-to-eye distance;
- ``mouth_open`` (inner-lip gap), ``mouth_width`` (corner to corner);
- ``lip_corner``: lip-corner height above the lip midline (smile > 0, frown < 0);
- ``head_yaw`` (nose tip offset from the eyes' midpoint, horizontal), ``head_pitch`` (nose
  tip below the eyes, relative to the chin), ``head_roll`` (eye-line angle, radians);
- ``face_scale``: inter-ocular distance / frame width.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np

from mmlatch.extract.errors import ExtractError
from mmlatch.extract.registry import file_sha256, package_dir, package_version, register_extractor

VISUAL_FEATURES: list[str] = [
    "has_face", "eye_open_l", "eye_open_r", "brow_raise_l", "brow_raise_r", "mouth_open",
    "mouth_width", "lip_corner", "head_yaw", "head_pitch", "head_roll", "face_scale",
]


def _predictor_path() -> Path:
    root = package_dir("face_recognition_models")
    if root is None:
        raise ExtractError(
            "visual features need dlib-bin and face-recognition-models: pip install 'mmlatch[extract]'"
        )
    # the package's own __init__ imports pkg_resources, which new setuptools lacks: locate the file only
    path = root / "models" / "shape_predictor_68_face_landmarks.dat"
    if not path.is_file():
        raise ExtractError(f"face-recognition-models is installed without {path.name}")
    return path


@functools.lru_cache(maxsize=1)
def _dlib_models():  # noqa: ANN202 - dlib types
    """dlib's detector and 68-point predictor, loaded once per process (seconds, 100 MB)."""
    import dlib

    return dlib.get_frontal_face_detector(), dlib.shape_predictor(str(_predictor_path()))


def largest_face(detector: Any, frame: np.ndarray, upsample: int) -> Any | None:
    """dlib's rectangle of the largest face in an RGB frame, or None."""
    faces = detector(frame, upsample)
    if len(faces) == 0:
        return None
    return max(faces, key=lambda r: r.width() * r.height())


@functools.lru_cache(maxsize=1)
def face_detector() -> Any:
    """dlib's HOG frontal face detector (package dlib-bin), loaded once per process."""
    try:
        import dlib
    except ImportError as e:
        raise ExtractError("visual features need dlib-bin: pip install 'mmlatch[extract]'") from e
    return dlib.get_frontal_face_detector()


@register_extractor("visual", "geometry")
class FaceGeometry:
    """Visual extractor ``geometry``: dlib face detector + 68-landmark predictor -> the 12
    ``VISUAL_FEATURES``, loaded once (about 2 s, 100 MB). dlib: Boost licence; the landmark
    model (iBUG 300-W trained) is free for research use only, per its authors.

    Args:
        upsample: times dlib enlarges the image before detecting (1 finds faces down to ~40 px).
    """

    name, version, needs = "geometry", "1", "video"

    def __init__(self, upsample: int = 1, **unknown: Any) -> None:
        if unknown:
            raise ExtractError(f"visual extractor geometry: unknown settings {sorted(unknown)}")
        face_detector()
        self.detector, self.predictor = _dlib_models()
        self.upsample = int(upsample)
        self.dim = len(VISUAL_FEATURES)
        self.feature_names = list(VISUAL_FEATURES)
        self.identity = f"dlib-bin=={package_version('dlib-bin')}, face-recognition-models=={package_version('face-recognition-models')}"
        self.sha256 = file_sha256(_predictor_path())

    def settings(self) -> dict[str, Any]:
        return {"upsample": self.upsample}

    def frame(self, image: np.ndarray) -> np.ndarray:
        return self.features(image)

    def landmarks(self, frame: np.ndarray) -> np.ndarray | None:
        """(68, 2) landmark pixel coordinates (x, y) of the largest face, or None."""
        face = largest_face(self.detector, frame, self.upsample)
        if face is None:
            return None
        shape = self.predictor(frame, face)
        return np.array([(shape.part(i).x, shape.part(i).y) for i in range(68)], dtype=np.float64)

    def features(self, frame: np.ndarray) -> np.ndarray:
        """(len(VISUAL_FEATURES),) float32 for one RGB frame (H, W, 3)."""
        pts = self.landmarks(frame)
        out = np.full(len(VISUAL_FEATURES), np.nan, np.float32)
        out[0] = 0.0
        if pts is None:
            return out
        out[0] = 1.0
        out[1:] = geometry(pts, frame.shape[1])
        return out


def geometry(pts: np.ndarray, frame_width: int) -> np.ndarray:
    """The 11 geometric features (``VISUAL_FEATURES[1:]``) of 68 dlib landmarks (68, 2)."""

    def d(a: int, b: int) -> float:
        return float(np.linalg.norm(pts[a] - pts[b]))

    iod = max(d(36, 45), 1e-6)
    eye_l = (d(37, 41) + d(38, 40)) / (2 * max(d(36, 39), 1e-6))
    eye_r = (d(43, 47) + d(44, 46)) / (2 * max(d(42, 45), 1e-6))
    brow_l = float(np.linalg.norm(pts[17:22].mean(0) - pts[36:42].mean(0))) / iod
    brow_r = float(np.linalg.norm(pts[22:27].mean(0) - pts[42:48].mean(0))) / iod
    mouth_open = d(62, 66) / iod
    mouth_width = d(48, 54) / iod
    mid_y = (pts[51, 1] + pts[57, 1]) / 2
    lip_corner = float(mid_y - (pts[48, 1] + pts[54, 1]) / 2) / iod  # image y grows downwards
    eyes = (pts[36] + pts[45]) / 2
    yaw = float(pts[30, 0] - eyes[0]) / iod
    pitch = float(pts[30, 1] - eyes[1]) / max(float(pts[8, 1] - eyes[1]), 1e-6)
    roll = float(np.arctan2(pts[45, 1] - pts[36, 1], pts[45, 0] - pts[36, 0]))
    scale = iod / max(frame_width, 1)
    return np.array(
        [eye_l, eye_r, brow_l, brow_r, mouth_open, mouth_width, lip_corner, yaw, pitch, roll, scale],
        dtype=np.float32,
    )
