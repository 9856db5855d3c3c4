"""Extract a whole dataset (an MMSA ``label.csv``-style manifest) into the own ``.npz``.

Per clip the raw word-aligned features (or the failure and its reason) are written to a
parts directory beside the output (``OUT.parts/``) as soon as the clip is done, so a killed
extraction loses nothing: ``resume=True`` skips the clips already there (the spec must be
the same). When every clip is done, normalisation statistics are computed on the train
split's words (for the modalities whose extractor asks for it: audio, visual, contextual
text), the dataset is written (:func:`mmlatch.data.convert.save_dataset`, spec in its
metadata) and a manifest JSON beside it records the spec, every clip's status and a summary;
the parts directory is then removed. The manifest records the SHA-256 of the ``.npz``
(``dataset_sha256``), checked whenever the dataset is loaded.

One extraction writes an output at a time (:func:`mmlatch.rundir.writer_lock` on ``OUT``). A
failed write (disk full ...) stops it with one line; the clips extracted so far stay in
``OUT.parts/`` and ``--resume`` continues. A part that cannot be read back (truncated,
flipped bits: the ``.npz`` zip members carry CRC-32 checksums) is extracted again.

Manifest columns: ``video_id, clip_id, text, label, mode`` (required; ``mode`` is the split:
train / valid / test, ``dev``/``val`` read as valid) and optional ``media`` (path, relative
to the manifest's folder unless absolute), ``start``, ``end`` (seconds). Without ``media``,
``media_dir/<video_id>/<clip_id>.<ext>`` is looked for (ext: mp4, mkv, avi, mov, webm,
wav, flac, mp3, m4a).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from mmlatch.files import WriteError, atomic_write, sha256_file, write_json, write_text
from mmlatch.extract.clip import ClipFeatures, ClipInput, Extractor
from mmlatch.extract.errors import ClipError, ExtractError
from mmlatch.extract.registry import text_choice
from mmlatch.extract.spec import normalisation_stats, normalise
from mmlatch.extract.text import tokenize

REQUIRED_COLUMNS = ("video_id", "clip_id", "text", "label", "mode")
MEDIA_EXTS = (".mp4", ".mkv", ".avi", ".mov", ".webm", ".wav", ".flac", ".mp3", ".m4a")
_SPLITS = {"train": "train", "valid": "valid", "val": "valid", "dev": "valid", "test": "test"}


def manifest_path(out: Path) -> Path:
    """``data.npz`` -> ``data.manifest.json``."""
    return out.with_name(out.stem + ".manifest.json")


def parts_dir(out: Path) -> Path:
    return out.with_name(out.name + ".parts")


def read_manifest(path: Path, media_dir: Path | None) -> tuple[list[dict[str, Any]], bool]:
    """Rows of the manifest (dicts with id, split, label, ClipInput or an ``error``) and
    whether any media is referenced.

    Raises:
        ExtractError: unreadable file, missing columns, duplicate clip ids.
    """
    import pandas as pd

    if not path.is_file():
        raise ExtractError(f"manifest {path}: no such file")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (ValueError, OSError, UnicodeDecodeError) as e:
        raise ExtractError(f"manifest {path}: not a readable CSV ({e})") from e
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise ExtractError(
            f"manifest {path}: missing column(s) {missing}; it has {list(frame.columns)} "
            f"(needed: {', '.join(REQUIRED_COLUMNS)}; optional: media, start, end)"
        )
    if media_dir is not None and not media_dir.is_dir():
        raise ExtractError(f"--media-dir {media_dir}: no such directory")
    has_media = "media" in frame.columns or media_dir is not None
    rows: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for i, r in enumerate(frame.to_dict("records")):
        cid = f"{r['video_id']}$_${r['clip_id']}"
        if cid in seen:
            raise ExtractError(f"manifest {path}, line {i + 2}: clip {cid!r} repeats line {seen[cid] + 2}")
        seen[cid] = i
        row: dict[str, Any] = {"id": cid, "line": i + 2, "split": _SPLITS.get(r["mode"].strip().lower())}
        errors = []
        if row["split"] is None:
            errors.append(f"mode {r['mode']!r} is not train/valid/test")
        try:
            row["label"] = float(r["label"])
            if not np.isfinite(row["label"]):
                raise ValueError
        except ValueError:
            errors.append(f"label {r['label']!r} is not a finite number")
        start = end = None
        try:
            start = float(r["start"]) if r.get("start", "") != "" else None
            end = float(r["end"]) if r.get("end", "") != "" else None
        except ValueError:
            errors.append(f"start/end {r.get('start')!r}/{r.get('end')!r} are not numbers")
        media = _find_media(r, path.parent, media_dir) if has_media else None
        row["input"] = ClipInput(cid, media, r["text"], None, start, end)
        if errors:
            row["error"] = "; ".join(errors)
        rows.append(row)
    if not rows:
        raise ExtractError(f"manifest {path}: no rows")
    return rows, has_media


def _find_media(r: dict[str, str], base: Path, media_dir: Path | None) -> Path | None:
    if r.get("media", "") != "":
        p = Path(r["media"])
        return p if p.is_absolute() else base / p
    if media_dir is None:
        return None
    stem = media_dir / r["video_id"] / r["clip_id"]
    for ext in MEDIA_EXTS:
        if stem.with_suffix(ext).is_file():
            return stem.with_suffix(ext)
    return stem.with_suffix(".mp4")  # reported as missing by the decoder


def _part_name(cid: str) -> str:
    return hashlib.sha1(cid.encode()).hexdigest()[:20]


def _write_part(folder: Path, cid: str, result: ClipFeatures | str) -> None:
    """One clip's outcome, atomically: ``<hash>.npz`` (features) or ``<hash>.json`` (failure)."""
    name = _part_name(cid)
    if isinstance(result, str):
        write_text(folder / f"{name}.json", json.dumps({"id": cid, "error": result}))
        return
    arrays = {f"features_{m}": v for m, v in result.features.items()}
    arrays["words"] = np.array(result.words, dtype=str)
    if result.intervals is not None:
        arrays["intervals"] = result.intervals
    arrays["status"] = np.array(json.dumps({"id": cid, **result.status}))
    with atomic_write(folder / f"{name}.npz", "wb") as f:
        np.savez(f, **arrays)  # type: ignore[arg-type]


def _read_part(folder: Path, cid: str) -> ClipFeatures | str | None:
    """One clip's stored outcome; None when not extracted yet, or when its part cannot be read
    back (it is removed, with a warning, and the clip is extracted again)."""
    import warnings
    import zipfile

    name = _part_name(cid)
    path = folder / f"{name}.json"
    try:
        if path.is_file():
            doc = json.loads(path.read_text())
            if not isinstance(doc, dict) or doc.get("id") != cid or not isinstance(doc.get("error"), str):
                raise ValueError("not this clip's failure record")
            return doc["error"]
        path = folder / f"{name}.npz"
        if not path.is_file():
            return None
        with np.load(path, allow_pickle=False) as z:
            status = json.loads(str(z["status"]))
            feats = {k[len("features_"):]: z[k] for k in z.files if k.startswith("features_")}
            intervals = z["intervals"] if "intervals" in z.files else None
            words = [str(w) for w in z["words"]]
        if not isinstance(status, dict) or status.pop("id", None) != cid:
            raise ValueError("not this clip's features")
    except (OSError, ValueError, KeyError, EOFError, UnicodeDecodeError, zipfile.BadZipFile) as e:
        warnings.warn(f"{path}: unreadable part of clip {cid!r} ({type(e).__name__}): extracting it again", stacklevel=2)
        path.unlink(missing_ok=True)
        return None
    return ClipFeatures(words, intervals, feats, status)


# one Extractor per worker process, built by the pool's initializer
_WORKER: Extractor | None = None


def _init_worker(spec: dict[str, Any], vocabulary: list[str] | None) -> None:
    global _WORKER
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    _WORKER = Extractor(spec, vocabulary)


def _run_clip(clip: ClipInput, folder: Path, extractor: Extractor | None = None) -> tuple[str, str | None]:
    ex = extractor or _WORKER
    assert ex is not None
    try:
        result: ClipFeatures | str = ex.extract(clip)
    except ClipError as e:
        result = str(e)
    _write_part(folder, clip.id, result)
    return clip.id, result if isinstance(result, str) else None


def extract_dataset(
    manifest: Path,
    out: Path,
    *,
    media_dir: Path | None = None,
    modalities: list[str] | None = None,
    embedding: str = "glove-6b-50d",
    audio: str = "librosa",
    visual: str = "geometry",
    jobs: int = 1,
    resume: bool = False,
    progress: bool = True,
    spec_options: dict[str, Any] | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Extract every clip of ``manifest`` and write ``out`` (.npz) + its manifest JSON.

    Args:
        manifest: the CSV (see module docstring).
        out: the dataset file to write.
        media_dir: where ``<video_id>/<clip_id>.<ext>`` media live.
        modalities: default text, plus audio and visual when media are referenced.
        embedding: the text extractor: ``glove-6b-50d``, a GloVe-format text file, or a
            registered text extractor's name (e.g. ``all-minilm-l6-v2``).
        audio, visual: registered audio / visual extractor names.
        jobs: worker processes.
        resume: keep the clips already extracted into ``OUT.parts/`` (same spec required).
        progress: show a progress bar (tqdm, on stderr).
        spec_options: further :func:`build_spec` settings (rates, sizes).
    Returns:
        The summary (also in the manifest JSON).
    Raises:
        LockedError: another extraction writes ``out``.
        ExtractError: bad input, or a failed write (one line; ``--resume`` continues).
    """
    from mmlatch.rundir import writer_lock

    rows, has_media = read_manifest(manifest, media_dir)  # bad input first: nothing is locked or written
    choices = {"text": text_choice(embedding), "audio": (audio, {}), "visual": (visual, {})}
    with writer_lock(out, directory=False, advice="wait for it to finish, or use another --out"):
        try:
            return _extract_locked(rows, has_media, manifest, out, media_dir, modalities, choices, jobs, resume,
                                   progress, spec_options, log)
        except WriteError as e:
            raise ExtractError(
                f"{e}; what was written before is intact: free space and re-run the same command with --resume "
                f"(the clips extracted so far are kept in {parts_dir(out)})"
            ) from None


def _extract_locked(
    rows: list[dict[str, Any]], has_media: bool, manifest: Path, out: Path, media_dir: Path | None,
    modalities: list[str] | None, choices: dict[str, tuple[str, dict[str, Any]]], jobs: int, resume: bool,
    progress: bool, spec_options: dict[str, Any] | None, log: Callable[[str], None],
) -> dict[str, Any]:
    mods = modalities or (["text", "audio", "visual"] if has_media else ["text"])
    if any(m in mods for m in ("audio", "visual")) and not has_media:
        raise ExtractError(
            f"modalities {mods} need media, but manifest {manifest} has no 'media' column and no --media-dir was given"
        )
    vocabulary = None
    if "text" in mods and choices["text"] != ("glove", {"embedding": "glove-6b-50d"}):
        vocabulary = sorted({w for r in rows for w in tokenize(r["input"].text or "")})
    extractor = Extractor.create(
        mods, choices, vocabulary=vocabulary,
        timing="pocketsphinx" if has_media and mods != ["text"] else "none", **(spec_options or {}),
    )
    spec = extractor.spec
    folder = parts_dir(out)
    spec_file = folder / "spec.json"
    comparable = {k: v for k, v in spec.items() if k != "versions"}
    if folder.is_dir() and resume:
        if spec_file.is_file():
            try:
                saved = json.loads(spec_file.read_text())
            except (OSError, ValueError, UnicodeDecodeError) as e:
                raise ExtractError(f"--resume: {spec_file} is unreadable ({type(e).__name__}); "
                                   f"remove {folder} or drop --resume") from None
            if saved != comparable:
                raise ExtractError(f"--resume: {folder} was extracted with another spec; remove it or drop --resume")
    elif folder.is_dir():
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_text(spec_file, json.dumps(comparable, indent=1))

    todo = [r for r in rows if "error" not in r and _read_part(folder, r["id"]) is None]
    done_before = len(rows) - len(todo) - sum("error" in r for r in rows)
    if done_before:
        log(f"resuming: {done_before} clip(s) already extracted in {folder}")
    bar = _progress(len(todo), progress)
    if jobs <= 1 or len(todo) <= 1:
        for r in todo:
            _run_clip(r["input"], folder, extractor)
            bar.update(1)
    else:
        with ProcessPoolExecutor(jobs, initializer=_init_worker, initargs=(spec, vocabulary)) as pool:
            for _ in pool.map(_run_clip, [r["input"] for r in todo], [folder] * len(todo), chunksize=8):
                bar.update(1)
    bar.close()
    return _assemble(rows, spec, folder, out, manifest, log)


def _progress(total: int, enabled: bool):  # noqa: ANN202 - tqdm type
    from tqdm import tqdm

    return tqdm(total=total, desc="extract", unit="clip", disable=not enabled or total == 0, file=sys.stderr)


def _assemble(
    rows: list[dict[str, Any]], spec: dict[str, Any], folder: Path, out: Path, manifest: Path,
    log: Callable[[str], None],
) -> dict[str, Any]:
    from mmlatch.data import MultimodalDataset, Split
    from mmlatch.data.convert import save_dataset

    mods = spec["modalities"]
    results: dict[str, ClipFeatures] = {}
    clips: list[dict[str, Any]] = []
    for r in rows:
        res: ClipFeatures | str | None = r.get("error") or _read_part(folder, r["id"])
        if res is None:  # pragma: no cover - every clip was run
            res = "not extracted"
        entry: dict[str, Any] = {"id": r["id"], "line": r["line"], "split": r["split"]}
        if isinstance(res, str):
            entry.update(status="failed", reason=res)
        else:
            entry.update(status="ok", **res.status)
            results[r["id"]] = res
        clips.append(entry)
    ok_rows = [r for r in rows if r["id"] in results]
    if not ok_rows:
        reasons = Counter(c.get("reason") for c in clips)
        raise ExtractError(f"no clip could be extracted from {manifest}; reasons: {dict(reasons.most_common(3))}")
    train_ids = [r["id"] for r in ok_rows if r["split"] == "train"]
    for m in mods:
        if spec[m].get("normalise", m != "text") and train_ids:
            spec["normalisation"][m] = normalisation_stats(np.concatenate([results[i].features[m] for i in train_ids]))
    max_len = max(len(results[r["id"]].words) for r in ok_rows)
    splits = {}
    for sname in ("train", "valid", "test"):
        members = [r for r in ok_rows if r["split"] == sname]
        if not members:
            continue
        feats, lengths = {}, {}
        for m in mods:
            dim = spec[m]["dim"]
            arr = np.zeros((len(members), max_len, dim), np.float32)
            for i, r in enumerate(members):
                x = normalise(results[r["id"]].features[m], m, spec)
                arr[i, : len(x)] = x
            feats[m] = arr
            lengths[m] = np.array([len(results[r["id"]].words) for r in members], np.int64)
        texts = [" ".join(results[r["id"]].words) for r in members]  # the words, for models that tokenise them
        splits[sname] = Split(
            feats, lengths, np.array([[r["label"]] for r in members], np.float32), [r["id"] for r in members], texts
        )
    if "train" not in splits:
        raise ExtractError(f"{manifest}: no train clip was extracted: normalisation statistics need a train split")
    ds = MultimodalDataset(
        name=manifest.parent.name or manifest.stem, splits=splits,
        feature_names={m: list(spec[m]["feature_names"]) for m in mods}, source=f"extract:{manifest}",
    )
    ds.extraction = spec
    manifest_path(out).unlink(missing_ok=True)  # an older manifest's hash never pairs with the new file
    save_dataset(ds, out)
    summary = _summary(clips, spec)
    doc = {"format": "mmlatch-extract-manifest", "dataset": str(out), "dataset_sha256": sha256_file(out),
           "manifest": str(manifest), "spec": spec, "summary": summary, "clips": clips}
    write_json(manifest_path(out), doc)
    shutil.rmtree(folder, ignore_errors=True)
    log(format_summary(summary, out))
    return summary


def _summary(clips: list[dict[str, Any]], spec: dict[str, Any]) -> dict[str, Any]:
    ok = [c for c in clips if c["status"] == "ok"]
    failed = [c for c in clips if c["status"] != "ok"]
    out: dict[str, Any] = {
        "clips": len(clips), "ok": len(ok), "failed": len(failed),
        "per_split": {s: sum(c["split"] == s for c in ok) for s in ("train", "valid", "test")},
        "failure_reasons": dict(Counter(_reason_kind(c["reason"]) for c in failed).most_common()),
        "timing": dict(Counter(c.get("timing") for c in ok)),
        "words": int(sum(c.get("words", 0) for c in ok)),
    }
    if "text" in spec["modalities"]:
        out["unknown_words"] = int(sum(c.get("unknown_words", 0) for c in ok))
    if "visual" in spec["modalities"]:
        out["clips_without_face"] = sum(c.get("face_frames", 0) == 0 for c in ok)
    secs = sum(c.get("seconds", 0.0) for c in ok)
    media = sum(c.get("duration_s", 0.0) for c in ok)
    out["extract_seconds"] = round(secs, 2)
    if media:
        out["media_seconds"] = round(media, 2)
    return out


def _reason_kind(reason: str) -> str:
    return reason.split(":")[0][:80] if ":" in reason else reason[:80]


def format_summary(summary: dict[str, Any], out: Path) -> str:
    """A few readable lines: clips ok/failed (with reasons), timing methods, unknown words."""
    lines = [f"wrote {out} ({summary['ok']} of {summary['clips']} clips: "
             + ", ".join(f"{k} {v}" for k, v in summary["per_split"].items()) + ")"]
    if summary["failed"]:
        lines.append(f"{summary['failed']} clip(s) failed (see {manifest_path(out).name}): "
                     + "; ".join(f"{n} x {r}" for r, n in summary["failure_reasons"].items()))
    lines.append("word timing: " + ", ".join(f"{k} {v}" for k, v in summary["timing"].items()))
    if "unknown_words" in summary:
        lines.append(f"words: {summary['words']}, not in the embeddings: {summary['unknown_words']} (zero vectors)")
    if "clips_without_face" in summary:
        lines.append(f"clips with no face in any frame: {summary['clips_without_face']}")
    return "\n".join(lines)
