import cv2
import numpy as np
import pytest
import zxingcpp
from hypothesis import given
from hypothesis import strategies as st

from tests.vision import independent_corpus as corpus
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


def test_every_code_is_returned_with_its_place_and_the_target_is_picked_by_identity() -> None:
    first = cv2.imdecode(np.frombuffer(render_label(ITEM), np.uint8), cv2.IMREAD_GRAYSCALE)
    other = LabelData("ITEM-9999", ITEM.register_number, ITEM.level, ITEM.secrecy_period)
    second = cv2.imdecode(np.frombuffer(render_label(other), np.uint8), cv2.IMREAD_GRAYSCALE)
    read = read_label(np.vstack([first, second]))
    assert read.status == "decoded"
    assert {c.data.item_id for c in read.codes} == {ITEM.item_id, other.item_id}
    assert read.data is None  # two labels: which one is meant is for compare to say
    top = [c for c in read.codes if c.data == ITEM]
    assert top and all(c.centre_px[1] < first.shape[0] for c in top)
    assert compare(read, ITEM).outcome == "agrees"
    assert compare(read, other).outcome == "agrees"


def test_both_codes_are_printed_and_each_reads_alone() -> None:
    label = cv2.imdecode(np.frombuffer(render_label(ITEM), np.uint8), cv2.IMREAD_GRAYSCALE)
    read = read_label(label)
    assert sorted(c.symbology for c in read.codes) == ["datamatrix", "qr"]
    for code in read.codes:
        hidden = label.copy()
        xs, ys = zip(*code.corners_px, strict=True)
        hidden[int(min(ys)) - 5 : int(max(ys)) + 5, int(min(xs)) - 5 : int(max(xs)) + 5] = 90  # a thumb
        alone = read_label(hidden)
        assert [c.symbology for c in alone.codes] == [s for s in ("qr", "datamatrix") if s != code.symbology]
        assert compare(alone, ITEM).outcome == "agrees"


def test_a_covered_target_beside_a_neighbour_is_not_found_never_the_neighbour() -> None:
    neighbour = LabelData("ITEM-0043", "REG/2026/18", ITEM.level, ITEM.secrecy_period)
    picture = cv2.imdecode(np.frombuffer(render_label(neighbour), np.uint8), cv2.IMREAD_GRAYSCALE)
    read = read_label(picture)  # all the camera sees is the neighbour's label
    assert read.status == "decoded"
    check = compare(read, ITEM)
    assert check.outcome == "not_found"
    assert "ITEM-0043" in check.reason


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
    assert read == LabelRead("unreadable", foreign=read.foreign, reason=read.reason)
    assert read.reason


NEIGHBOUR = LabelData("ITEM-0043", "REG/2026/18", "secret", "10 years from 2026-01-01")


def _picture(data: LabelData) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(render_label(data), np.uint8), cv2.IMREAD_GRAYSCALE)


@pytest.mark.parametrize("degradation", [*corpus.DEGRADATIONS, "datamatrix_only"])
def test_independent_photos_decode_under_every_degradation(degradation: str) -> None:
    label = _picture(ITEM)
    if degradation == "datamatrix_only":
        label[:, :560] = 255  # the QR code torn off: the DataMatrix alone
    agreed = 0
    for seed in range(4):
        shot = corpus.label_shot(label, "clean" if degradation == "datamatrix_only" else degradation, seed)
        check = compare(read_label(shot.image), ITEM)
        assert check.outcome != "disagrees"  # never a wrong decode
        agreed += check.outcome == "agrees"
    assert agreed >= 3


@pytest.mark.parametrize("seed", range(4))
def test_independent_photo_of_a_covered_target_and_its_neighbour(seed: int) -> None:
    shot = corpus.label_shot(_picture(ITEM), "target_covered", seed, neighbour=_picture(NEIGHBOUR))
    read = read_label(shot.image)
    assert compare(read, ITEM).outcome in ("not_found", "unreadable")
    assert compare(read, NEIGHBOUR).outcome in ("agrees", "unreadable")
