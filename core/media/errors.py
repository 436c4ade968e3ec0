"""Why a file was left out of a request."""

from __future__ import annotations


class MediaRefused(Exception):
    """The pipeline will not send this file; `str()` completes the sentence "<file name>: ..."."""
