"""The command line interface (``mmlatch``)."""
