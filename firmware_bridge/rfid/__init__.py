"""RFID readers: LLRP fixed portal readers over TCP and ThingMagic Mercury serial modules.

Contract: `reader.TagReader` (public methods own threads, timeouts, health and back-off; a backend
overrides a few internals). Drivers: `llrp_reader.LlrpReader`, `mercury_reader.MercuryReader`; they emit
`TagBatch`, `InventoryRoundEnd` and `HealthEvent`. Simulators (product code): `llrp_simulator.LlrpSimulator`,
`mercury_simulator.MercurySimulator`. Codecs: `llrp_codec` (messages, reference decoder), `llrp_fast`
(Numba stream decoder), `mercury_codec`. Device kinds: `kinds`.
"""
