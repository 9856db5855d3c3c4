"""From raw media to word-aligned features: decode -> per-modality frame features -> words.

This layer sits beside ``data`` (``data`` never imports it): it writes the data layer's own
``.npz`` plus the extraction spec, and ``predict --media`` calls the same functions that
built the training data (:class:`Extractor`, :func:`normalise`).

- :mod:`.registry`: the extractor protocol per modality and the registry (name -> extractor);
- extractors, each registered by its module: text :mod:`.text` (``glove``: GloVe vectors)
  and :mod:`.contextual` (``all-minilm-l6-v2``); audio :mod:`.audio` (``librosa``) and
  :mod:`.egemaps` (``egemaps``, openSMILE); visual :mod:`.visual` (``geometry``: dlib
  68-landmark facial geometry) and :mod:`.expressions` (``expressions``, mini-Xception);
- :mod:`.decode`: audio/video decoding with imageio-ffmpeg's bundled ffmpeg;
- :mod:`.timing`: word timing (given, pocketsphinx forced alignment, proportional fallback);
- :mod:`.align`: frames averaged inside each word (the CMU SDK's recipe);
- :mod:`.spec`: the spec, its compatibility check and train-split normalisation;
- :mod:`.clip`: one clip; :mod:`.build`: a whole manifest with parts/resume/jobs.
"""

# the built-in extractors register themselves on import (their heavy imports are lazy)
from mmlatch.extract import audio, contextual, egemaps, expressions, text, visual  # noqa: F401
from mmlatch.extract.clip import ClipFeatures, ClipInput, Extractor
from mmlatch.extract.errors import ClipError, ExtractError
from mmlatch.extract.registry import (
    DEFAULTS, create_extractor, describe, extractor_names, register_extractor, text_choice,
    unregister_extractor,
)
from mmlatch.extract.spec import build_spec, check_compatible, normalise, restrict
from mmlatch.extract.text import tokenize

__all__ = [
    "ClipFeatures", "ClipInput", "Extractor", "ClipError", "ExtractError", "DEFAULTS", "build_spec",
    "check_compatible", "create_extractor", "describe", "extractor_names", "normalise",
    "register_extractor", "restrict", "tokenize", "unregister_extractor", "text_choice",
]

