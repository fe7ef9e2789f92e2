"""QR codes (PNG and SVG) with the ``qrcode`` library; error correction M unless told otherwise."""

from __future__ import annotations

import base64
import io

import qrcode
import qrcode.constants
import qrcode.image.svg

_LEVELS = {
    "L": qrcode.constants.ERROR_CORRECT_L,
    "M": qrcode.constants.ERROR_CORRECT_M,
    "Q": qrcode.constants.ERROR_CORRECT_Q,
    "H": qrcode.constants.ERROR_CORRECT_H,
}


def _make(data: str, level: str) -> qrcode.QRCode:  # type: ignore[type-arg,unused-ignore]
    qr = qrcode.QRCode(error_correction=_LEVELS[level], box_size=8, border=4)
    qr.add_data(data)
    qr.make(fit=True)
    return qr


def qr_version(data: str, level: str = "M") -> int:
    """The smallest QR version (1-40) that holds ``data`` at ``level``."""
    return int(_make(data, level).version)


def qr_png(data: str, level: str = "M") -> bytes:
    buf = io.BytesIO()
    _make(data, level).make_image().save(buf)
    return buf.getvalue()


def qr_svg(data: str, level: str = "M") -> str:
    image = _make(data, level).make_image(image_factory=qrcode.image.svg.SvgPathImage)
    out: bytes = image.to_string()
    return out.decode()


def png_data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def render(data: str, level: str = "M") -> tuple[int, bytes, str]:
    """Encode once and draw both images: ``(version, png, svg)`` (encoding is the slow part)."""
    qr = _make(data, level)
    buf = io.BytesIO()
    qr.make_image().save(buf)
    svg: bytes = qr.make_image(image_factory=qrcode.image.svg.SvgPathImage).to_string()
    return int(qr.version), buf.getvalue(), svg.decode()
