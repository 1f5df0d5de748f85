"""One exception hierarchy for every driver; errors are translated once, at the I/O boundary."""


class BridgeError(Exception):
    """Base of every error a driver raises."""


class BackendUnavailable(BridgeError):
    """An optional protocol library is not installed or failed to load."""


class TransportError(BridgeError):
    """The transport (serial port, pty, TCP socket) could not be opened or broke."""


class DeviceTimeout(BridgeError):
    """The device did not answer within its reply timeout."""


class DeviceOffline(BridgeError):
    """The device is known to be offline; the command was not sent."""


class FramingError(BridgeError):
    """Bytes on the wire do not form a valid frame (bad header, length or checksum)."""


class ProtocolError(BridgeError):
    """A well-formed frame carries something the protocol does not allow here (e.g. an error status)."""


class ProfileError(BridgeError):
    """A device profile (TOML register map) is malformed or lacks a point the driver needs."""


class DeviceRefused(ProtocolError):
    """The device answered with an exception reply (e.g. Modbus ILLEGAL DATA ADDRESS), named by `name`."""

    def __init__(self, message: str, *, code: int, name: str) -> None:
        super().__init__(message)
        self.code = code
        self.name = name


class DeviceBusy(DeviceRefused):
    """The device is busy with a long command (Modbus SERVER DEVICE BUSY): the request may be retried."""


class NoIdentification(ProtocolError):
    """The device answers but has no identification objects to report."""


class SettingsError(BridgeError, ValueError):
    """A device's settings (site file table or register `settings_json`) are unusable; names the field."""

    def __init__(self, device: str, setting: str, problem: str) -> None:
        super().__init__(f"device {device!r}: setting {setting!r} {problem}")
        self.device = device
        self.setting = setting
