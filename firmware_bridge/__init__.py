"""The wire: drivers and protocol-exact simulators for access panels, RFID readers and destruction devices.

Knows nothing of classification; emits typed device events and accepts typed device commands.
"""
