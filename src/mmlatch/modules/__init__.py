"""Building blocks: encoders, attention, fusion, feedback and the top-down plug-in."""

from mmlatch.modules.attention import AttentionPooling, CrossModalAttention, SelfAttention
from mmlatch.modules.encoders import RecurrentEncoder
from mmlatch.modules.feedback import LinearFeedback, LSTMFeedback, build_feedback
from mmlatch.modules.fusion import SymmetricAttentionFusion
from mmlatch.modules.outputs import ModelOutput
from mmlatch.modules.rnn import MaskedBiLSTM
from mmlatch.modules.topdown import TopDown, TopDownBackbone

__all__ = [
    "AttentionPooling",
    "CrossModalAttention",
    "LSTMFeedback",
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
