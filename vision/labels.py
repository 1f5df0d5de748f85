"""Media labels: render (PNG, PDF) with a 2-D code, read them back from photos, compare with the register.

zxing-cpp decodes first (fast, QR and DataMatrix); OpenCV's QRCodeDetectorAruco is the second opinion
(QR only). A photo often shows other barcodes too (drive serials): only codes carrying Custodian's
payload prefix count, and two different Custodian codes in one photo is 'unreadable', never a guess.
"""

import io
from dataclasses import dataclass, fields
from typing import Literal
from urllib.parse import quote, unquote

import cv2
import numpy as np
import zxingcpp
from fpdf import FPDF
from PIL import Image, ImageDraw, ImageFont

from vision.images import ImageInput, load_gray

PAYLOAD_PREFIX = "CSTD1"
Symbology = Literal["qr", "datamatrix"]
_FORMATS = {"qr": zxingcpp.BarcodeFormat.QRCode, "datamatrix": zxingcpp.BarcodeFormat.DataMatrix}
LABEL_PX = (1000, 560)  # 100 mm x 56 mm at 254 dpi


@dataclass(frozen=True)
class LabelData:
    item_id: str
    register_number: str
    level: str
    secrecy_period: str


@dataclass(frozen=True)
class LabelRead:
    status: Literal["decoded", "unreadable"]
    data: LabelData | None = None  # set exactly when decoded
    decoder: Literal["zxing-cpp", "opencv", ""] = ""  # which decoder produced `data`
    reason: str = ""  # why unreadable (or what the first decoder said when OpenCV had to step in)
    # OpenCV's verdict on a zxing-cpp read when asked for; a disagreement makes the read 'unreadable'.
    second_opinion: Literal["agrees", "disagrees", "not_run", "no_read"] = "not_run"


@dataclass(frozen=True)
class LabelCheck:
    outcome: Literal["agrees", "disagrees", "unreadable"]
    fields: tuple[str, ...] = ()
    reason: str = ""


def encode_payload(data: LabelData) -> str:
    values = (data.item_id, data.level, data.secrecy_period, data.register_number)
    return ";".join([PAYLOAD_PREFIX, *(quote(v, safe="") for v in values)])


def decode_payload(text: str) -> LabelData | None:
    parts = text.strip().split(";")
    if len(parts) != 5 or parts[0] != PAYLOAD_PREFIX:
        return None
    item_id, level, period, register_number = (unquote(p) for p in parts[1:])
    return LabelData(item_id=item_id, register_number=register_number, level=level, secrecy_period=period)


def _code_image(data: LabelData, symbology: Symbology, scale: int) -> Image.Image:
    options = {"ec_level": "Q"} if symbology == "qr" else {}
    code = zxingcpp.create_barcode(encode_payload(data), _FORMATS[symbology], **options)
    return Image.fromarray(np.array(code.to_image(scale=scale)))


def _fitted_font(draw: ImageDraw.ImageDraw, text: str, width: int, size: int) -> ImageFont.FreeTypeFont:
    """The largest font up to `size` at which `text` fits in `width` pixels."""
    while True:
        font = ImageFont.load_default(size=size)
        if size <= 12 or draw.textlength(text, font=font) <= width:
            return font  # type: ignore[return-value]
        size -= 4


def _wrapped(draw: ImageDraw.ImageDraw, text: str, width: int, font: ImageFont.FreeTypeFont) -> list[str]:
    lines: list[str] = []
    for word in text.split():
        if lines and draw.textlength(f"{lines[-1]} {word}", font=font) <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines


def _label_image(data: LabelData, symbology: Symbology) -> Image.Image:
    width, height = LABEL_PX
    label = Image.new("L", LABEL_PX, 255)
    draw = ImageDraw.Draw(label)
    draw.rectangle((4, 4, width - 5, height - 5), outline=0, width=6)
    code = _code_image(data, symbology, scale=1)
    scale = max(1, min((height - 80) // code.height, (width // 2) // code.width))
    code = code.resize((code.width * scale, code.height * scale), Image.Resampling.NEAREST)
    label.paste(code, (width - code.width - 30, (height - code.height) // 2))
    text_width = width - code.width - 90
    level = data.level.replace("_", " ").upper()
    draw.text((30, 30), level, font=_fitted_font(draw, level, text_width, 78), fill=0)
    period_font = ImageFont.load_default(size=34)
    period_lines = _wrapped(draw, data.secrecy_period, text_width, period_font)
    if len(period_lines) > 4:  # long conditions shrink rather than run into the ids
        period_font = ImageFont.load_default(size=22)
        period_lines = _wrapped(draw, data.secrecy_period, text_width, period_font)[:7]
    line_height = period_font.size + 6
    for row, line in enumerate(period_lines):
        draw.text((30, 130 + row * line_height), line, font=period_font, fill=0)
    for top, text in ((420, f"Item {data.item_id}"), (470, f"Reg. {data.register_number}")):
        draw.text((30, top), text, font=_fitted_font(draw, text, text_width, 30), fill=0)
    draw.line((30, 120, 30 + text_width, 120), fill=0, width=3)
    return label


def render_label(data: LabelData, symbology: Symbology = "qr") -> bytes:
    """PNG bytes of a printable label: level and period large, ids small, the code on the right."""
    buffer = io.BytesIO()
    _label_image(data, symbology).save(buffer, format="PNG")
    return buffer.getvalue()


def render_label_pdf(
    data: LabelData, symbology: Symbology = "qr", size_mm: tuple[float, float] = (100, 56)
) -> bytes:
    """A one-page PDF of the label at its physical size, the code embedded as a lossless image."""
    pdf = FPDF(unit="mm", format=size_mm)
    pdf.set_auto_page_break(False)
    pdf.set_margins(0, 0, 0)
    pdf.add_page()
    w, h = size_mm
    pdf.rect(1, 1, w - 2, h - 2)
    code_side = h - 12
    pdf.image(_code_image(data, symbology, scale=8), x=w - code_side - 4, y=6, w=code_side)
    text_width = w - code_side - 10
    pdf.set_font("Helvetica", "B", 22)
    pdf.set_xy(4, 5)
    pdf.cell(text_width, 10, _latin1(data.level.replace("_", " ").upper()))
    pdf.set_font("Helvetica", "", 10)
    pdf.set_xy(4, 17)
    pdf.multi_cell(text_width, 5, _latin1(data.secrecy_period))
    pdf.set_xy(4, h - 16)
    pdf.cell(text_width, 5, _latin1(f"Item {data.item_id}"))
    pdf.set_xy(4, h - 10)
    pdf.cell(text_width, 5, _latin1(f"Reg. {data.register_number}"))
    return bytes(pdf.output())


def _latin1(text: str) -> str:
    # Core PDF fonts carry Latin-1 only; the code itself holds the exact text.
    return text.encode("latin-1", "replace").decode("latin-1")


_OUR_FORMATS = (zxingcpp.BarcodeFormat.QRCode, zxingcpp.BarcodeFormat.DataMatrix)


def _zxing_texts(gray: np.ndarray) -> list[str]:
    # Fast pass for our own symbologies first (matrix codes need no rotated search); the full search
    # (every format, inverted print) only when that finds nothing.
    fast = zxingcpp.read_barcodes(gray, formats=_OUR_FORMATS, try_rotate=False, try_invert=False)
    found = [r.text for r in fast if r.valid]
    if any(decode_payload(t) for t in found):
        return found
    return [r.text for r in zxingcpp.read_barcodes(gray) if r.valid]


def _opencv_texts(gray: np.ndarray) -> list[str]:
    detector = cv2.QRCodeDetectorAruco()
    ok, texts, _, _ = detector.detectAndDecodeMulti(gray)
    return [t for t in texts if t] if ok else []


def _pick(texts: list[str]) -> LabelData | str:
    """Our payload among all codes read, or why none can be trusted."""
    found = {d for d in (decode_payload(t) for t in texts) if d is not None}
    if len(found) == 1:
        return found.pop()
    if found:
        return f"{len(found)} different Custodian codes in view"
    return f"no Custodian code among {len(texts)} code(s) read" if texts else "no code found"


def read_label(image: ImageInput, second_opinion: bool = False) -> LabelRead:
    """Decode a label photo with zxing-cpp, falling back to OpenCV; optionally ask OpenCV as well."""
    loaded = load_gray(image)
    if loaded.gray is None:
        return LabelRead("unreadable", reason=loaded.problem)
    gray = loaded.gray
    try:
        first = _pick(_zxing_texts(gray))
        if isinstance(first, LabelData) and not second_opinion:
            return LabelRead("decoded", first, "zxing-cpp")
        other = _pick(_opencv_texts(gray))
    except Exception as error:  # decoder faults on odd input are an unreadable label, not a crash
        return LabelRead("unreadable", reason=f"decoder failed ({error})")
    if isinstance(first, LabelData):
        opinion = "no_read" if isinstance(other, str) else ("agrees" if other == first else "disagrees")
        if opinion == "disagrees":
            return LabelRead(
                "unreadable", reason="zxing-cpp and OpenCV read different labels", second_opinion="disagrees"
            )
        return LabelRead("decoded", first, "zxing-cpp", second_opinion=opinion)
    if isinstance(other, LabelData):
        return LabelRead("decoded", other, "opencv", reason=f"zxing-cpp: {first}")
    return LabelRead("unreadable", reason=first)


def compare(label_read: LabelRead, expected: LabelData) -> LabelCheck:
    """Does the label agree with the register? Names every field that differs."""
    if label_read.status != "decoded" or label_read.data is None:
        return LabelCheck("unreadable", reason=label_read.reason or "label not decoded")
    differing = tuple(
        f.name for f in fields(LabelData) if getattr(label_read.data, f.name) != getattr(expected, f.name)
    )
    if differing:
        return LabelCheck(
            "disagrees", differing, "label differs from the register in " + ", ".join(differing)
        )
    return LabelCheck("agrees")
