"""The certificate of destruction: reproducible bytes, so the hash in the journal can be checked again."""

from __future__ import annotations

from dataclasses import replace

from controllers import certificate


def test_certificate_pdf_carries_the_fields() -> None:
    data = certificate.CertificateData(
        certificate_id="D-1",
        organisation="Example Institute",
        location="Destruction centre",
        operator_name="Otto Operator",
        operator_title="Operator",
        item_register="S-2026-002/1",
        item_title="Archive backup disk 7",
        media_type="hdd",
        classification="secret",
        manufacturer="Seagate",
        model="ST4000NM0035",
        serial_number="ZC1A2B3C",
        epc="E28011700000020000000005",
        source="archive",
        method_type="Purge + Destroy",
        method="degauss then shred",
        tool="degausser-1, shredder-1",
        verification="cycle report, particle analysis, two witnesses",
        post_classification="unclassified",
        destination_of_remains="incineration",
        cycle_counter_before="41",
        cycle_counter_after="42",
        measured=(("Peak field", "9800 Oe"),),
        particle_result="pass, max 7.9 mm2 (H-6)",
        evidence_image_sha256="cd" * 32,
        witness_name="Wendy Witness",
        witness_title="Witness",
        completed_at="2026-11-23T10:00:00+00:00",
        journal_anchor_seq=57,
        journal_anchor_hash="ef" * 32,
    )
    pdf = certificate.render(data)
    assert pdf.startswith(b"%PDF")
    assert certificate.render(data) == pdf  # reproducible: the hash in the journal can be re-checked
    assert certificate.render(replace(data, serial_number="OTHER")) != pdf
