"""Images: verified, upright, within the pixel budget, and no bigger than needed."""

from __future__ import annotations

import pytest
from PIL import Image

from core.llm.types import ImagePart
from core.media import MediaPipeline, estimate_tokens
from core.media.images import HEIC_SUPPORTED
from tests.core.media.helpers import image_of, media_settings, payload
from tests.core.media.samples import animated_gif, encode, marked_jpeg, photo


def pipeline(**settings: object) -> MediaPipeline:
    return MediaPipeline(media_settings(**settings))


async def test_a_12_megapixel_photo_is_downscaled_to_the_long_side_budget() -> None:
    original = encode(photo(4000, 3000), "JPEG", quality=92)
    prepared = await pipeline().prepare_bytes("IMG_0001.jpg", original)

    assert prepared.notes == []
    [part] = prepared.parts
    assert isinstance(part, ImagePart) and part.image_url.detail == "high"
    image = image_of(part)
    assert image.format == "JPEG" and image.size == (2048, 1536)
    assert len(payload(part)[1]) < len(original)
    [meta] = prepared.attachments
    assert (meta.kind, meta.mime, meta.size, meta.name) == (
        "image",
        "image/jpeg",
        len(original),
        "IMG_0001.jpg",
    )


async def test_exif_orientation_is_applied_so_the_model_sees_the_photo_upright() -> None:
    # Stored 400x200 with the marker top-left; orientation 6 means "turn 90° clockwise to view".
    prepared = await pipeline().prepare_bytes("sideways.jpg", marked_jpeg(400, 200, orientation=6))

    image = image_of(prepared.parts[0]).convert("RGB")
    assert image.size == (200, 400)
    assert image.getexif().get(0x0112, 1) == 1
    red, _, blue = image.getpixel((image.width - 10, 10))
    assert red > 200 and blue < 80, "the stored top-left corner must now be top-right"
    assert sum(image.getpixel((10, 10))) > 700, "and the top-left corner is white"


async def test_portrait_limit_applies_to_the_long_side_after_rotation() -> None:
    prepared = await pipeline(image_max_side=256).prepare_bytes(
        "tall.jpg", marked_jpeg(1000, 500, orientation=8)
    )
    assert image_of(prepared.parts[0]).size == (128, 256)


async def test_a_small_image_is_sent_as_it_is() -> None:
    original = encode(photo(200, 150), "PNG")
    prepared = await pipeline().prepare_bytes("small.png", original)
    assert payload(prepared.parts[0]) == ("image/png", original)


async def test_a_needlessly_large_file_is_re_encoded_when_that_is_much_smaller() -> None:
    # A lossless PNG of a noisy photo is several times larger than a good JPEG of the same pixels.
    original = encode(photo(1200, 900), "PNG")
    prepared = await pipeline().prepare_bytes("photo.png", original)
    mime, data = payload(prepared.parts[0])
    assert mime == "image/jpeg" and len(data) < len(original) // 2
    assert prepared.attachments[0].mime == "image/png"  # the store describes the shared file


async def test_transparency_keeps_png() -> None:
    logo = Image.new("RGBA", (3000, 1000), (0, 0, 0, 0))
    logo.paste((200, 10, 10, 255), (100, 100, 900, 900))
    prepared = await pipeline().prepare_bytes("logo.png", encode(logo, "PNG"))
    image = image_of(prepared.parts[0])
    assert image.format == "PNG" and image.mode == "RGBA" and image.size == (2048, 683)
    assert image.getpixel((0, 0))[3] == 0


async def test_webp_is_accepted() -> None:
    prepared = await pipeline(image_max_side=300).prepare_bytes("pic.webp", encode(photo(900, 600), "WEBP"))
    assert image_of(prepared.parts[0]).size == (300, 200)
    assert prepared.attachments[0].mime == "image/webp"


async def test_an_animated_gif_becomes_a_few_still_frames_with_a_note() -> None:
    prepared = await pipeline().prepare_bytes("dance.gif", animated_gif(10))
    assert len(prepared.parts) == 4
    assert [image_of(part).size for part in prepared.parts] == [(40, 30)] * 4
    assert prepared.notes == ["dance.gif: is animated; sent 4 of its 10 frames as still images."]
    assert len(prepared.attachments) == 1


async def test_a_still_gif_is_one_image_without_a_note() -> None:
    prepared = await pipeline().prepare_bytes("still.gif", animated_gif(1))
    assert len(prepared.parts) == 1 and prepared.notes == []


async def test_a_truncated_image_gets_a_note_instead_of_an_error() -> None:
    damaged = encode(photo(600, 400), "JPEG")[:2000]
    prepared = await pipeline().prepare_bytes("broken.jpg", damaged)
    assert prepared.parts == [] and prepared.attachments == []
    assert prepared.notes == [
        "broken.jpg: could not be read as an image (the file looks damaged or incomplete)."
    ]


@pytest.mark.skipif(HEIC_SUPPORTED, reason="pillow-heif is installed")
async def test_heic_without_the_plugin_gets_a_clear_note() -> None:
    heic = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 100
    prepared = await pipeline().prepare_bytes("IMG_2001.HEIC", heic)
    assert prepared.parts == []
    assert prepared.notes == [
        "IMG_2001.HEIC: is a HEIC photo, which is not supported here; please send it as JPEG or PNG."
    ]


@pytest.mark.skipif(not HEIC_SUPPORTED, reason="pillow-heif is not installed")
async def test_heic_with_the_plugin_is_converted() -> None:
    prepared = await pipeline().prepare_bytes("IMG_2002.HEIC", encode(photo(300, 200), "HEIF"))
    assert image_of(prepared.parts[0]).size == (300, 200)
    assert prepared.attachments[0].mime == "image/heic" and prepared.notes == []


async def test_image_token_estimate_grows_with_pixels_and_is_capped_by_low_detail() -> None:
    big = await pipeline().prepare_bytes("big.jpg", encode(photo(2048, 1536), "JPEG"))
    small = await pipeline().prepare_bytes("small.jpg", encode(photo(256, 192), "JPEG"))
    low = await MediaPipeline(media_settings(), image_detail="low").prepare_bytes(
        "big.jpg", encode(photo(2048, 1536), "JPEG")
    )
    assert (
        estimate_tokens(big.parts[0]) > 3000 > estimate_tokens(low.parts[0]) > estimate_tokens(small.parts[0])
    )
    # A part built elsewhere (no measurements attached) is measured from its data URL's header.
    foreign = ImagePart.model_validate(big.parts[0].model_dump())
    assert type(foreign) is ImagePart
    assert estimate_tokens(foreign) == estimate_tokens(big.parts[0])


async def test_a_cmyk_jpeg_is_converted_to_rgb_even_when_small() -> None:
    cmyk = encode(photo(120, 90).convert("CMYK"), "JPEG")
    prepared = await pipeline().prepare_bytes("print.jpg", cmyk)
    assert image_of(prepared.parts[0]).mode in ("RGB", "RGBA")
