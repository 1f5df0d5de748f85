"""Real-time tracking core: movements, exit decisions and alarms from RFID, badge and camera events.

Entry points: tracking.model (the site as plain dataclasses), tracking.snapshot.build_snapshot
(compile it to arrays), tracking.engine.Engine (the streaming engine). See tracking.engine for how a
portal controller drives it and tracking.reference for the rules in plain Python.
"""
