"""Media labels: render (PNG, PDF) with two 2-D codes, read every code back from photos, compare.

The label is designed to survive a thumb and a shaky hand: the same payload twice, as a QR code at
its highest error correction (H, about 30 % of the symbol recoverable) and as a DataMatrix (ECC 200),
at opposite ends of the label, each with a four-module quiet zone and modules about a millimetre
wide, so a fixed camera half a metre away (or a phone) resolves each module with 5 px or more.

`read_label` returns every Custodian code it decoded, with its position in the photo; which of them
belongs to the item in hand is decided in `compare`, by the item's identity: a neighbour's label is
never taken for the target's, and a covered target is "not_found", whatever else is in view.
zxing-cpp decodes first (fast, QR and DataMatrix), on the photo and then on a reduced copy (motion
and focus blur shrink with it); OpenCV's QRCodeDetectorAruco is the fallback and second opinion.
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
LABEL_PX = (1000, 560)  # 100 mm x 56 mm at 254 dpi (10 px per mm)
QUIET_MODULES = 4
QR_SIDE_PX = 540  # the QR code with its quiet zone: 54 mm, the label's full height
DM_SIDE_PX = 300  # the DataMatrix with its quiet zone: 30 mm
Decoder = Literal["zxing-cpp", "opencv"]


@dataclass(frozen=True)
class LabelData:
    item_id: str
    register_number: str
    level: str
    secrecy_period: str


@dataclass(frozen=True)
class CodeRead:
    """One Custodian code found in a photo: what it says, where it is (corners, pixels), who read it."""

    data: LabelData
    symbology: Symbology
    corners_px: tuple[tuple[float, float], ...]
    decoder: Decoder

    @property
    def centre_px(self) -> tuple[float, float]:
        xs, ys = zip(*self.corners_px, strict=True)
        return (sum(xs) / len(xs), sum(ys) / len(ys))


@dataclass(frozen=True)
class LabelRead:
    status: Literal["decoded", "unreadable"]
    codes: tuple[CodeRead, ...] = ()  # every Custodian code decoded, in the order found
    foreign: int = 0  # other barcodes in view (drive serials, vendor labels)
    reason: str = ""  # why unreadable, or what had to step in
    # OpenCV's verdict on zxing-cpp's reads when asked for; a contradiction makes the read 'unreadable'.
    second_opinion: Literal["agrees", "disagrees", "not_run", "no_read"] = "not_run"

    @property
    def data(self) -> LabelData | None:
        """The payload when every code in view says the same; None otherwise (see `compare`)."""
        found = {c.data for c in self.codes}
        return found.pop() if len(found) == 1 else None

    @property
    def decoder(self) -> str:
        return self.codes[0].decoder if self.codes else ""


@dataclass(frozen=True)
class LabelCheck:
    outcome: Literal["agrees", "disagrees", "not_found", "unreadable"]
    fields: tuple[str, ...] = ()
    reason: str = ""


def encode_payload(data: LabelData) -> str:
    values = (data.item_id, data.level, data.secrecy_period, data.register_number)
    # Only ';' (the separator) and '%' need escaping: fewer bytes, a smaller code, larger modules.
    return ";".join([PAYLOAD_PREFIX, *(quote(v, safe=" /-:._,()") for v in values)])


def decode_payload(text: str) -> LabelData | None:
    parts = text.strip().split(";")
    if len(parts) != 5 or parts[0] != PAYLOAD_PREFIX:
        return None
    item_id, level, period, register_number = (unquote(p) for p in parts[1:])
    return LabelData(item_id=item_id, register_number=register_number, level=level, secrecy_period=period)


def _code_image(data: LabelData, symbology: Symbology, side_px: int) -> Image.Image:
    """The code scaled to whole pixels per module inside `side_px`, on white with its quiet zone."""
    options: dict[str, object] = {"ec_level": "H"} if symbology == "qr" else {"force_square": True}
    code = zxingcpp.create_barcode(encode_payload(data), _FORMATS[symbology], **options)
    modules = np.array(code.to_image(scale=1, add_quiet_zones=False))
    scale = max(1, side_px // (modules.shape[1] + 2 * QUIET_MODULES))
    symbol = np.kron(modules, np.ones((scale, scale), np.uint8))
    canvas = np.full((side_px, side_px), 255, np.uint8)
    top = (side_px - symbol.shape[0]) // 2
    left = (side_px - symbol.shape[1]) // 2
    canvas[top : top + symbol.shape[0], left : left + symbol.shape[1]] = symbol
    return Image.fromarray(canvas)


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


def _label_image(data: LabelData, primary: Symbology) -> Image.Image:
    """Level and period large in the middle, ids small; the QR code on the left, the DataMatrix at
    the bottom right (`primary` is accepted for compatibility: both codes are always printed)."""
    del primary
    width, height = LABEL_PX
    label = Image.new("L", LABEL_PX, 255)
    draw = ImageDraw.Draw(label)
    draw.rectangle((2, 2, width - 3, height - 3), outline=0, width=3)
    label.paste(_code_image(data, "qr", QR_SIDE_PX), (10, (height - QR_SIDE_PX) // 2))
    label.paste(_code_image(data, "datamatrix", DM_SIDE_PX), (width - DM_SIDE_PX - 10, height - DM_SIDE_PX - 10))
    left = QR_SIDE_PX + 20
    text_width = width - left - 14
    level = data.level.replace("_", " ").upper()
    draw.text((left, 18), level, font=_fitted_font(draw, level, text_width, 64), fill=0)
    draw.line((left, 94, left + text_width, 94), fill=0, width=3)
    period_font = ImageFont.load_default(size=22)
    period_lines = _wrapped(draw, data.secrecy_period, text_width, period_font)
    if len(period_lines) > 3:  # long conditions shrink rather than run into the codes
        period_font = ImageFont.load_default(size=16)
        period_lines = _wrapped(draw, data.secrecy_period, text_width, period_font)[:4]
    for row, line in enumerate(period_lines):
        draw.text((left, 102 + row * (period_font.size + 3)), line, font=period_font, fill=0)
    for top, text in ((186, f"Item {data.item_id}"), (214, f"Reg. {data.register_number}")):
        draw.text((left, top), text, font=_fitted_font(draw, text, text_width, 22), fill=0)
    return label


def render_label(data: LabelData, symbology: Symbology = "qr") -> bytes:
    """PNG bytes of a printable label: level and period large, ids small, the code on the right."""
    buffer = io.BytesIO()
    _label_image(data, symbology).save(buffer, format="PNG")
    return buffer.getvalue()


def render_label_pdf(data: LabelData, symbology: Symbology = "qr", size_mm: tuple[float, float] = (100, 56)) -> bytes:
    """A one-page PDF of the label at its physical size, both codes embedded as lossless images."""
    del symbology  # both codes are always printed
    pdf = FPDF(unit="mm", format=size_mm)
    pdf.set_auto_page_break(False)
    pdf.set_margins(0, 0, 0)
    pdf.add_page()
    w, h = size_mm
    pdf.rect(0.5, 0.5, w - 1, h - 1)
    qr_side = h - 12
    dm_side = 0.54 * h
    pdf.image(_code_image(data, "qr", 880), x=1, y=(h - qr_side) / 2, w=qr_side)
    pdf.image(_code_image(data, "datamatrix", 600), x=w - dm_side - 1, y=h - dm_side - 1, w=dm_side)
    left = qr_side + 3
    text_width = w - left - 3
    pdf.set_font("Helvetica", "B", 20)
    pdf.set_xy(left, 3)
    pdf.cell(text_width, 9, _latin1(data.level.replace("_", " ").upper()))
    pdf.set_font("Helvetica", "", 8)
    pdf.set_xy(left, 13)
    pdf.multi_cell(text_width, 3.6, _latin1(data.secrecy_period))
    pdf.set_font("Helvetica", "", 7)
    pdf.set_xy(left, 30)
    pdf.multi_cell(w - dm_side - left - 2, 3.2, _latin1(f"Item {data.item_id}"))
    pdf.set_xy(left, 38)
    pdf.multi_cell(w - dm_side - left - 2, 3.2, _latin1(f"Reg. {data.register_number}"))
    return bytes(pdf.output())


def _latin1(text: str) -> str:
    # Core PDF fonts carry Latin-1 only; the code itself holds the exact text.
    return text.encode("latin-1", "replace").decode("latin-1")


_OUR_FORMATS = (zxingcpp.BarcodeFormat.QRCode, zxingcpp.BarcodeFormat.DataMatrix)
_SYMBOLOGY = {zxingcpp.BarcodeFormat.QRCode: "qr", zxingcpp.BarcodeFormat.DataMatrix: "datamatrix"}


def _corners(position: zxingcpp.Position, scale: float) -> tuple[tuple[float, float], ...]:
    points = (position.top_left, position.top_right, position.bottom_right, position.bottom_left)
    return tuple((p.x * scale, p.y * scale) for p in points)


def _zxing(
    gray: np.ndarray, scale: float, binarizer: zxingcpp.Binarizer = zxingcpp.Binarizer.LocalAverage
) -> tuple[list[CodeRead], int]:
    found, foreign = [], 0
    for result in zxingcpp.read_barcodes(gray, formats=_OUR_FORMATS, try_invert=False, binarizer=binarizer):
        data = decode_payload(result.text) if result.valid else None
        if data is None:
            foreign += 1
            continue
        symbology = _SYMBOLOGY.get(result.format, "qr")
        found.append(CodeRead(data, symbology, _corners(result.position, scale), "zxing-cpp"))  # type: ignore[arg-type]
    return found, foreign


def _opencv(gray: np.ndarray) -> tuple[list[CodeRead], int]:
    detector = cv2.QRCodeDetectorAruco()
    ok, texts, points, _ = detector.detectAndDecodeMulti(gray)
    if not ok:
        return [], 0
    found, foreign = [], 0
    for text, quad in zip(texts, points if points is not None else [], strict=False):
        data = decode_payload(text) if text else None
        if data is None:
            foreign += bool(text)
            continue
        corners = tuple((float(x), float(y)) for x, y in np.asarray(quad).reshape(-1, 2))
        found.append(CodeRead(data, "qr", corners, "opencv"))
    return found, foreign


def _merge(codes: list[CodeRead], more: list[CodeRead]) -> list[CodeRead]:
    """Codes from another pass, less those already read at the same place."""
    out = list(codes)
    for code in more:
        cx, cy = code.centre_px
        if not any(abs(cx - c.centre_px[0]) < 20 and abs(cy - c.centre_px[1]) < 20 for c in out):
            out.append(code)
    return out


def _contradiction(codes: list[CodeRead]) -> bool:
    """Two reads at one place that say different things: one of the decoders is wrong."""
    for i, a in enumerate(codes):
        for b in codes[i + 1 :]:
            if a.data != b.data and np.hypot(a.centre_px[0] - b.centre_px[0], a.centre_px[1] - b.centre_px[1]) < 20:
                return True
    return False


def read_label(image: ImageInput, second_opinion: bool = False) -> LabelRead:
    """Every Custodian code in the photo, with where it is; 'unreadable' when there is none."""
    loaded = load_gray(image)
    if loaded.gray is None:
        return LabelRead("unreadable", reason=loaded.problem)
    gray = loaded.gray
    try:
        codes, foreign = _zxing(gray, 1.0)
        reason = ""
        small = cv2.resize(gray, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
        # Blur (motion, focus) shrinks with the image, and a smeared code binarises better against
        # one threshold than against its own blurred neighbourhood: the harder passes, in turn.
        for image_, scale, binarizer, how in (
            (small, 2.0, zxingcpp.Binarizer.LocalAverage, "a reduced copy"),
            (gray, 1.0, zxingcpp.Binarizer.FixedThreshold, "one threshold"),
            (small, 2.0, zxingcpp.Binarizer.FixedThreshold, "a reduced copy at one threshold"),
        ):
            if codes:
                break
            codes, more = _zxing(image_, scale, binarizer)
            foreign = max(foreign, more)
            reason = f"read on {how}" if codes else ""
        opinion: Literal["agrees", "disagrees", "not_run", "no_read"] = "not_run"
        if not codes or second_opinion:
            other, foreign_cv = _opencv(gray)
            foreign = max(foreign, foreign_cv)
            if codes:
                seen = {c.data for c in codes}
                opinion = "no_read" if not other else ("agrees" if {c.data for c in other} <= seen else "disagrees")
                if _contradiction(codes + other):
                    why = "zxing-cpp and OpenCV read different labels"
                    return LabelRead("unreadable", reason=why, second_opinion="disagrees")
            if other and not codes:
                reason = "read by OpenCV after zxing-cpp found nothing"
            codes = _merge(codes, other)
    except Exception as error:  # decoder faults on odd input are an unreadable label, not a crash
        return LabelRead("unreadable", reason=f"decoder failed ({error})")
    if not codes:
        why = f"no Custodian code among {foreign} code(s) read" if foreign else "no code found"
        return LabelRead("unreadable", foreign=foreign, reason=why)
    return LabelRead("decoded", tuple(codes), foreign, reason, opinion)


def compare(label_read: LabelRead, expected: LabelData) -> LabelCheck:
    """Does the label of the expected item agree with the register? Names every field that differs.

    Only codes carrying the expected item's identity count: another item's label in view is not
    this item's label ("not_found"), and two codes of this item that disagree are "unreadable"."""
    if label_read.status != "decoded":
        return LabelCheck("unreadable", reason=label_read.reason or "label not decoded")
    own = {c.data for c in label_read.codes if c.data.item_id == expected.item_id}
    if not own:
        others = sorted({c.data.item_id for c in label_read.codes})
        return LabelCheck("not_found", reason=f"the item's label is not in view (seen: {', '.join(others)})")
    if len(own) > 1:
        return LabelCheck("unreadable", reason=f"{len(own)} different codes for item {expected.item_id} in view")
    data = own.pop()
    differing = tuple(f.name for f in fields(LabelData) if getattr(data, f.name) != getattr(expected, f.name))
    if differing:
        return LabelCheck("disagrees", differing, "label differs from the register in " + ", ".join(differing))
    return LabelCheck("agrees")
