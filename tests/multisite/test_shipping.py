"""The local log with two consumers (the edge's register writer and its JetStream shipper) committing from
their own threads: segments are released once both passed them, and never twice."""

from __future__ import annotations

import threading
from pathlib import Path

from controllers.outbox import Entry, LocalLog


def test_two_consumers_committing_at_once_release_each_segment_once(tmp_path: Path) -> None:
    log = LocalLog(tmp_path, "site-a", "n1", segment_bytes=4096)
    log.open("register")
    shipper = log.add_cursor("jetstream")
    register = log.cursor("register")
    entry = Entry(0, "alarm", "system", "alarm.test", "portal:site", '{"n":1}')
    for _ in range(300):
        log.append(lambda first: [entry] * 5)
    errors: list[BaseException] = []

    def consume(cursor) -> None:
        try:
            while True:
                frames, through = cursor.read(7)
                if not frames:
                    return
                cursor.commit(len(frames), through)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=consume, args=(c,)) for c in (register, shipper)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert log.segments() == [log.segments()[-1]], "only the segment being appended to is kept"
    log.close()
