"""Assembled architectures and the model registry.

The registry (:mod:`.registry`) imports no model: each model file imports it and registers
itself with ``@register_model`` / ``register_topdown``, and this package imports the model
files below. Their order is the listing order: the paper's models first.
"""

from mmlatch.models.registry import (
    MOSEI_DIMS,
    count_parameters,
    create_model,
    get_entry,
    list_models,
    model_arguments,
    register_model,
)

# Importing the model files runs their registrations (a new model: one file + one line here).
import mmlatch.models.latefusion  # noqa: F401, E402, I001
import mmlatch.models.mult  # noqa: F401, E402
import mmlatch.models.hctmg  # noqa: F401, E402
import mmlatch.models.raven  # noqa: F401, E402
import mmlatch.models.mctn  # noqa: F401, E402
import mmlatch.models.routing  # noqa: F401, E402
# the field's classic models (MMSA's set)
import mmlatch.models.tfn  # noqa: F401, E402
import mmlatch.models.lmf  # noqa: F401, E402
import mmlatch.models.lfdnn  # noqa: F401, E402
import mmlatch.models.eflstm  # noqa: F401, E402
import mmlatch.models.mfn  # noqa: F401, E402
import mmlatch.models.graphmfn  # noqa: F401, E402
import mmlatch.models.misa  # noqa: F401, E402
import mmlatch.models.selfmm  # noqa: F401, E402
import mmlatch.models.mmim  # noqa: F401, E402

__all__ = [
    "MOSEI_DIMS",
    "count_parameters",
    "create_model",
    "get_entry",
    "list_models",
    "model_arguments",
    "register_model",
]
