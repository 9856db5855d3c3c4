"""From raw media to word-aligned features: decode -> per-modality frame features -> words.

This layer sits beside ``data`` (``data`` never imports it): it writes the data layer's own
``.npz`` plus the extraction spec, and ``predict --media`` calls the same functions that
built the training data (:class:`Extractor`, :func:`normalise`).

- :mod:`.text`: tokenizer and GloVe-format word vectors;
- :mod:`.decode`: audio/video decoding with imageio-ffmpeg's bundled ffmpeg;
- :mod:`.audio`: librosa frame features; :mod:`.visual`: dlib 68-landmark facial geometry;
- :mod:`.timing`: word timing (given, pocketsphinx forced alignment, proportional fallback);
- :mod:`.align`: frames averaged inside each word (the CMU SDK's recipe);
- :mod:`.spec`: the spec, its compatibility check and train-split normalisation;
- :mod:`.clip`: one clip; :mod:`.build`: a whole manifest with parts/resume/jobs.
"""

from mmlatch.extract.clip import ClipFeatures, ClipInput, Extractor
from mmlatch.extract.errors import ClipError, ExtractError
from mmlatch.extract.spec import build_spec, check_compatible, normalise, restrict
from mmlatch.extract.text import tokenize

__all__ = [
    "ClipFeatures", "ClipInput", "Extractor", "ClipError", "ExtractError", "build_spec",
    "check_compatible", "normalise", "restrict", "tokenize",
]
