"""Lazy registry of backends: name -> (module, class), imported on first use.

A missing optional protocol library then surfaces as BackendUnavailable naming the library, instead of
an ImportError at package import time.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from firmware_bridge.errors import BackendUnavailable

BACKENDS: dict[str, tuple[str, str]] = {
    "osdp_panel": ("firmware_bridge.osdp.driver", "OsdpLine"),
    "osdp_panel_simulator": ("firmware_bridge.osdp.simulator", "PanelSimulator"),
    "modbus_shredder": ("firmware_bridge.modbus.driver", "ModbusDevice"),
    "modbus_degausser": ("firmware_bridge.modbus.driver", "ModbusDevice"),
    "modbus_simulator": ("firmware_bridge.modbus.simulator", "ModbusSimulator"),
}


def register_backend(name: str, module: str, class_name: str) -> None:
    BACKENDS[name] = (module, class_name)


def require_module(import_name: str, purpose: str) -> ModuleType:
    """Import an optional library, or raise BackendUnavailable saying what needs it."""
    try:
        return importlib.import_module(import_name)
    except ImportError as exc:
        raise BackendUnavailable(
            f"{purpose} needs the Python module {import_name!r}, which could not be imported: {exc}"
        ) from exc


def load_backend(name: str) -> type:
    try:
        module_name, class_name = BACKENDS[name]
    except KeyError:
        known = ", ".join(sorted(BACKENDS))
        raise BackendUnavailable(f"no backend named {name!r}; known: {known}") from None
    module = require_module(module_name, f"backend {name!r}")
    try:
        return getattr(module, class_name)
    except AttributeError:
        raise BackendUnavailable(f"backend {name!r}: {module_name} has no {class_name}") from None
