"""Building blocks: encoders, attention, fusion, feedback and the top-down plug-in."""

from mmlatch.modules.attention import AttentionSum, CrossModalAttention, SelfAttention
from mmlatch.modules.encoders import RecurrentEncoder
from mmlatch.modules.feedback import LinearFeedback, LSTMFeedback, build_feedback
from mmlatch.modules.fusion import SymmetricAttentionFusion
from mmlatch.modules.outputs import ModelOutput
from mmlatch.modules.readout import AttentiveSumReadout, LastStateReadout
from mmlatch.modules.rnn import MaskedBiLSTM
from mmlatch.modules.topdown import TopDown, TopDownBackbone

__all__ = [
    "AttentionSum",
    "AttentiveSumReadout",
    "CrossModalAttention",
    "LSTMFeedback",
    "LastStateReadout",
    "LinearFeedback",
    "MaskedBiLSTM",
    "ModelOutput",
    "RecurrentEncoder",
    "SelfAttention",
    "SymmetricAttentionFusion",
    "TopDown",
    "TopDownBackbone",
    "build_feedback",
]
