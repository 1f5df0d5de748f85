import cv2
import numpy as np
import pytest
import zxingcpp
from hypothesis import given
from hypothesis import strategies as st

from vision.labels import (
    LabelData,
    LabelRead,
    compare,
    decode_payload,
    encode_payload,
    read_label,
    render_label,
    render_label_pdf,
)
from vision.synthetic import label_photo

ITEM = LabelData("ITEM-0042", "REG/2026/17", "secret", "10 years from 2026-01-01")


@given(st.text(), st.text(), st.text(), st.text())
def test_payload_round_trips_any_text(item_id: str, register: str, level: str, period: str) -> None:
    data = LabelData(item_id, register, level, period)
    assert decode_payload(encode_payload(data)) == data


def test_foreign_text_is_not_a_payload() -> None:
    assert decode_payload("SN123456789") is None
    assert decode_payload("CSTD1;a;b") is None


@pytest.mark.parametrize("symbology", ["qr", "datamatrix"])
def test_rendered_label_reads_back(symbology: str) -> None:
    png = render_label(ITEM, symbology)  # type: ignore[arg-type]
    read = read_label(png)
    assert read.status == "decoded"
    assert read.data == ITEM
    assert compare(read, ITEM).outcome == "agrees"


def test_pdf_label_is_one_page_with_the_code_image() -> None:
    pdf = render_label_pdf(ITEM)
    assert pdf.startswith(b"%PDF-")
    assert pdf.count(b"/Type /Page\n") + pdf.count(b"/Type /Page ") >= 1
    assert b"/Subtype /Image" in pdf


@pytest.mark.parametrize("seed", range(12))
def test_photographed_labels_decode_across_distortions(seed: int) -> None:
    photo = label_photo(
        ITEM,
        seed=seed,
        perspective=0.05 + 0.02 * (seed % 5),
        blur_px=0.6 + 0.15 * (seed % 4),
        occlusion=0.5 if seed % 3 == 0 else 0.0,
        thumb=seed % 4 == 2,
        glare=60.0 + 30 * (seed % 4),
        symbology="datamatrix" if seed % 4 == 1 else "qr",
    )
    read = read_label(photo.image)
    assert read.status == "decoded", read.reason
    assert compare(read, ITEM).outcome == "agrees"


def test_opencv_second_opinion_agrees_on_a_clean_photo() -> None:
    read = read_label(label_photo(ITEM, seed=3).image, second_opinion=True)
    assert read.decoder == "zxing-cpp"
    assert read.second_opinion == "agrees"


def test_register_mismatch_names_the_fields() -> None:
    read = read_label(render_label(ITEM))
    register = LabelData(ITEM.item_id, ITEM.register_number, "top_secret", "30 years")
    check = compare(read, register)
    assert check.outcome == "disagrees"
    assert check.fields == ("level", "secrecy_period")


def test_two_different_custodian_codes_are_unreadable() -> None:
    first = cv2.imdecode(np.frombuffer(render_label(ITEM), np.uint8), cv2.IMREAD_GRAYSCALE)
    other = LabelData("ITEM-9999", ITEM.register_number, ITEM.level, ITEM.secrecy_period)
    second = cv2.imdecode(np.frombuffer(render_label(other), np.uint8), cv2.IMREAD_GRAYSCALE)
    read = read_label(np.vstack([first, second]))
    assert read.status == "unreadable"
    assert "2 different" in read.reason
    assert compare(read, ITEM).outcome == "unreadable"


def test_only_a_foreign_barcode_is_unreadable() -> None:
    code = zxingcpp.create_barcode("SN0012345", zxingcpp.BarcodeFormat.QRCode)
    image = np.array(code.to_image(scale=8))
    read = read_label(image)
    assert read.status == "unreadable"
    assert "no Custodian code among 1" in read.reason


@pytest.mark.parametrize(
    "image", [b"", b"not an image", np.zeros((480, 640), np.uint8), np.zeros((5, 5, 3), np.uint8)]
)
def test_bad_images_are_unreadable_not_errors(image: object) -> None:
    read = read_label(image)  # type: ignore[arg-type]
    assert read == LabelRead("unreadable", reason=read.reason)
    assert read.reason
