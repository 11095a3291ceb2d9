"""Errors meant for the user: the CLI prints their message without a traceback."""

from __future__ import annotations


class RealCheckError(Exception):
    """A problem the user can fix (bad path, bad flag, bad data); the message says how."""


class DataError(RealCheckError):
    """The data set cannot be used as given (missing folder, no images, one class only...)."""


class ImageDecodeError(RealCheckError):
    """One image cannot be decoded: not an image, truncated, unsupported format or too many pixels."""


class WeightsUnavailableError(RealCheckError):
    """Pretrained weights cannot be obtained (offline, or a bad weights file)."""


class ArtifactError(RealCheckError):
    """A model artifact folder is missing, incomplete or of an unknown format."""
