"""mmlatch: multimodal sentiment analysis with top-down feedback fusion."""

__version__ = "0.1.0"
