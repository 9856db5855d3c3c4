"""The project's own dataset file: one uncompressed ``.npz`` holding a whole dataset.

Any format is read once (a ``.csd`` corpus aligned once) and saved with :func:`save_dataset`;
every command reads the result through :func:`mmlatch.data.readers.read_path`, which knows
it by its ``__mmlatch__`` entry. It is read with ``allow_pickle=False``: nothing in it can
run code.

Layout (entry names inside the zip, ``.npy`` suffix omitted):

=================================  ===========================  ========================
entry                              dtype / shape                meaning
=================================  ===========================  ========================
``__mmlatch__``                    str, 0-d                     JSON metadata, below
``<split>/labels``                 float32 (N, num_outputs)     labels (class index for
                                                                classification)
``<split>/ids``                    unicode (N,)                 sample ids
``<split>/texts`` (optional)       unicode (N,)                 raw texts (transcripts)
``<split>/<modality>/features``    float32 (N, L, F)            end-padded features
``<split>/<modality>/lengths``     int64 (N,)                   valid steps, in [1, L]
=================================  ===========================  ========================

Metadata JSON: ``{"format": "mmlatch-dataset", "version": 1, "name", "source",
"splits": [...], "modalities": [...] (model order), "task": {"kind", "num_outputs",
"label_names", "label_range"}, "feature_names": {modality: [...]}, "nonfinite":
{split: {modality: count}}}`` and, for data made by ``mmlatch extract``, ``"extraction"``
(the extraction spec); ``source`` is where the data was first read from.

Writing is atomic: a temporary file in the target's directory, then ``os.replace``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from mmlatch.data.dataset import DataError, MultimodalDataset, Split, TaskSpec

FORMAT_TAG = "mmlatch-dataset"
FORMAT_VERSION = 1
META_KEY = "__mmlatch__"


def save_dataset(ds: MultimodalDataset, path: str | os.PathLike[str]) -> Path:
    """Write ``ds`` to ``path`` in the own format (see module docstring), atomically.

    Args:
        ds: the dataset (validated before writing).
        path: target file, conventionally ``*.npz``; parent directories are created.
    Returns:
        The path written.
    """
    ds.validate()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "format": FORMAT_TAG,
        "version": FORMAT_VERSION,
        "name": ds.name,
        "source": ds.source,
        "splits": list(ds.splits),
        "modalities": list(ds.modalities),
        "task": dataclasses.asdict(ds.task),
        "feature_names": {m: list(v) for m, v in ds.feature_names.items()},
        "nonfinite": ds.nonfinite,
    }
    if ds.extraction is not None:
        meta["extraction"] = ds.extraction
    arrays: dict[str, np.ndarray] = {META_KEY: np.array(json.dumps(meta))}
    for sname, s in ds.splits.items():
        arrays[f"{sname}/labels"] = s.labels
        arrays[f"{sname}/ids"] = np.array(s.ids, dtype=str)
        if s.texts is not None:
            arrays[f"{sname}/texts"] = np.array(s.texts, dtype=str).reshape(len(s.texts))
        for m in ds.modalities:
            arrays[f"{sname}/{m}/features"] = s.features[m]
            arrays[f"{sname}/{m}/lengths"] = s.lengths[m]
    from mmlatch.files import atomic_write

    with atomic_write(path, "wb") as f:
        np.savez(f, **arrays)  # type: ignore[arg-type]
        f.flush()
        os.fsync(f.fileno())
    return path


EXTRACT_MANIFEST_FORMAT = "mmlatch-extract-manifest"


def extraction_manifest(path: str | os.PathLike[str]) -> Path:
    """``data.npz`` -> ``data.manifest.json``, where ``mmlatch extract`` records the file's SHA-256."""
    path = Path(path)
    return path.with_name(path.stem + ".manifest.json")


def check_extraction_hash(path: str | os.PathLike[str]) -> str | None:
    """Compare a dataset file with the SHA-256 its extraction manifest recorded (if any).

    Returns:
        None when it matches, "no stored hash" when no manifest (or an older one) is beside it.
    Raises:
        DataError: the manifest is unreadable, or the file's bytes differ (names the file).
    """
    from mmlatch.files import sha256_file

    path = Path(path)
    manifest = extraction_manifest(path)
    if not manifest.is_file():
        return "no stored hash"
    try:
        doc = json.loads(manifest.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise DataError(f"{manifest}: the extraction manifest of {path.name} is not valid JSON ({type(e).__name__}: "
                        f"{str(e).splitlines()[0] if str(e) else ''}); re-run mmlatch extract, or remove it") from None
    if not isinstance(doc, dict) or doc.get("format") != EXTRACT_MANIFEST_FORMAT:
        raise DataError(f"{manifest}: not an extraction manifest (no format {EXTRACT_MANIFEST_FORMAT!r}); "
                        f"re-run mmlatch extract, or remove it")
    stored = doc.get("dataset_sha256")
    if not stored:
        return "no stored hash"
    if sha256_file(path) != stored:
        raise DataError(f"{path}: SHA-256 differs from the one {manifest.name} recorded when it was written "
                        f"(the file changed afterwards: flipped bits, a partial copy or another extraction)")
    return None


def is_own_file(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is a zip (npz) file with the ``__mmlatch__`` entry."""
    try:
        if not zipfile.is_zipfile(path):
            return False
        with zipfile.ZipFile(path) as z:
            return f"{META_KEY}.npy" in z.namelist()
    except OSError:
        return False


def load_own(path: str | os.PathLike[str]) -> MultimodalDataset:
    """Read a file written by :func:`save_dataset`.

    Returns:
        The dataset, validated; ``source`` is ``own:<path>``.
    Raises:
        DataError: missing/corrupt file, not an own-format file, missing entries (named).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    check_extraction_hash(path)
    try:
        z = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile, NotImplementedError) as e:
        raise DataError(f"{path}: not a readable .npz file (truncated or corrupt?): {e}") from e
    if not isinstance(z, np.lib.npyio.NpzFile):
        raise DataError(f"{path}: a single .npy array, not an mmlatch dataset (.npz)")
    with z:

        def get(key: str) -> np.ndarray:
            if key not in z.files:
                raise DataError(f"{path}: missing entry {key!r}")
            try:
                return z[key]
            except (OSError, ValueError, zipfile.BadZipFile, EOFError, NotImplementedError) as e:
                raise DataError(f"{path}: entry {key!r} could not be read (corrupt?): {e}") from e

        if META_KEY not in z.files:
            raise DataError(f"{path}: not an mmlatch dataset file (no {META_KEY!r} entry)")
        try:
            meta: Any = json.loads(str(get(META_KEY)))
        except json.JSONDecodeError as e:
            raise DataError(f"{path}: entry {META_KEY!r} is not valid JSON: {e}") from e
        if not isinstance(meta, dict) or meta.get("format") != FORMAT_TAG:
            raise DataError(f"{path}: entry {META_KEY!r} does not describe an {FORMAT_TAG!r}")
        if meta.get("version") != FORMAT_VERSION:
            raise DataError(
                f"{path}: format version {meta.get('version')!r}, this reader knows {FORMAT_VERSION}"
            )
        try:
            task = TaskSpec.from_dict(meta["task"])
            split_names = list(meta["splits"])
            modalities = list(meta["modalities"])
        except (KeyError, TypeError, ValueError, IndexError) as e:
            raise DataError(
                f"{path}: entry {META_KEY!r} has a missing or malformed field: {e!r}"
            ) from e
        splits: dict[str, Split] = {}
        for s in split_names:
            splits[s] = Split(
                features={m: get(f"{s}/{m}/features") for m in modalities},
                lengths={m: get(f"{s}/{m}/lengths") for m in modalities},
                labels=get(f"{s}/labels"),
                ids=[str(v) for v in get(f"{s}/ids")],
                texts=[str(v) for v in get(f"{s}/texts")] if f"{s}/texts" in z.files else None,
            )
    try:
        return MultimodalDataset(
            name=str(meta.get("name", path.stem)),
            splits=splits,
            task=task,
            feature_names={m: list(v) for m, v in dict(meta.get("feature_names") or {}).items()},
            source=f"own:{path}",
            nonfinite={s: dict(v) for s, v in dict(meta.get("nonfinite") or {}).items()},
            extraction=meta.get("extraction"),
        )
    except (DataError, TypeError, ValueError, AttributeError) as e:  # entries of the wrong type or shape
        raise DataError(f"{path}: {e}") from e


__all__ = ["save_dataset", "load_own", "is_own_file", "FORMAT_TAG", "FORMAT_VERSION"]
