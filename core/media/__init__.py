"""The media pipeline: files shared in chat -> request content parts, store metadata and reply notes."""

from core.media.cache import MediaCache
from core.media.pipeline import MediaPipeline, MediaProgress, PreparedMedia, data_url
from core.media.sniff import Sniffed, sniff, sniff_mime
from core.media.tokens import estimate_tokens

__all__ = [
    "MediaCache",
    "MediaPipeline",
    "MediaProgress",
    "PreparedMedia",
    "Sniffed",
    "data_url",
    "estimate_tokens",
    "sniff",
    "sniff_mime",
]
