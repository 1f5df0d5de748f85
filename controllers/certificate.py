"""Certificate of destruction as a PDF: the NIST SP 800-88 sample certificate's fields plus Custodian's
evidence (device cycle, measured parameters, particle analysis, witnesses, journal anchor).

The certificate names the journal head it was issued against (sequence and hash); the journal entry that
marks the item destroyed then carries the certificate's SHA-256, so each vouches for the other.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from fpdf import FPDF


@dataclass(frozen=True, slots=True)
class CertificateData:
    certificate_id: str
    organisation: str
    location: str
    # the person performing the destruction
    operator_name: str
    operator_title: str
    # the medium
    item_register: str
    item_title: str
    media_type: str
    classification: str
    manufacturer: str
    model: str
    serial_number: str
    epc: str
    source: str
    # the sanitization
    method_type: str  # Clear | Purge | Destroy
    method: str
    tool: str  # device name and profile
    verification: str
    post_classification: str
    destination_of_remains: str
    # Custodian's additions
    cycle_counter_before: str
    cycle_counter_after: str
    measured: tuple[tuple[str, str], ...]
    particle_result: str
    evidence_image_sha256: str
    witness_name: str
    witness_title: str
    completed_at: str
    journal_anchor_seq: int
    journal_anchor_hash: str


def _row(pdf: FPDF, label: str, value: str) -> None:
    pdf.set_font("Helvetica", "B", 9)
    pdf.cell(60, 6, label)
    pdf.set_font("Helvetica", "", 9)
    pdf.multi_cell(0, 6, value or "-", new_x="LMARGIN", new_y="NEXT")


def _section(pdf: FPDF, title: str) -> None:
    pdf.ln(2)
    pdf.set_font("Helvetica", "B", 11)
    pdf.cell(0, 8, title, new_x="LMARGIN", new_y="NEXT")


def _latin(text: str) -> str:
    """The core PDF fonts are Latin-1; anything else is shown as '?', never dropped silently."""
    return text.encode("latin-1", "replace").decode("latin-1")


def render(data: CertificateData) -> bytes:
    pdf = FPDF(format="A4")
    # Same data, same bytes: the creation date is the completion time, so a certificate can be re-verified.
    pdf.set_creation_date(dt.datetime.fromisoformat(data.completed_at))
    pdf.set_title(_latin(f"Certificate of destruction {data.certificate_id}"))
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 10, "Certificate of Sanitization and Destruction", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 9)
    pdf.cell(0, 6, _latin(f"Certificate {data.certificate_id} - {data.organisation}"), new_x="LMARGIN", new_y="NEXT")
    rows: list[tuple[str, list[tuple[str, str]]]] = [
        (
            "Person performing sanitization",
            [
                ("Name", data.operator_name),
                ("Title", data.operator_title),
                ("Organisation", data.organisation),
                ("Location", data.location),
            ],
        ),
        (
            "Media information",
            [
                ("Register / copy", data.item_register),
                ("Title", data.item_title),
                ("Media type", data.media_type),
                ("Classification", data.classification),
                ("Manufacturer", data.manufacturer),
                ("Model", data.model),
                ("Serial number", data.serial_number),
                ("RFID EPC", data.epc),
                ("Source", data.source),
            ],
        ),
        (
            "Sanitization details",
            [
                ("Method type", data.method_type),
                ("Method used", data.method),
                ("Tool", data.tool),
                ("Verification method", data.verification),
                ("Post-sanitization classification", data.post_classification),
                ("Destination of remains", data.destination_of_remains),
            ],
        ),
        (
            "Device cycle and measurements",
            [
                ("Cycle counter before", data.cycle_counter_before),
                ("Cycle counter after", data.cycle_counter_after),
                *data.measured,
                ("Particle analysis", data.particle_result),
                ("Evidence image SHA-256", data.evidence_image_sha256),
            ],
        ),
        ("Validation (second person)", [("Witness", data.witness_name), ("Title", data.witness_title)]),
        (
            "Record",
            [
                ("Completed", data.completed_at),
                ("Journal anchor", f"sequence {data.journal_anchor_seq}, head {data.journal_anchor_hash}"),
            ],
        ),
    ]
    for title, fields in rows:
        _section(pdf, title)
        for label, value in fields:
            _row(pdf, _latin(label), _latin(value))
    pdf.ln(6)
    pdf.set_font("Helvetica", "", 9)
    pdf.cell(95, 12, "Operator signature: ____________________")
    pdf.cell(95, 12, "Witness signature: ____________________", new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
