"""RFID readers: LLRP fixed portal readers over TCP and ThingMagic Mercury serial modules.

Drivers: `llrp_reader.LlrpReader`, `mercury_reader.MercuryReader` (TagRead and HealthEvent out).
Simulators (product code): `llrp_simulator.LlrpSimulator`, `mercury_simulator.MercurySimulator`.
Codecs: `llrp_codec` (messages, reference decoder), `llrp_fast` (Numba stream decoder), `mercury_codec`.
Site wiring for the CLI: `site.start_simulators`, `site.probe`.
"""
