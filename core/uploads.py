"""Pictures from users (an upload, a drawing pad's data URL) are untrusted data.

A picture's header is read first (``PIL.Image.open`` is lazy: it reads the size without
decoding a pixel), and a picture larger than ``MAX_PIXELS`` is refused before it is
decoded: a 20000x20000 PNG of a few kilobytes would otherwise take gigabytes. Files that
are not pictures, formats outside ``FORMATS``, and damaged or cut-short files are refused
too. Every refusal is a ``PictureError`` whose message is one sentence saying what is wrong
and what to do. Typical use::

    from core.uploads import open_picture
    img = open_picture(uploaded_file.getvalue())  # a decoded PIL image, or PictureError
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import warnings

from PIL import Image

MAX_SIDE = 4096
MAX_PIXELS = MAX_SIDE * MAX_SIDE  # 16.8 Mpx
MAX_BYTES = 32 << 20  # a picture file
FORMATS = ("PNG", "JPEG", "BMP", "GIF", "WEBP")
_WHAT = "upload a PNG or JPEG picture"
NOT_A_PICTURE = "That file is not a picture Pillow can read: upload a PNG or JPEG."


class PictureError(ValueError):
    """A user's picture is refused; the message says why and what to do."""


def check_picture_size(width: int, height: int, max_pixels: int = MAX_PIXELS) -> None:
    """Refuse a picture of more than ``max_pixels`` pixels (or an empty one)."""
    if width < 1 or height < 1:
        raise PictureError(f"The picture is empty ({width}x{height} pixels): {_WHAT}.")
    if width * height > max_pixels:
        raise PictureError(
            f"The picture is {width}x{height} pixels ({width * height / 1e6:.1f} Mpx), more "
            f"than the {max_pixels / 1e6:.1f} Mpx this page decodes: scale it down to at most "
            f"{MAX_SIDE}x{MAX_SIDE} pixels and upload it again."
        )


def open_picture(data: bytes | bytearray | memoryview, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Decode a picture file's bytes, refusing above ``max_pixels`` before decoding.

    Returns:
        The decoded PIL image (its first frame).

    Raises:
        PictureError: empty, too large, not a picture, an unsupported format, or damaged.
    """
    data = bytes(data)
    if not data:
        raise PictureError(f"The file is empty: {_WHAT}.")
    if len(data) > MAX_BYTES:
        raise PictureError(
            f"The file is {len(data) >> 20} MB, more than the {MAX_BYTES >> 20} MB a picture "
            f"may have here: {_WHAT} of at most {MAX_SIDE}x{MAX_SIDE} pixels."
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our cap is lower
        try:
            img = Image.open(io.BytesIO(data), formats=list(FORMATS))  # the header only
        except Image.DecompressionBombError:
            raise PictureError(
                f"The picture declares more pixels than this page decodes: scale it down to "
                f"at most {MAX_SIDE}x{MAX_SIDE} pixels and upload it again."
            ) from None
        except Exception:  # UnidentifiedImageError, a broken header, ...
            raise PictureError(NOT_A_PICTURE) from None
        check_picture_size(*img.size, max_pixels=max_pixels)
        try:
            img.load()
        except Exception:  # truncated data, bad CRCs, a broken decoder stream
            raise PictureError(
                f"The picture is damaged or cut short and cannot be decoded: {_WHAT} again."
            ) from None
    return img


def picture_from_data_url(url: str, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """A picture from a ``data:image/...;base64,`` URL (what a drawing canvas sends), with
    the checks of ``open_picture``."""
    if not isinstance(url, str) or len(url) > 2 * MAX_BYTES:
        raise PictureError("The drawing did not arrive as an image: draw it again.")
    m = re.match(r"^data:image/[a-z+.-]+;base64,(.*)$", url, re.S)
    if not m:
        raise PictureError("The drawing did not arrive as an image: draw it again.")
    try:
        data = base64.b64decode(m.group(1), validate=True)
    except (binascii.Error, ValueError):
        raise PictureError("The drawing arrived garbled: draw it again.") from None
    return open_picture(data, max_pixels)
