"""Upload photos: a small pool of rendered JPEG/PNG pictures, each upload made unique by a comment.

Rendering is Pillow time; a comment (JPEG COM, PNG tEXt) is bytes. So every upload is one of
PHOTO_POOL_SIZE pictures per format plus its own comment: real image files at file-I/O cost.
"""

from __future__ import annotations

import io
import struct
import zlib

from .data import seed_digest, det_rng, det_uuid


# How many distinct pictures per format a sample renders. Every upload is one of them plus a comment
# that makes its bytes unique, so uploads cost file I/O instead of Pillow time at any scale.
PHOTO_POOL_SIZE = 64


def photo_bytes(seed: int, kind: str, index: int, fmt: str) -> bytes:
    """One upload: a pooled picture carrying a comment unique to ``(seed, kind, index)``.

    A pure function of its arguments; PhotoPool gives the same bytes without re-rendering."""
    return PhotoPool(seed).photo(kind, index, fmt)


class PhotoPool:
    """Renders each pooled picture at most once, for one sample (one seed); hands out unique uploads.

    Which picture an upload shows depends only on ``(seed, kind, index)``, so the bytes do not depend
    on the order uploads are asked for, or on which pool made them."""

    def __init__(self, seed: int, size: int = PHOTO_POOL_SIZE):
        if size < 1:
            raise ValueError(f"a photo pool needs at least one picture, got {size}")
        self._seed = seed
        self._size = size
        self._rendered: dict[tuple[str, int], bytes] = {}

    def photo(self, kind: str, index: int, fmt: str) -> bytes:
        if fmt not in ("jpg", "png"):
            raise ValueError(f"photos are jpg or png, got {fmt!r}")
        slot = int.from_bytes(seed_digest(self._seed, f"photo-slot:{kind}", index)[:8], "big") % self._size
        picture = self._rendered.get((fmt, slot))
        if picture is None:
            picture = self._rendered[(fmt, slot)] = render_photo(self._seed, fmt, slot)
        comment = f"Le Grimoire upload {det_uuid(self._seed, f'photo:{kind}', index)}"
        return with_comment(picture, fmt, comment)


def render_photo(seed: int, fmt: str, slot: int) -> bytes:
    """A real, decodable food-ish photo: soft coloured blobs on a plate-like background, with grain.

    Grain keeps JPEGs at a realistic ~25 KB (flat images would compress to nothing). The blur runs on
    the 1/8-size sketch (radius 3/8 there is radius 3 at full size), before the bicubic upscale."""
    from PIL import Image, ImageDraw, ImageFilter  # heavy import, only when images are made

    rng = det_rng(seed, f"photo:{fmt}", slot)
    width, height = (480, 360) if fmt == "jpg" else (320, 240)
    small = Image.new("RGB", (width // 8, height // 8), tuple(rng.randrange(150, 235) for _ in range(3)))
    draw = ImageDraw.Draw(small)
    for _ in range(12):
        x, y, r = rng.randrange(width // 8), rng.randrange(height // 8), rng.randrange(3, 18)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=tuple(rng.randrange(30, 250) for _ in range(3)))
    image = small.filter(ImageFilter.GaussianBlur(3 / 8)).resize((width, height), Image.BICUBIC)
    grain = Image.frombytes("L", (width, height), rng.randbytes(width * height))
    image = Image.blend(image, Image.merge("RGB", (grain, grain, grain)), 0.06)
    out = io.BytesIO()
    if fmt == "png":
        image.quantize(64).save(out, "PNG")
    else:
        image.save(out, "JPEG", quality=82)
    return out.getvalue()


_JPEG_SOI, _JPEG_APP0, _JPEG_COM = b"\xff\xd8", b"\xff\xe0", b"\xff\xfe"
_PNG_IEND = struct.pack(">I4sI", 0, b"IEND", zlib.crc32(b"IEND"))


def with_comment(picture: bytes, fmt: str, comment: str) -> bytes:
    """The same picture with a text comment: a JPEG COM segment after SOI/JFIF, a PNG tEXt before IEND.

    Both are metadata every decoder skips, so the file still decodes to the same pixels."""
    text = comment.encode("latin-1")
    if fmt == "jpg":
        if picture[:2] != _JPEG_SOI:
            raise ValueError("not a JPEG: no SOI marker")
        at = 2
        if picture[2:4] == _JPEG_APP0:   # JFIF wants its APP0 right after SOI
            at = 4 + int.from_bytes(picture[4:6], "big")
        return picture[:at] + _JPEG_COM + (len(text) + 2).to_bytes(2, "big") + text + picture[at:]
    if not picture.endswith(_PNG_IEND):
        raise ValueError("not a PNG: it does not end with IEND")
    body = b"Comment\x00" + text
    chunk = struct.pack(">I4s", len(body), b"tEXt") + body + struct.pack(">I", zlib.crc32(b"tEXt" + body))
    return picture[:-len(_PNG_IEND)] + chunk + _PNG_IEND

