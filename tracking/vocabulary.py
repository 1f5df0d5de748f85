"""Human sentences for the stable ids guards see: every decision reason and every alarm kind, and the
headlines of a badge's decision (exit or entry) on the live feed.

One table, used by the guard pages and the API alike (the ids themselves stay in the journal). A test
checks that every id in `tracking.results.REASON_NAMES`, `tracking.results.ALARM_KINDS` and the site's
alarm kinds (`controllers.alarms.KINDS`) has a sentence here.
"""

from __future__ import annotations

REASONS: dict[str, str] = {
    "approval_missing": "No approval lets this person take this item out through this door.",
    "approval_expired": "The approval for this item is outside its time window.",
    "approval_used_up": "The approval for this item has no uses left.",
    "clearance": "The person's clearance is below the item's level.",
    "scope": "The person is not in the item's knowledge scope nor named on its approval.",
    "destination_ceiling": "The item's level is above what its destination may hold.",
    "two_person_rule": "A top-secret item must be carried by two cleared people together; only one badged.",
    "tailgating": "The camera counted more people than badged at the door.",
    "border": "A top-secret item may never cross a border portal.",
    "abroad_approval_missing": "Taking this item abroad needs an approval of kind 'abroad'.",
    "stale_badge": "The badge read arrived late (queued while the panel was offline) and cannot open the door.",
    "unknown_badge": "The badge is not registered to anyone.",
    "person_inactive": "The badge's holder is not active (departed, suspended or in a separation period).",
    "item_status": "The item is not in a state that may leave (destroyed, in transit or seized).",
    "unknown_portal": "The door is not in the register.",
    "uncertain_reads": "The item's tag reads were too weak or one-sided to tell what is being carried.",
    "readers_offline_fail_secure": "The door's RFID readers are offline and the room it closes holds secrets, so "
    "the door stays shut both ways (fail-secure).",
    "not_recorded_door_kept_locked": "The decision could not be written to disk, so the door stayed locked.",
    "override_no_block": "There is no refused badge at this door to override.",
    "override_block_too_old": "The block is too old to override; the person must badge again.",
    "override_border_top_secret": "No override may send a top-secret item through a border portal.",
    "override_by_blocked_person": "A guard cannot override a block of their own or of the party they badged with.",
    "override_unknown_guard": "The guard is not an active person in the register.",
    "override_late": "The override reached the door controller too late to apply.",
    "anti_passback": "This badge is leaving a room its holder was never seen entering; a guard can forgive it "
    "if the holder's place is known.",
    "escort_missing": "A visitor may pass this door only together with an escort cleared for the room, badging "
    "at the same door.",
    "meeting_not_participant": "A classified meeting is under way in this room and this person is not on its "
    "participant list.",
    "snapshot_too_old": "This site has not heard from the centre for longer than its limit: items may not leave "
    "until the register is known again (people may).",
    "readers_behind": "The door's RFID readers have not reported a whole inventory round since the badge (a reader "
    "or its link is lagging), so what is being carried is not known: the door stays shut.",
}

ALARMS: dict[str, str] = {
    "anti_passback": "Allowed, but this badge left a room its holder was never seen entering (anti-passback set "
    "to alarm).",
    "visitor_unescorted": "A visitor is in this room with no escort: the last escort has left.",
    "exit_blocked": "An exit was refused: the door stays locked.",
    "entry_blocked": "An entry was refused: the door stays locked.",
    "unauthorized_exit": "An item crossed the door without an allowed exit covering it.",
    "unregistered_tag": "A tag that is not in the register was read: a foreign or copied tag.",
    "destroyed_item_seen": "The tag of an item recorded as destroyed was read again.",
    "possible_clone": "A tag was seen where it cannot be, or with the wrong TID: possibly cloned.",
    "venue_ceiling": "An item is in a venue whose ceiling is below its level.",
    "overdue": "An item carried out was not back by its approval's return time.",
    "inventory_discrepancy": "An inventory of a venue does not match the register.",
    "data_quality": "A reader sent reads that cannot be used (unknown antenna, bad signal, malformed EPC).",
    "late_read": "Reads arrived late from a reader (queued while its link was down).",
    "door_forced": "The door opened without an allowed exit.",
    "door_held_open": "The door has been held open too long.",
    "emergency_release_movement": "An item moved while the doors were released for a fire alarm.",
    "tamper": "A panel reports tampering.",
    "power_failure": "A panel reports a power failure.",
    "exit_override": "A guard overrode a refused badge and the door was opened.",
    "device_offline": "A device stopped answering.",
    "panel_command_failed": "A door panel did not take a command.",
    "database_unavailable": "The register database is unreachable; doors keep deciding from the snapshot.",
    "recorder_failed": "Records could not be written to the local disk.",
    "recorder_error": "The recorder hit an unexpected error and keeps retrying.",
    "local_log_damaged": "Part of the local log was damaged; what could be read was kept.",
    "record_dead_lettered": "The register refused a record for good; it was set aside for review.",
    "controller_error": "The door controller hit an unexpected error and carried on.",
}


def reason_sentence(reason: str) -> str:
    """A sentence for a reason id (an id without one is shown as it is, never hidden)."""
    return REASONS.get(reason, reason.replace("_", " "))


def alarm_sentence(kind: str) -> str:
    return ALARMS.get(kind, kind.replace("_", " "))


DIRECTIONS = ("exit", "entry")  # the ways a badge is presented (tracking.results.Decision.direction)


def decision_title(direction: str, allow: bool, person: str) -> str:
    """The live feed's headline for a badge's decision, saying which way: "entry allowed: bob",
    "EXIT BLOCKED: carol" (capitals: a refusal is an alarm)."""
    way = direction if direction in DIRECTIONS else "exit"
    return f"{way} allowed: {person}" if allow else f"{way.upper()} BLOCKED: {person}"


def kept_shut_sentence(item: str, since: str) -> str:
    """Why a door stayed shut for an item resting inside by it (issue 12 rule 1), so the guard can have it
    moved: `since` is the site's clock time it has rested there since."""
    return f"door kept shut: {item} resting inside by the door since {since}"
