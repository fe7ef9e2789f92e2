"""Browser tools for the page tests: Debian's Chromium, a fake camera, passkeys, screenshots, QR reading.

* Chromium is ``/usr/bin/chromium`` driven by Playwright (never ``playwright install``); Playwright gives each
  launch a fresh temporary user-data dir.
* The camera is Chromium's fake capture device reading a Y4M file that the test writes just before a page
  starts the camera (Chromium opens the file when capture starts), so the page's real scanning code (jsQR on
  video frames) reads exactly the QR image another page showed.
* Passkeys come from Chromium's DevTools virtual authenticator (CTAP2, internal transport, resident keys, user
  verification on or off).
"""

from __future__ import annotations

import base64
import io
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from PIL import Image

if TYPE_CHECKING:
    from playwright.sync_api import CDPSession, Page

CHROMIUM: Final = "/usr/bin/chromium"
ARTIFACTS: Final = Path(__file__).resolve().parents[1] / "artifacts" / "pages"
BASE_ARGS: Final = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
DESKTOP: Final[dict[str, Any]] = {"viewport": {"width": 1280, "height": 900}}
KIOSK: Final[dict[str, Any]] = {"viewport": {"width": 1080, "height": 1600}, "has_touch": True}
PHONE: Final[dict[str, Any]] = {
    "viewport": {"width": 360, "height": 780},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
}


def camera_args(camera_file: Path) -> list[str]:
    return [
        *BASE_ARGS,
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={camera_file}",
    ]


def show_to_camera(camera_file: Path, png: bytes, *, frames: int = 4) -> None:
    """Write a Y4M clip (4:2:0, 1280x960) of ``png`` centred on white: what the fake camera sees next."""
    width, height = 1280, 960
    frame = Image.new("L", (width, height), 255)
    image = Image.open(io.BytesIO(png)).convert("L")
    if max(image.size) > 900:
        image.thumbnail((900, 900), Image.Resampling.BOX)
    else:
        scale = 900 // max(image.size)
        image = image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST)
    frame.paste(image, ((width - image.width) // 2, (height - image.height) // 2))
    luma, chroma = frame.tobytes(), bytes([128]) * (width * height // 4)
    tmp = camera_file.with_suffix(".tmp")
    with tmp.open("wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            out.write(b"FRAME\n" + luma + chroma + chroma)
    os.replace(tmp, camera_file)


def data_url_bytes(url: str) -> bytes:
    head, _, data = url.partition(",")
    assert head.startswith("data:image/png;base64"), head[:40]
    return base64.b64decode(data)


def read_qr(png: bytes) -> str:
    """Decode a QR image with ZXing (a second, independent decoder: the pages use jsQR)."""
    import zxingcpp

    # QR codes only: a large QR's modules can also read as a one-dimensional code (an EAN-13, say)
    qr_only = zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)), formats=qr_only)
    assert found, "no QR code in the image"
    return str(found[0].text)


def img_png(page: Page, selector: str) -> bytes:
    page.wait_for_function(
        "s => { const i = document.querySelector(s); return i && (i.getAttribute('src') || '').startsWith('data:'); }",
        arg=selector,
    )
    return data_url_bytes(str(page.locator(selector).get_attribute("src")))


def authenticator(page: Page, *, verified: bool = True) -> tuple[CDPSession, str]:
    """A platform passkey authenticator for this page (DevTools WebAuthn domain)."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable", {"enableUI": False})
    options = {
        "protocol": "ctap2",
        "transport": "internal",
        "hasResidentKey": True,
        "hasUserVerification": True,
        "isUserVerified": verified,
        "automaticPresenceSimulation": True,
    }
    added = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": options})
    return cdp, str(added["authenticatorId"])


def passkeys(cdp: CDPSession, authenticator_id: str) -> list[dict[str, Any]]:
    found = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator_id})
    return list(found["credentials"])


def shoot(page: Page, name: str) -> Path:
    """Save a full-page screenshot as a test artefact (``tests/artifacts/pages/<name>.png``, gitignored)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
