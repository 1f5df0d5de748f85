"""The destruction station: intake read -> approved request -> device cycle(s) -> particle analysis -> two
persons -> destroyed, tag retired, certificate; any failure leaves the item "destruction failed" in the
operator's custody, with the reason.

What each kind of medium needs is data (`POLICY`), not code: the device sequence, the particle level the
camera must confirm, and for magnetic media the coercivity the degausser's field must exceed (2x margin).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from controllers import certificate
from controllers.bus import LiveBus, LiveKind, Severity
from controllers.control import DestructionOutcome
from firmware_bridge.errors import BridgeError
from firmware_bridge.modbus.driver import CycleReport
from registry import db, journal
from registry.errors import RegistryError
from registry.levels import Level
from registry.models import Item
from registry.services import destruction, lookup
from vision.particles import ParticleReport


@dataclass(frozen=True, slots=True)
class MediumPolicy:
    steps: tuple[str, ...]  # "degauss", "shred"
    particle_level: str  # vision level the output must meet
    max_cut_mm: float  # the shredder's cutting size may not exceed this
    coercivity_oe: float | None = None  # magnetic media: the degausser needs at least 2x this


# Figures from destruction.md (NSA/CSS practice, DIN 66399 levels); the coercivity values are typical.
POLICY: dict[str, MediumPolicy] = {
    "paper": MediumPolicy(("shred",), "P-7", 1.0),
    "optical": MediumPolicy(("shred",), "O-6", 2.0),
    "hdd": MediumPolicy(("degauss", "shred"), "H-6", 2.0, coercivity_oe=5000.0),
    "tape": MediumPolicy(("degauss", "shred"), "T-6", 2.0, coercivity_oe=2800.0),
    "ssd": MediumPolicy(("shred",), "E-5", 2.0),
    "usb": MediumPolicy(("shred",), "E-5", 2.0),
    "laptop": MediumPolicy(("shred",), "E-5", 2.0),
    "equipment": MediumPolicy(("shred",), "E-4", 2.0),
    "other": MediumPolicy(("shred",), "E-4", 2.0),
}
FIELD_MARGIN = 2.0


class CycleDevice(Protocol):
    """A destruction machine (firmware_bridge.modbus.ModbusDevice implements it)."""

    name: str

    def run_cycle(
        self, *, cut_size_mm: float | None = ..., max_cut_size_mm: float | None = ..., min_field_oe: float | None = ...
    ) -> CycleReport: ...


class ParticleCheck(Protocol):
    def __call__(self, image: np.ndarray, level: str) -> ParticleReport: ...


@dataclass
class StationConfig:
    name: str
    organisation: str
    location: str
    certificates: Path
    shredder: CycleDevice | None = None
    degausser: CycleDevice | None = None


class DestructionStation:
    def __init__(
        self,
        config: StationConfig,
        factory: sessionmaker[Session],
        bus: LiveBus,
        *,
        intake: Callable[[], set[str]],
        camera: Callable[[str], np.ndarray | None] | None = None,
        analyse: ParticleCheck | None = None,
    ) -> None:
        """`intake()` returns the EPCs the intake antenna reads now; `camera(level)` photographs the output."""
        self.config = config
        self.factory = factory
        self.bus = bus
        self.intake = intake
        self.camera = camera
        self.analyse = analyse
        config.certificates.mkdir(parents=True, exist_ok=True)

    def run(self, item_keys: list[str], operator: str, witness: str) -> list[DestructionOutcome]:
        try:
            with self.factory() as session:
                destruction.check_people(session, operator, witness)
        except RegistryError as exc:
            return [DestructionOutcome(key, False, str(exc), None, None) for key in item_keys]
        try:
            at_intake = {epc.upper() for epc in self.intake()}
        except BridgeError as exc:
            # Nothing started: without an intake read the item in the hopper is unknown.
            return [
                DestructionOutcome(key, False, f"intake reader did not answer: {exc}", None, None) for key in item_keys
            ]
        return [self._one(key, operator, witness, at_intake) for key in item_keys]

    def _one(self, key: str, operator: str, witness: str, at_intake: set[str]) -> DestructionOutcome:
        with self.factory() as session:
            try:
                item = lookup.item(session, key)
            except RegistryError as exc:
                return DestructionOutcome(key, False, str(exc), None, None)
            name = f"{item.register_number}/{item.copy_number}"
            if item.status not in ("active", "destruction_failed"):
                return DestructionOutcome(name, False, f"item is {item.status}", None, None)
            if destruction.destroy_approval_for(session, item) is None:
                # Nothing was started: the item is untouched, not "failed".
                return DestructionOutcome(name, False, "no approved destruction request", None, None)
            item_id, epc, kind = item.id, item.epc, item.kind
        started = journal.now_utc()
        policy = POLICY.get(kind, POLICY["other"])
        parameters: dict[str, str] = {"policy_level": policy.particle_level}
        reasons: list[str] = []
        if epc not in at_intake:
            reasons.append("tag not read at the intake: the item in the hopper is not the one requested")
        counters = ["", ""]
        if not reasons:
            reasons += self._cycles(policy, parameters, counters)
        image_hash = ""
        if not reasons:
            verdict, image_hash = self._particles(policy, parameters)
            if verdict:
                reasons.append(verdict)
        evidence = destruction.DestructionEvidence(
            device_name=" + ".join(d.name for d in self._devices(policy)),
            method=" then ".join(policy.steps),
            started_at=started,
            completed_at=journal.now_utc(),
            parameters=parameters,
        )
        if reasons:
            return self._failed(item_id, name, operator, evidence, "; ".join(reasons))
        return self._destroyed(item_id, name, operator, witness, evidence, counters, image_hash)

    def _devices(self, policy: MediumPolicy) -> list[CycleDevice]:
        found = {"degauss": self.config.degausser, "shred": self.config.shredder}
        return [d for step in policy.steps if (d := found[step]) is not None]

    def _cycles(self, policy: MediumPolicy, parameters: dict[str, str], counters: list[str]) -> list[str]:
        reasons: list[str] = []
        for step in policy.steps:
            if step == "degauss":
                device = self.config.degausser
                if device is None:
                    return ["this station has no degausser, which the medium needs"]
                need = (policy.coercivity_oe or 0.0) * FIELD_MARGIN
                report = device.run_cycle(min_field_oe=need)
                parameters["required_field_oe"] = f"{need:.0f}"
                parameters["peak_field_oe"] = _fmt(report.peak_field_oe)
            else:
                device = self.config.shredder
                if device is None:
                    return ["this station has no shredder"]
                report = device.run_cycle(cut_size_mm=policy.max_cut_mm, max_cut_size_mm=policy.max_cut_mm)
                parameters["cut_size_mm"] = _fmt(report.cut_size_mm)
            before, after = report.counter_before, report.counter_after
            parameters[f"{device.name}_counter"] = f"{before} -> {after}"
            counters[0] = counters[0] or str(before)
            counters[1] = str(after)
            if not report.ok:
                reasons.append(f"{device.name}: " + ("; ".join(report.reasons) or "cycle failed"))
                break
        return reasons

    def _particles(self, policy: MediumPolicy, parameters: dict[str, str]) -> tuple[str, str]:
        """Empty verdict text when the output passes (or no camera watches it)."""
        if self.camera is None or self.analyse is None:
            parameters["particle_analysis"] = "no camera on this station output"
            return "", ""
        image = self.camera(policy.particle_level)
        if image is None:
            return "the output camera gave no image: destruction cannot be verified", ""
        report = self.analyse(image, policy.particle_level)
        # The evidence kept is the photograph with the offending particles outlined; its hash is certified.
        evidence = report.evidence_png(image)
        image_hash = hashlib.sha256(evidence or np.ascontiguousarray(image).tobytes()).hexdigest()
        if evidence:
            (self.config.certificates / f"evidence-{image_hash[:16]}.png").write_bytes(evidence)
        verdict = report.verdict
        parameters["particle_verdict"] = verdict
        parameters["particle_max_mm2"] = _fmt(report.max_area_mm2)
        parameters["particle_p95_mm2"] = _fmt(report.p95_area_mm2)
        parameters["particle_offenders"] = str(report.offenders)
        parameters["evidence_image_sha256"] = image_hash
        if verdict != "pass":
            return f"particle analysis {verdict}: {report.reason}", image_hash
        return "", image_hash

    def _failed(
        self, item_id: int, name: str, operator: str, evidence: destruction.DestructionEvidence, reason: str
    ) -> DestructionOutcome:
        with db.transaction(self.factory) as session:
            item = session.get(Item, item_id)
            assert item is not None
            record = destruction.record_failed(session, operator, item, evidence, reason)
            record_id = record.id
        self._publish(Severity.CRITICAL, f"DESTRUCTION FAILED: {name}", (("reason", reason), ("custody", operator)))
        return DestructionOutcome(name, False, reason, record_id, None)

    def _destroyed(
        self,
        item_id: int,
        name: str,
        operator: str,
        witness: str,
        evidence: destruction.DestructionEvidence,
        counters: list[str],
        image_hash: str,
    ) -> DestructionOutcome:
        try:
            with db.transaction(self.factory) as session:
                item = session.get(Item, item_id)
                assert item is not None
                anchor = journal.verify(session)
                data = self._certificate_data(session, item, operator, witness, evidence, counters, image_hash)
                data = replace(data, journal_anchor_seq=anchor.entries, journal_anchor_hash=anchor.head_hash)
                pdf = certificate.render(data)
                digest = certificate.sha256(pdf)
                record = destruction.record_destroyed(session, operator, witness, item, evidence, digest)
                path = self.config.certificates / f"{data.certificate_id}.pdf"
                path.write_bytes(pdf)
                record_id = record.id
        except RegistryError as exc:
            return DestructionOutcome(name, False, str(exc), None, None)
        self._publish(Severity.INFO, f"destroyed and verified: {name}", (("certificate", digest[:16]),))
        return DestructionOutcome(name, True, "verified destruction", record_id, digest)

    def _certificate_data(
        self,
        session: Session,
        item: Item,
        operator: str,
        witness: str,
        evidence: destruction.DestructionEvidence,
        counters: list[str],
        image_hash: str,
    ) -> certificate.CertificateData:
        op, wit = lookup.person(session, operator), lookup.person(session, witness)
        measured = tuple(
            (k.replace("_", " "), v) for k, v in sorted(evidence.parameters.items()) if k != "evidence_image_sha256"
        )
        return certificate.CertificateData(
            certificate_id=f"D-{evidence.completed_at:%Y%m%d}-{uuid.uuid4().hex[:8].upper()}",
            organisation=self.config.organisation,
            location=self.config.location,
            operator_name=op.name,
            operator_title=op.title or "Destruction operator",
            item_register=f"{item.register_number}/{item.copy_number}",
            item_title=item.title,
            media_type=item.kind,
            classification=Level(item.effective_level).label,
            manufacturer=item.manufacturer,
            model=item.model,
            serial_number=item.serial_number,
            epc=item.epc,
            source=item.venue.code if item.venue else "-",
            method_type="Purge and Destroy" if "degauss" in evidence.method else "Destroy",
            method=evidence.method,
            tool=evidence.device_name,
            verification="intake RFID read, device cycle report, particle analysis, operator and witness",
            post_classification="unclassified (remains)",
            destination_of_remains="sealed bin, incineration",
            cycle_counter_before=counters[0],
            cycle_counter_after=counters[1],
            measured=measured,
            particle_result=evidence.parameters.get("particle_verdict", "not measured"),
            evidence_image_sha256=image_hash or "-",
            witness_name=wit.name,
            witness_title=wit.title or "Witness",
            completed_at=evidence.completed_at.astimezone(dt.UTC).isoformat(),
            journal_anchor_seq=0,
            journal_anchor_hash="",
        )

    def _publish(self, severity: Severity, title: str, details: tuple[tuple[str, str], ...]) -> None:
        self.bus.publish(LiveKind.DESTRUCTION, severity, time.time_ns() // 1000, self.config.name, title, details)


def _fmt(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)
