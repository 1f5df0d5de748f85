"""LLRP ingest: tag reports decoded per second from a simulated reader over loopback, vs sllurp.

For each report size (tags per RO_ACCESS_REPORT) the simulator reads a burst of tags and streams the
reports over loopback TCP. Measured, in one process:
  loopback  - our Numba stream decoder fed straight from the socket (first report to last tag);
  kernel    - the same decoder alone over the captured bytes in 64 KiB pieces (best of 3);
  python    - our plain-Python reference decoder over the same bytes;
  sllurp    - sllurp 3.0.5's LLRPMessage decoding exactly the same bytes;
  driver    - the LlrpReader driver end to end: socket, decode, one columnar TagBatch per receive;
  to_engine - the same, each TagBatch also turned into the tracking engine's ReadBatch (the portal's ingest).
The last line is JSON for one report per tag (the least favourable case): llrp_tags_per_s (loopback),
sllurp_tags_per_s, ratio = our decoder / sllurp on the same bytes (like for like, both decode only) and
loopback_ratio = loopback / sllurp (mixed: at one tag per report the loopback figure is bounded by the
simulator producing reports in Python, not by the decoder), plus every row.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import socket
import sys
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path

# run as a script, this file's folder comes first on sys.path and bench/tracking.py hides the package
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

from sllurp.llrp import LLRPMessage  # noqa: E402

from controllers.tag_ingest import read_batch  # noqa: E402
from firmware_bridge.events import TagBatch  # noqa: E402
from firmware_bridge.rfid import llrp_codec as llrp  # noqa: E402
from firmware_bridge.rfid.llrp_codec import InventoryPlan, Msg, RoundReporting  # noqa: E402
from firmware_bridge.rfid.llrp_fast import LlrpStreamDecoder  # noqa: E402
from firmware_bridge.rfid.llrp_reader import LlrpReader  # noqa: E402
from firmware_bridge.rfid.llrp_simulator import LlrpSimulator, WalkStep  # noqa: E402


def burst(tags: int) -> list[WalkStep]:
    return [WalkStep(0.0, f"3034{i:020X}", 1 + i % 4, -40 - i % 30) for i in range(tags)]


def serve(tags: int, pipe: Connection) -> None:
    """Child process: the simulated reader, on its own interpreter as a real reader is its own device."""
    with LlrpSimulator(burst(tags)) as sim:
        pipe.send(sim.port)
        pipe.recv()  # until the parent has read everything


def capture(tags: int, per_report: int) -> tuple[float, list[bytes]]:
    """Drive a simulator in a child process with a bare client; return (seconds from the first report
    to the last tag decoded, the raw RO_ACCESS_REPORT messages)."""
    parent, child = multiprocessing.get_context("spawn").Pipe()
    proc = multiprocessing.get_context("spawn").Process(target=serve, args=(tags, child))
    proc.start()
    try:
        return _capture_from(parent.recv(), tags, per_report)
    finally:
        parent.send("done")
        proc.join(timeout=30)


def _capture_from(port: int, tags: int, per_report: int) -> tuple[float, list[bytes]]:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        plan = InventoryPlan(1, (1, 2, 3, 4), RoundReporting.NONE, tags_per_report=per_report)
        for msg_id, (kind, body) in enumerate([
            (Msg.SET_READER_CONFIG, llrp.set_reader_config_body(0)),
            (Msg.ADD_ROSPEC, llrp.add_rospec_body(plan)),
            (Msg.ENABLE_ROSPEC, llrp.rospec_id_body(1)),  # an Immediate ROSpec: it starts now
        ], start=1):
            sock.sendall(llrp.encode(kind, msg_id, body))
        decoder, received, stream = LlrpStreamDecoder(), 0, []
        started = 0.0
        while received < tags:
            data = sock.recv(1 << 20)
            if not data:
                raise RuntimeError("simulator closed the link early")
            chunk = decoder.feed(data)
            if len(chunk.tags):
                started = started or time.perf_counter()
                received += len(chunk.tags)
            stream.append(data)
        elapsed = time.perf_counter() - started
    frames = llrp.LlrpFramer().feed(b"".join(stream))
    return elapsed, [llrp.encode(f.msg_type, f.msg_id, f.body) for f in frames if f.msg_type == Msg.RO_ACCESS_REPORT]


def decode_kernel(messages: list[bytes]) -> tuple[float, int]:
    """The Numba stream decoder over the same bytes, as they would arrive in 64 KiB reads."""
    stream = b"".join(messages)
    pieces = [stream[i : i + 65536] for i in range(0, len(stream), 65536)]
    best, count = float("inf"), 0
    for _ in range(3):
        decoder = LlrpStreamDecoder()
        t0 = time.perf_counter()
        count = sum(len(decoder.feed(piece).tags) for piece in pieces)
        best = min(best, time.perf_counter() - t0)
    return best, count


def decode_python(messages: list[bytes]) -> tuple[float, int]:
    """The plain-Python reference decoder (framer + decode_ro_access_report), for scale."""
    batch = llrp.ReportColumns()
    t0 = time.perf_counter()
    for frame in llrp.LlrpFramer().feed(b"".join(messages)):
        llrp.decode_ro_access_report(frame.body, batch)
    return time.perf_counter() - t0, len(batch)


def decode_sllurp(messages: list[bytes]) -> tuple[float, int]:
    t0 = time.perf_counter()
    count = sum(len(LLRPMessage(msgbytes=m).msgdict["RO_ACCESS_REPORT"]["TagReportData"]) for m in messages)
    return time.perf_counter() - t0, count


def driver(tags: int, per_report: int, *, to_engine: bool = False) -> float:
    """Tags/s through LlrpReader (socket, decode, TagBatch events), first to last tag; with `to_engine`
    each batch is also made the engine's ReadBatch, as the portal controller's ingest does."""
    done = threading.Event()
    state = {"n": 0, "t0": 0.0, "t1": 0.0}
    codes = {"bench": 0}

    def sink(event: object) -> None:
        if isinstance(event, TagBatch) and len(event):
            if not state["n"]:
                state["t0"] = time.perf_counter()
            if to_engine:
                read_batch(event, codes)
            state["n"] += len(event)
            if state["n"] >= tags:
                state["t1"] = time.perf_counter()
                done.set()

    with LlrpSimulator(burst(tags)) as sim, LlrpReader("bench", "127.0.0.1", sim.port,
                                                         tags_per_report=per_report, sink=sink):
        if not done.wait(60):
            raise RuntimeError(f"driver received {state['n']} of {tags} tags")
    return tags / (state["t1"] - state["t0"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer tags (< 60 s)")
    args = parser.parse_args()
    tags = 20_000 if args.quick else 200_000
    # Compile (or load) the kernel and warm the ingest before timing.
    warm = LlrpStreamDecoder("bench").feed(llrp.encode(Msg.RO_ACCESS_REPORT, 0, llrp.tag_report_data(bytes(12), 1)))
    read_batch(warm.tags, {"bench": 0})
    rows = []
    for per_report in (1, 100):
        loop_s, messages = capture(tags, per_report)
        kernel_s, kernel_n = decode_kernel(messages)
        py_s, py_n = decode_python(messages)
        sl_s, sl_n = decode_sllurp(messages)
        if not kernel_n == py_n == sl_n == tags:
            raise RuntimeError(f"tag counts differ: kernel {kernel_n}, python {py_n}, sllurp {sl_n}, sent {tags}")
        rows.append({
            "tags_per_report": per_report,
            "tags": tags,
            "loopback_tags_per_s": round(tags / loop_s),
            "kernel_decode_tags_per_s": round(tags / kernel_s),
            "python_decode_tags_per_s": round(tags / py_s),
            "sllurp_tags_per_s": round(tags / sl_s),
            "driver_tags_per_s": round(driver(tags, per_report)),
            "to_engine_tags_per_s": round(driver(tags, per_report, to_engine=True)),
        })
    print(f"{'tags/report':>11} {'tags':>8} {'loopback/s':>12} {'kernel/s':>12} {'python/s':>10} "
          f"{'sllurp/s':>10} {'driver/s':>10} {'to_engine/s':>12} {'kernel/sllurp':>14} {'loopback/sllurp':>16}")
    for r in rows:
        kernel_ratio = r["kernel_decode_tags_per_s"] / r["sllurp_tags_per_s"]
        loop_ratio = r["loopback_tags_per_s"] / r["sllurp_tags_per_s"]
        print(f"{r['tags_per_report']:>11} {r['tags']:>8} {r['loopback_tags_per_s']:>12,} "
              f"{r['kernel_decode_tags_per_s']:>12,} {r['python_decode_tags_per_s']:>10,} "
              f"{r['sllurp_tags_per_s']:>10,} {r['driver_tags_per_s']:>10,} {r['to_engine_tags_per_s']:>12,} "
              f"{kernel_ratio:>13.1f}x "
              f"{loop_ratio:>15.1f}x")
    head = rows[0]
    print(json.dumps({
        "llrp_tags_per_s": head["loopback_tags_per_s"],
        "sllurp_tags_per_s": head["sllurp_tags_per_s"],
        "ratio": round(head["kernel_decode_tags_per_s"] / head["sllurp_tags_per_s"], 1),
        "loopback_ratio": round(head["loopback_tags_per_s"] / head["sllurp_tags_per_s"], 1),
        "rows": rows,
    }))


if __name__ == "__main__":
    main()
