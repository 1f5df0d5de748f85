"""The destruction station: intake read -> approved request -> device cycle(s) -> particle analysis -> two
persons -> destroyed, tag retired, certificate; any failure leaves the item "destruction failed" in the
operator's custody, with the reason.

When the analysis cannot verify the lot (pieces touching end to side, a region it cannot classify, a size
within its uncertainty of the limit), the item is recorded "destruction failed" at once and the lot, still in
the output tray, waits for the run's operator: they spread the pieces (or not) and ask for another image,
which is judged with the run's earlier frames (`vision.particles.judge_frames`), up to MAX_FRAMES frames.
Only the register is durable: if the process stops meanwhile, the offer is gone and the item stays
"destruction failed", never destroyed. A new run at the station, which may add shred to the tray, ends it.

What each kind of medium needs is data (`POLICY`), not code: the device sequence, the particle level the
camera must confirm, and for magnetic media the coercivity the degausser's field must exceed (2x margin).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from controllers import certificate
from controllers.bus import LiveBus, LiveKind, Severity
from controllers.control import DestructionOutcome, PendingVerification
from firmware_bridge.errors import BridgeError
from firmware_bridge.modbus.driver import CycleReport
from registry import db, journal
from registry.errors import RegistryError, RuleViolation
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
MAX_FRAMES = 4  # of one lot: the first and up to three re-images
REIMAGE_WINDOW_S = 900.0  # a lot left longer in the tray is no longer re-imaged (it may have been disturbed)


class CycleDevice(Protocol):
    """A destruction machine (firmware_bridge.modbus.ModbusDevice implements it)."""

    name: str

    def run_cycle(
        self, *, cut_size_mm: float | None = ..., max_cut_size_mm: float | None = ..., min_field_oe: float | None = ...
    ) -> CycleReport: ...


class SimulatedIntake(Protocol):
    """The intake reader's simulator (demo): tags placed in its field are read at the next intake read."""

    def place(self, epc: str) -> None: ...

    def remove(self, epc: str) -> None: ...


class ParticleCheck(Protocol):
    def __call__(self, image: np.ndarray, level: str) -> ParticleReport: ...


class LotCheck(Protocol):
    """One lot judged from the reports of several frames of its tray, each analysed on its own
    (`vision.particles.judge_frames`)."""

    def __call__(self, reports: Sequence[ParticleReport], level: str) -> ParticleReport: ...


class OutputCamera(Protocol):
    """Photographs the output tray; `frame` > 1: another image of the same lot (a simulation uses it to show
    the tray as the operator left it)."""

    def __call__(self, level: str, *, frame: int = 1) -> np.ndarray | None: ...


@dataclass(frozen=True, slots=True)
class _Frame:
    report: ParticleReport
    sha256: str  # of the evidence image (the photograph with its regions outlined), or of the photograph


@dataclass
class _Pending:
    """A lot the analysis could not verify, still in the output tray, under its "destruction failed" record."""

    item_id: int
    name: str
    epc: str
    operator: str
    witness: str
    level: str
    record_id: int
    evidence: destruction.DestructionEvidence
    counters: list[str]
    frames: list[_Frame]
    reason: str
    deadline: float  # time.monotonic()


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
        camera: OutputCamera | Callable[[str], np.ndarray | None] | None = None,
        analyse: ParticleCheck | None = None,
        simulated_intake: SimulatedIntake | None = None,
        analyse_lot: LotCheck | None = None,
    ) -> None:
        """`intake()` returns the EPCs the intake antenna reads now; `camera(level)` photographs the output;
        `analyse_lot` judges a lot from several frames (without it a `cannot_verify` is final);
        `simulated_intake` (demo only) lets the page put an item's tag on the simulated intake reader."""
        self.config = config
        self.factory = factory
        self.bus = bus
        self.intake = intake
        self.camera = camera
        self.analyse = analyse
        self.analyse_lot = analyse_lot
        self.simulated_intake = simulated_intake
        # One output tray, so one run or re-image at a time, and at most one lot waiting for another image.
        self._lock = threading.RLock()
        self._pending: _Pending | None = None
        config.certificates.mkdir(parents=True, exist_ok=True)

    def run(self, item_keys: list[str], operator: str, witness: str) -> list[DestructionOutcome]:
        with self._lock:
            if self._pending is not None:
                self._close(self._pending, "a new run started at the station before the tray was re-imaged")
            return self._run(item_keys, operator, witness)

    def _run(self, item_keys: list[str], operator: str, witness: str) -> list[DestructionOutcome]:
        self._step("run started", ("items", ", ".join(item_keys)), ("operator", operator), ("witness", witness))
        try:
            with self.factory() as session:
                destruction.check_people(session, operator, witness)
        except RegistryError as exc:
            self._step("refused: nothing started", ("reason", str(exc)), severity=Severity.WARNING)
            return [DestructionOutcome(key, False, str(exc), None, None) for key in item_keys]
        try:
            at_intake = {epc.upper() for epc in self.intake()}
        except BridgeError as exc:
            # Nothing started: without an intake read the item in the hopper is unknown.
            self._step("intake reader did not answer: nothing started", ("reason", str(exc)), severity=Severity.WARNING)
            return [
                DestructionOutcome(key, False, f"intake reader did not answer: {exc}", None, None) for key in item_keys
            ]
        self._step("intake read", ("tags in the hopper", ", ".join(sorted(at_intake)) or "none"))
        return [self._one(key, operator, witness, at_intake) for key in item_keys]

    def place_simulated(self, epc: str) -> None:
        """Demo only: put a tag on the simulated intake reader, as an operator puts the item in the hopper."""
        if self.simulated_intake is None:
            raise LookupError(f"{self.config.name} has no simulated intake")
        self.simulated_intake.place(epc.upper())
        self._step("placed on the simulated intake", ("tag", epc.upper()))

    def _one(self, key: str, operator: str, witness: str, at_intake: set[str]) -> DestructionOutcome:
        with self.factory() as session:
            try:
                item = lookup.item(session, key)
            except RegistryError as exc:
                return self._not_started(key, str(exc))
            name = f"{item.register_number}/{item.copy_number}"
            if item.status not in ("active", "destruction_failed"):
                return self._not_started(name, f"item is {item.status}")
            if destruction.destroy_approval_for(session, item) is None:
                # Nothing was started: the item is untouched, not "failed".
                return self._not_started(name, "no approved destruction request")
            item_id, epc, kind = item.id, item.epc, item.kind
        started = journal.now_utc()
        policy = POLICY.get(kind, POLICY["other"])
        parameters: dict[str, str] = {"policy_level": policy.particle_level}
        reasons: list[str] = []
        used: list[str] = []  # the machines that were actually cycled, in order: what the record names
        if epc in at_intake:
            self._step(f"{name}: tag read at the intake", ("tag", epc), ("medium", kind))
        else:
            reasons.append("tag not read at the intake: the item in the hopper is not the one requested")
            self._step(f"{name}: tag NOT read at the intake", ("tag", epc), severity=Severity.WARNING)
        counters = ["", ""]
        if not reasons and self._pending is not None:
            # An earlier item of this run waits for another image: this item's shred now falls on its lot.
            self._close(self._pending, f"{name} went through the machine before the tray was re-imaged")
        if not reasons:
            reasons += self._cycles(name, policy, parameters, counters, used)
        image_hash = ""
        frame: _Frame | None = None
        if not reasons:
            verdict, image_hash, frame = self._particles(name, policy, parameters)
            if verdict:
                reasons.append(verdict)
        evidence = destruction.DestructionEvidence(
            device_name=" + ".join(used) or "none",
            method=" then ".join(policy.steps),
            started_at=started,
            completed_at=journal.now_utc(),
            parameters=parameters,
        )
        if reasons:
            outcome = self._failed(item_id, name, operator, witness, evidence, "; ".join(reasons))
            if frame is not None and frame.report.verdict == "cannot_verify" and self.analyse_lot is not None:
                assert outcome.record_id is not None
                pending = _Pending(
                    item_id,
                    name,
                    epc,
                    operator,
                    witness,
                    policy.particle_level,
                    outcome.record_id,
                    evidence,
                    counters,
                    [frame],
                    frame.report.reason,
                    time.monotonic() + REIMAGE_WINDOW_S,
                )
                return self._offer(pending)
            return outcome
        self._step(f"{name}: witnessed", ("operator", operator), ("witness", witness))
        outcome = self._destroyed(item_id, name, operator, witness, evidence, counters, image_hash)
        if outcome.destroyed and self.simulated_intake is not None:
            self.simulated_intake.remove(epc)  # the tag went through the machine with the medium
        return outcome

    def _not_started(self, name: str, reason: str) -> DestructionOutcome:
        self._step(f"{name}: not started", ("reason", reason), severity=Severity.WARNING)
        return DestructionOutcome(name, False, reason, None, None)

    def _cycles(
        self, name: str, policy: MediumPolicy, parameters: dict[str, str], counters: list[str], used: list[str]
    ) -> list[str]:
        for step in policy.steps:
            device = self.config.degausser if step == "degauss" else self.config.shredder
            if device is None:
                machine = "degausser" if step == "degauss" else "shredder"
                return [f"this station has no {machine}, which the medium needs"]
            used.append(device.name)
            self._step(f"{name}: {device.name} cycle started", ("step", step))
            try:
                if step == "degauss":
                    need = (policy.coercivity_oe or 0.0) * FIELD_MARGIN
                    parameters["required_field_oe"] = f"{need:.0f}"
                    report = device.run_cycle(min_field_oe=need)
                    parameters["peak_field_oe"] = _fmt(report.peak_field_oe)
                    telemetry = (("peak field", f"{_fmt(report.peak_field_oe)} Oe"), ("required", f"{need:.0f} Oe"))
                else:
                    report = device.run_cycle(cut_size_mm=policy.max_cut_mm, max_cut_size_mm=policy.max_cut_mm)
                    parameters["cut_size_mm"] = _fmt(report.cut_size_mm)
                    telemetry = (
                        ("cutting size", f"{_fmt(report.cut_size_mm)} mm"),
                        ("allowed", f"{policy.max_cut_mm} mm"),
                    )
            except BridgeError as exc:
                self._step(f"{name}: {device.name} did not complete", ("reason", str(exc)), severity=Severity.CRITICAL)
                return [f"{device.name}: {exc}"]
            before, after = report.counter_before, report.counter_after
            parameters[f"{device.name}_counter"] = f"{before} -> {after}"
            counters[0] = counters[0] or str(before)
            counters[1] = str(after)
            verdict = "cycle complete" if report.ok else "; ".join(report.reasons) or "cycle failed"
            self._step(
                f"{name}: {device.name} {verdict}",
                *telemetry,
                ("counter", f"{before} -> {after}"),
                severity=Severity.INFO if report.ok else Severity.CRITICAL,
            )
            if not report.ok:
                return [f"{device.name}: " + ("; ".join(report.reasons) or "cycle failed")]
        return []

    def _particles(self, name: str, policy: MediumPolicy, parameters: dict[str, str]) -> tuple[str, str, _Frame | None]:
        """Empty verdict text when the output passes (or no camera watches it)."""
        if self.camera is None or self.analyse is None:
            parameters["particle_analysis"] = "no camera on this station output"
            self._step(f"{name}: particle analysis skipped", ("why", "no camera on this station output"))
            return "", "", None
        frame = self._photograph(name, policy.particle_level, 1)
        if frame is None:
            return "the output camera gave no image: destruction cannot be verified", "", None
        _report_into(parameters, frame.report, [frame])
        if frame.report.verdict != "pass":
            return f"particle analysis {frame.report.verdict}: {frame.report.reason}", frame.sha256, frame
        return "", frame.sha256, frame

    def _photograph(self, name: str, level: str, number: int) -> _Frame | None:
        """Frame `number` of the lot in the output tray, analysed on its own; its evidence image is kept."""
        assert self.camera is not None and self.analyse is not None
        image = self.camera(level) if number == 1 else self.camera(level, frame=number)  # type: ignore[call-arg]
        if image is None:
            self._step(f"{name}: the output camera gave no image", severity=Severity.CRITICAL)
            return None
        report = self.analyse(image, level)
        # The evidence kept is the photograph with the offending particles outlined; its hash is certified.
        evidence = report.evidence_png(image)
        image_hash = hashlib.sha256(evidence or np.ascontiguousarray(image).tobytes()).hexdigest()
        if evidence:
            (self.config.certificates / f"evidence-{image_hash[:16]}.png").write_bytes(evidence)
        self._step(
            f"{name}: particle analysis {report.verdict} ({level})" + (f", frame {number}" if number > 1 else ""),
            ("largest", f"{_fmt(report.max_area_mm2)} mm²"),
            ("95th percentile", f"{_fmt(report.p95_area_mm2)} mm²"),
            ("offenders", str(report.offenders)),
            ("reason", report.reason),
            ("evidence", image_hash if evidence else "-"),
            severity=Severity.INFO if report.verdict == "pass" else Severity.CRITICAL,
        )
        return _Frame(report, image_hash)

    # ---------------------------------------------------------------- another image of a lot not verified

    def pending(self) -> PendingVerification | None:
        pending = self._pending
        if pending is None:
            return None
        return PendingVerification(
            self.config.name,
            pending.name,
            pending.operator,
            pending.witness,
            len(pending.frames),
            MAX_FRAMES,
            pending.reason,
            pending.frames[-1].sha256,
        )

    def reimage(self, operator: str, witness: str) -> DestructionOutcome:
        """Another frame of the lot waiting in the tray, for the run's own operator with its own witness; the
        lot is judged from all its frames: pass -> destroyed, fail -> destruction failed, cannot_verify ->
        another image may be taken until MAX_FRAMES, then destruction failed."""
        with self._lock:
            pending = self._waiting(operator)
            if witness != pending.witness:
                raise RuleViolation(
                    "destruction.reimage_people", f"{pending.name} was witnessed by another person, who must be here"
                )
            if time.monotonic() > pending.deadline:
                return self._close(pending, "the lot waited too long in the tray to be re-imaged")
            number = len(pending.frames) + 1
            self._step(
                f"{pending.name}: another image requested",
                ("frame", f"{number} of {MAX_FRAMES}"),
                ("operator", operator),
                ("witness", witness),
            )
            frame = self._photograph(pending.name, pending.level, number)
            if frame is None:
                return self._offer(pending, journalled=True)
            assert self.analyse_lot is not None
            frames = [*pending.frames, frame]
            lot = self.analyse_lot([f.report for f in frames], pending.level)
            self._step(
                f"{pending.name}: the lot from {len(frames)} frames: {lot.verdict}",
                ("reason", lot.reason),
                severity=Severity.INFO if lot.verdict == "pass" else Severity.CRITICAL,
            )
            pending.frames, pending.reason = frames, lot.reason
            parameters = dict(pending.evidence.parameters)
            _report_into(parameters, lot, frames)
            evidence = replace(pending.evidence, completed_at=journal.now_utc(), parameters=parameters)

            def reimaged(session: Session, item: Item) -> None:
                destruction.record_reimage(
                    session, operator, witness, item, pending.record_id, number, frame.sha256, lot.verdict
                )

            if lot.verdict == "pass":
                self._pending = None
                self._step(f"{pending.name}: witnessed", ("operator", operator), ("witness", witness))
                hashes = " ".join(f.sha256 for f in frames)
                outcome = self._destroyed(
                    pending.item_id,
                    pending.name,
                    operator,
                    witness,
                    evidence,
                    pending.counters,
                    hashes,
                    before=reimaged,
                )
                if outcome.destroyed and self.simulated_intake is not None:
                    self.simulated_intake.remove(pending.epc)
                return outcome
            if lot.verdict == "fail" or number >= MAX_FRAMES:
                self._pending = None
                why = f"particle analysis {lot.verdict} from {number} frames: {lot.reason}"
                if lot.verdict != "fail":
                    why += " (no image left to take)"
                return self._failed(pending.item_id, pending.name, operator, witness, evidence, why, before=reimaged)
            try:
                with db.transaction(self.factory) as session:
                    item = session.get(Item, pending.item_id)
                    assert item is not None
                    reimaged(session, item)
            except RegistryError as exc:
                self._pending = None
                return DestructionOutcome(pending.name, False, str(exc), None, None)
            return self._offer(pending, journalled=True)

    def give_up(self, operator: str) -> DestructionOutcome:
        """The run's operator takes no more images: the item stays "destruction failed", with the reason."""
        with self._lock:
            pending = self._waiting(operator)
            return self._close(pending, f"the operator gave up re-imaging after {len(pending.frames)} frame(s)")

    def _waiting(self, operator: str) -> _Pending:
        pending = self._pending
        if pending is None:
            raise RuleViolation("destruction.no_reimage", f"no lot is waiting for another image at {self.config.name}")
        if operator != pending.operator:
            raise RuleViolation(
                "destruction.reimage_people", f"{pending.name} is {pending.operator}'s run: only they may re-image it"
            )
        return pending

    def _offer(self, pending: _Pending, *, journalled: bool = False) -> DestructionOutcome:
        """The lot waits for another image; the item meanwhile stays "destruction failed" (fail closed)."""
        self._pending = pending
        frames = len(pending.frames)
        self._step(
            f"{pending.name}: not verified: another image may be taken",
            ("reason", pending.reason),
            ("frames", f"{frames} of {MAX_FRAMES}"),
            ("evidence", pending.frames[-1].sha256),
            severity=Severity.WARNING,
        )
        reason = (
            f"particle analysis cannot_verify: {pending.reason}; another image may be taken ({frames} of {MAX_FRAMES})"
        )
        return DestructionOutcome(pending.name, False, reason, pending.record_id, None, verification_pending=True)

    def _close(self, pending: _Pending, why: str) -> DestructionOutcome:
        """No more images of the lot: a last "destruction failed" record says why."""
        self._pending = None
        reason = f"particle analysis cannot_verify: {pending.reason}; {why}"
        evidence = replace(pending.evidence, completed_at=journal.now_utc())
        try:
            return self._failed(pending.item_id, pending.name, pending.operator, pending.witness, evidence, reason)
        except RegistryError as exc:
            return DestructionOutcome(pending.name, False, str(exc), None, None)

    def _failed(
        self,
        item_id: int,
        name: str,
        operator: str,
        witness: str,
        evidence: destruction.DestructionEvidence,
        reason: str,
        *,
        before: Callable[[Session, Item], None] | None = None,
    ) -> DestructionOutcome:
        """`before` runs in the same transaction first (a check that may refuse, a journal entry)."""
        with db.transaction(self.factory) as session:
            item = session.get(Item, item_id)
            assert item is not None
            if before is not None:
                before(session, item)
            record = destruction.record_failed(session, operator, item, evidence, reason, witness=witness)
            record_id = record.id
        self._step(
            f"DESTRUCTION FAILED: {name}",
            ("reason", reason),
            ("custody", operator),
            ("witness", witness),
            severity=Severity.CRITICAL,
        )
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
        *,
        before: Callable[[Session, Item], None] | None = None,
    ) -> DestructionOutcome:
        try:
            with db.transaction(self.factory) as session:
                item = session.get(Item, item_id)
                assert item is not None
                if before is not None:
                    before(session, item)
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
        self._step(f"destroyed and verified: {name}", ("certificate", digest), ("record", str(record_id)))
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
            (k.replace("_", " "), v)
            for k, v in sorted(evidence.parameters.items())
            if k not in ("evidence_image_sha256", "evidence_frames_sha256")
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

    def _step(self, title: str, *details: tuple[str, str], severity: Severity = Severity.INFO) -> None:
        """Each step of a run, live on the destruction page (the station's name is the event's source)."""
        self.bus.publish(LiveKind.DESTRUCTION, severity, time.time_ns() // 1000, self.config.name, title, details)


def _report_into(parameters: dict[str, str], report: ParticleReport, frames: list[_Frame]) -> None:
    """The lot's verdict and figures, and the evidence of each of its frames, as the record keeps them."""
    parameters["particle_verdict"] = report.verdict
    parameters["particle_max_mm2"] = _fmt(report.max_area_mm2)
    parameters["particle_p95_mm2"] = _fmt(report.p95_area_mm2)
    parameters["particle_offenders"] = str(report.offenders)
    parameters["evidence_image_sha256"] = frames[-1].sha256
    if len(frames) > 1:
        parameters["particle_frames"] = str(len(frames))
        parameters["evidence_frames_sha256"] = " ".join(f.sha256 for f in frames)


def _fmt(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)
