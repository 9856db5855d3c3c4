"""One clip -> word-aligned features in a file (``mmlatch extract --media/--transcript``):
the library side of the command (the CLI only parses options)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

from mmlatch.files import WriteError, atomic_write, sha256_file, write_json
from mmlatch.rundir import writer_lock


def read_transcript(value: Optional[str]) -> Optional[str]:
    """``--transcript``: the text itself, or the path of a text file holding it."""
    if value is None:
        return None
    p = Path(value)
    if len(value) < 4096 and p.suffix and p.is_file():
        return p.read_text(encoding="utf-8", errors="replace")
    return value


def read_vocabulary(text: Optional[str], timings: Optional[list]) -> Optional[list[str]]:
    """The words a GloVe text file must cover for one clip (None: recognised speech, read all)."""
    from mmlatch.extract import tokenize

    if text is not None:
        return tokenize(text)
    if timings is not None:
        return [w for t in timings for w in tokenize(t[0])]
    return None


def extract_one(
    media: Optional[Path], transcript: Optional[str], words: Optional[Path], out: Path,
    modalities: list[str], embedding: str, spec_options: dict[str, Any],
    audio: str = "librosa", visual: str = "geometry",
) -> dict[str, Any]:
    """One clip -> ``out`` (.npz of (1, n, F) arrays per modality, ``lengths``, ``ids``,
    ``words``, ``intervals``; raw, not normalised) + ``out.manifest.json``."""
    import numpy as np

    from mmlatch.extract import ClipError, ClipInput, ExtractError, Extractor, text_choice
    from mmlatch.extract.build import manifest_path
    from mmlatch.extract.timing import read_word_timings

    timings = read_word_timings(words) if words else None
    text = read_transcript(transcript)
    if media is None and text is None and timings is None:
        raise ExtractError("give --media, --transcript or --words (or --manifest for a dataset)")
    if media is not None and not media.is_file():
        raise ExtractError(f"--media {media}: no such file")
    if media is None:
        modalities = [m for m in modalities if m == "text"]
    choices = {"text": text_choice(embedding), "audio": (audio, {}), "visual": (visual, {})}
    vocabulary = read_vocabulary(text, timings)
    extractor = Extractor.create(modalities, choices, vocabulary=vocabulary,
                                 timing="given" if timings else "pocketsphinx", **spec_options)
    spec = extractor.spec
    try:
        clip = extractor.extract(ClipInput(media.stem if media else "clip", media, text, timings))
    except ClipError as e:
        raise ExtractError(f"{media or 'transcript'}: {e}") from e
    arrays = {m: v[None].astype(np.float32) for m, v in clip.features.items()}
    arrays["lengths"] = np.array([len(clip.words)], np.int64)
    arrays["ids"] = np.array([media.stem if media else "clip"])
    arrays["words"] = np.array(clip.words, dtype=str)
    if clip.intervals is not None:
        arrays["intervals"] = clip.intervals
    npz = out if out.name.endswith(".npz") else out.with_name(out.name + ".npz")  # as np.savez names it
    with writer_lock(npz, directory=False, advice="wait for it to finish, or use another --out"):
        try:
            manifest_path(out).unlink(missing_ok=True)  # an older manifest's hash never pairs with the new file
            with atomic_write(npz, "wb") as fh:
                np.savez(fh, **arrays)
            doc = {"format": "mmlatch-extract-manifest", "dataset": str(out), "dataset_sha256": sha256_file(npz),
                   "spec": spec, "clips": [{"id": str(arrays["ids"][0]), "status": "ok", **clip.status}]}
            write_json(manifest_path(out), json.loads(json.dumps(doc)))
        except WriteError as e:
            raise ExtractError(f"{e}; what was written before is intact: free space and re-run the same command") from None
    return doc["clips"][0]


__all__ = ["extract_one", "read_transcript", "read_vocabulary"]
