"""Destruction devices over Modbus RTU and TCP: register maps from TOML profiles, a cycle driver, simulators."""
