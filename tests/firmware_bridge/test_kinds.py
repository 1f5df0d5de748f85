"""The device-kind table: one place per kind, lazy backends, typed settings with errors naming the field."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from firmware_bridge import kinds
from firmware_bridge.errors import BackendUnavailable, SettingsError
from firmware_bridge.kinds import DeviceKind, Role, device_from_table, parse_device

EXAMPLE_SITE = Path(__file__).resolve().parents[2] / "examples" / "site.toml"


def test_the_register_and_the_admin_api_accept_exactly_the_kinds_of_the_table() -> None:
    from api.schemas import DeviceCreate
    from registry.models import DEVICE_KINDS

    assert kinds.names() == DEVICE_KINDS
    for name in kinds.names():
        assert DeviceCreate(name="d", kind=name, portal="p").kind == name
    with pytest.raises(ValueError):
        DeviceCreate(name="d", kind="toaster", portal="p")


def test_every_kind_has_a_backend_with_settings_and_a_role() -> None:
    for name, k in kinds.KINDS.items():
        backend = k.backend()
        assert backend.settings() is not None, name  # every setting has a default
        assert k.role in Role
    assert kinds.with_role(Role.PORTAL_READER) == ("llrp_reader", "mercury_portal")
    assert set(kinds.with_role(Role.MACHINE)) == {"modbus_shredder", "modbus_degausser"}


def test_importing_the_table_imports_no_driver_library() -> None:
    code = ("import sys, firmware_bridge.kinds, registry.models; "
            "print(sorted(m for m in ('pymodbus', 'osdp', 'numba', 'serial') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_missing_vendor_library_is_a_typed_error_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(kinds.KINDS, "acme_reader", DeviceKind(
        "acme_reader", Role.PORTAL_READER, "acme", "a reader whose SDK is not installed", "custodian_no_such_acme_sdk",
        "ACME", "acme-sdk"))
    with pytest.raises(BackendUnavailable, match=r"acme-sdk.*custodian_no_such_acme_sdk"):
        kinds.kind("acme_reader").backend()
    with pytest.raises(BackendUnavailable, match="no device kind 'toaster'"):
        kinds.kind("toaster")


def test_a_broken_module_of_ours_is_not_mistaken_for_a_missing_library(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(kinds.KINDS, "broken", DeviceKind(
        "broken", Role.PANEL, "osdp", "", "firmware_bridge.no_such_module", "X", "libosdp"))
    with pytest.raises(ModuleNotFoundError):
        kinds.kind("broken").backend()


@pytest.mark.parametrize(("table", "setting", "words"), [
    ({"kind": "llrp_reader", "prot": 5084}, "prot", "is not a setting of this kind"),
    ({"kind": "llrp_reader", "port": "fifty"}, "port", "must be a whole number"),
    ({"kind": "llrp_reader", "port": 70000}, "port", "1..65535"),
    ({"kind": "llrp_reader", "read_tid": "yes"}, "read_tid", "true or false"),
    ({"kind": "llrp_reader", "profile": "acme"}, "profile", "must be one of auto, generic, impinj, zebra"),
    ({"kind": "llrp_reader", "search_mode": "quad"}, "search_mode", "must be one of dual_target"),
    ({"kind": "osdp_panel", "address": 200}, "address", "0..126"),
    ({"kind": "modbus_shredder", "address": True}, "address", "must be a whole number"),
    ({"kind": "mercury_reader", "region": "MARS"}, "region", "must be one of NA"),
    ({"kind": "llrp_reader", "antennas": ["one"]}, "antennas", "antenna numbers"),
    ({"kind": "toaster"}, "kind", "no device kind"),
])
def test_bad_settings_are_refused_naming_device_and_field(table: dict[str, object], setting: str, words: str) -> None:
    with pytest.raises((SettingsError, BackendUnavailable)) as caught:
        device_from_table({"name": "dev-1", **table})
    message = str(caught.value)
    assert words in message
    if isinstance(caught.value, SettingsError):
        assert caught.value.device == "dev-1" and caught.value.setting == setting and f"'{setting}'" in message


def test_register_settings_json_values_are_converted_once() -> None:
    device = parse_device("gate", "llrp_reader", {"port": "5085", "read_tid": "true", "session": 2},
                          antennas=[1, 2], portal="main-exit")
    assert (device.settings.port, device.settings.read_tid, device.settings.session) == (5085, True, 2)
    assert device.antennas == (1, 2) and device.description.role is Role.PORTAL_READER


def test_every_device_of_the_example_site_parses() -> None:
    tables = tomllib.loads(EXAMPLE_SITE.read_text())["devices"]
    devices = [device_from_table(t) for t in tables]
    # A door has one people counter: the example site counts with cameras, not MQTT sensors.
    assert {d.kind for d in devices} == set(kinds.names()) - {"mercury_portal", "mqtt_people_counter"}
    reader = next(d for d in devices if d.name == "archive-door-reader")
    assert reader.antennas == (1, 2, 3, 4) and reader.settings.port == 5084
