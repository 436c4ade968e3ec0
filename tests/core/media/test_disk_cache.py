"""The disk cache of prepared media: kept across restarts, bounded, least recently used out first."""

from __future__ import annotations

import os

from core.llm.types import ImagePart, ImageURL, TextPart
from core.media.cache import CachedMedia
from core.media.disk_cache import DiskCache, KeptFile


def kept(text: str, size: int = 100) -> KeptFile:
    parts = (TextPart(text=text), ImagePart(image_url=ImageURL(url="data:image/png;base64,AAAA")))
    return KeptFile(CachedMedia("image", "image/png", parts, ("was downscaled.",)), size, "ab" * 32)


async def test_an_entry_is_read_back_whole_by_a_new_process(tmp_path):
    await DiskCache(tmp_path, 1_000_000).put("slack:F1", kept("one"))
    again = await DiskCache(tmp_path, 1_000_000).get("slack:F1")
    assert again == kept("one")
    assert await DiskCache(tmp_path, 1_000_000).get("slack:F2") is None


async def test_past_its_size_the_least_recently_used_entries_go(tmp_path):
    one_entry = len((await _written(tmp_path, "probe")).read_bytes())
    cache = DiskCache(tmp_path / "bounded", 3 * one_entry)
    for number in range(3):
        await cache.put(f"k{number}", kept("x"))
        os.utime(cache._path(f"k{number}"), (1_000 + number, 1_000 + number))
    assert await cache.get("k0") is not None  # used now: the newest
    await cache.put("k3", kept("x"))
    assert await cache.get("k1") is None
    assert all([await cache.get("k0"), await cache.get("k2"), await cache.get("k3")])
    assert cache.total_bytes <= 3 * one_entry


async def test_a_damaged_entry_is_a_miss_not_an_error(tmp_path):
    cache = DiskCache(tmp_path, 1_000_000)
    await cache.put("k", kept("x"))
    cache._path("k").write_bytes(b'{"kind": "image", "parts": [{"type": "nonsense"}]')
    assert await cache.get("k") is None


async def _written(folder, key):
    cache = DiskCache(folder, 1_000_000)
    await cache.put(key, kept("x"))
    return cache._path(key)
