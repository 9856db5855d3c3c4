"""Errors of the extraction layer."""

from __future__ import annotations


class ExtractError(ValueError):
    """Bad input to an extraction (file, manifest, option); the message names what and where."""


class ClipError(RuntimeError):
    """One clip could not be extracted; recorded with this reason, the others go on."""
