"""Interoperability with LLRP stacks nobody on the team wrote: llrpkit (its reader emulator and codec)
and sllurp (its message decoder)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st
from llrpkit.emulator.core import EmulatedTag, LLRPEmulator
from llrpkit.protocol import decode_message, messages
from sllurp.llrp import LLRPMessage

from firmware_bridge.events import Health, TagRead
from firmware_bridge.rfid import llrp_codec as llrp
from firmware_bridge.rfid.llrp_fast import LlrpStreamDecoder
from firmware_bridge.rfid.llrp_reader import LlrpReader

from .test_llrp_driver import FAST, collect, healths, tags

EMU_TAGS = [
    EmulatedTag(epc=bytes.fromhex("3034257BF7194E4000001A85"), antennas=(1,), rssi_dbm=-50.0),
    EmulatedTag(epc=bytes.fromhex("3034257BF7194E4000001A86"), antennas=(2,), rssi_dbm=-56.0),
    EmulatedTag(epc=bytes.fromhex("3034257BF7194E4000001A87"), antennas=(3,), rssi_dbm=-52.0),
]


@pytest.fixture
def emulator() -> Iterator[LLRPEmulator]:
    """llrpkit's emulator on its own event loop thread (it is asyncio; our driver is threaded)."""
    loop = asyncio.new_event_loop()
    emu = LLRPEmulator(tags=EMU_TAGS, reads_per_sec=300.0, antenna_count=4, seed=7)
    thread = threading.Thread(target=loop.run_forever, name="llrpkit-emulator")
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(emu.start(), loop).result(timeout=5)
        yield emu
        asyncio.run_coroutine_threadsafe(emu.stop(), loop).result(timeout=5)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        loop.close()


def test_our_driver_runs_an_inventory_on_llrpkits_emulator(emulator: LLRPEmulator) -> None:
    reader = LlrpReader("emu", "127.0.0.1", emulator.port, antennas=(1, 2), read_tid=True, keepalive_s=0.1,
                        backoff=FAST)
    with reader:
        events = collect(reader, lambda ev: {t.epc for t in tags(ev)} >= {"3034257BF7194E4000001A85",
                                                                          "3034257BF7194E4000001A86"})
        collect(reader, lambda ev: emulator.keepalive_acks >= 1, into=events)
    assert healths(events)[0] == Health.ONLINE
    assert reader.capabilities is not None and reader.capabilities.model == emulator.model_number
    assert reader.capabilities.firmware == emulator.firmware
    reads: list[TagRead] = tags(events)
    by_epc = {t.epc: t for t in reads}
    assert "3034257BF7194E4000001A87" not in by_epc  # antenna 3 is not in our ROSpec
    assert by_epc["3034257BF7194E4000001A85"].antenna == 1
    assert by_epc["3034257BF7194E4000001A86"].antenna == 2
    assert all(-70 < t.rssi_dbm < -35 and t.time_us > 0 and not t.stale for t in reads)
    # The emulator answers our TID AccessSpec from its modelled TID bank: E2801105 + last 8 EPC bytes.
    assert by_epc["3034257BF7194E4000001A85"].tid == "E2801105" + "3034257BF7194E4000001A85"[8:]
    assert reader.framing_errors == 0


def test_llrpkit_decodes_our_client_messages_as_we_meant_them() -> None:
    rospec = decode_message(llrp.encode(llrp.Msg.ADD_ROSPEC, 5, llrp.add_rospec_body(9, (1, 3), 4)))
    assert isinstance(rospec, messages.ADD_ROSPEC) and rospec.message_id == 5
    assert rospec.ro_spec.ro_spec_id == 9
    assert rospec.ro_spec.spec_parameters[0].antenna_ids == [1, 3]
    report = rospec.ro_spec.ro_report_spec
    assert report.n == 4 and report.tag_report_content_selector.enable_peak_rssi
    assert report.tag_report_content_selector.enable_first_seen_timestamp
    config = decode_message(llrp.encode(llrp.Msg.SET_READER_CONFIG, 6, llrp.set_reader_config_body(750)))
    assert config.keepalive_spec.periodic_trigger_value == 750
    access = decode_message(llrp.encode(llrp.Msg.ADD_ACCESSSPEC, 7, llrp.add_tid_accessspec_body(2, 9, 6)))
    read_op = access.access_spec.access_command.access_command_op_specs[0]
    assert (int(read_op.mb), read_op.word_count, access.access_spec.ro_spec_id) == (2, 6, 9)


@given(
    reads=st.lists(
        st.tuples(st.binary(min_size=12, max_size=12), st.integers(1, 64), st.integers(-100, -20),
                  st.integers(0, 2**63), st.none() | st.binary(min_size=12, max_size=12)),
        min_size=1, max_size=10,
    )
)
def test_sllurp_decodes_our_simulators_reports_exactly_as_we_do(
    reads: list[tuple[bytes, int, int, int, bytes | None]]
) -> None:
    message = llrp.encode(llrp.Msg.RO_ACCESS_REPORT, 0, b"".join(llrp.tag_report_data(*r) for r in reads))
    theirs = LLRPMessage(msgbytes=message).msgdict["RO_ACCESS_REPORT"]["TagReportData"]
    ours = LlrpStreamDecoder().feed(message).tags
    assert [t["EPC-96"].decode().upper() for t in theirs] == ours.epc_hex()
    assert [t["AntennaID"] for t in theirs] == ours.antenna.tolist()
    assert [t["PeakRSSI"] for t in theirs] == ours.rssi_dbm.tolist()
    assert [t["FirstSeenTimestampUTC"] for t in theirs] == ours.first_seen_us.tolist()
    their_tid = [t["C1G2ReadOpSpecResult"]["ReadData"].hex().upper() if "C1G2ReadOpSpecResult" in t else None
                 for t in theirs]
    assert their_tid == ours.tid_hex()


def test_sllurp_reads_our_simulators_handshake() -> None:
    caps = LLRPMessage(msgbytes=llrp.encode(llrp.Msg.GET_READER_CAPABILITIES_RESPONSE, 3,
                                            llrp.capabilities_response_body(4, 25882, 7, "sim 1")))
    general = caps.msgdict["GET_READER_CAPABILITIES_RESPONSE"]["GeneralDeviceCapabilities"]
    assert general["MaxNumberOfAntennaSupported"] == 4 and general["ReaderFirmwareVersion"] == b"sim 1"
    assert general["DeviceManufacturerName"] == 25882 and general["ModelName"] == 7
    event = LLRPMessage(msgbytes=llrp.encode(llrp.Msg.READER_EVENT_NOTIFICATION, 0, llrp.reader_event_body(
        123, llrp.connection_attempt_event(llrp.CONNECTION_SUCCESS))))
    data = event.msgdict["READER_EVENT_NOTIFICATION"]["ReaderEventNotificationData"]
    assert data["ConnectionAttemptEvent"]["Status"] == "Success" and data["UTCTimestamp"]["Microseconds"] == 123
