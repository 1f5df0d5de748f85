"""Interoperability with LLRP stacks nobody on the team wrote, in both directions:

* sllurp 3.0.5 (released, unpatched) and llrpkit's client drive our simulator as they drive a reader:
  capabilities, reader config, events and reports, ROSpec life cycle, tag reports;
* our client drives llrpkit's reader emulator;
* both libraries' codecs read our messages as we meant them, and we read theirs.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st
from llrpkit.emulator.core import EmulatedTag, LLRPEmulator
from llrpkit.protocol import decode_message, messages
from llrpkit.reader import Reader as LlrpkitReader
from sllurp.llrp import LLRPMessage, LLRPReaderClient, LLRPReaderConfig, LLRPReaderState

from firmware_bridge.events import Health
from firmware_bridge.rfid import llrp_codec as llrp
from firmware_bridge.rfid.llrp_codec import InventoryPlan, RoundReporting
from firmware_bridge.rfid.llrp_fast import LlrpStreamDecoder
from firmware_bridge.rfid.llrp_reader import LlrpReader
from firmware_bridge.rfid.llrp_simulator import FieldTag, LlrpSimulator
from tests.firmware_bridge.helpers import collect, healths, rows, wait_for

from .test_llrp_driver import FAST

EPCS = ["3034257BF7194E4000001A85", "3034257BF7194E4000001A86", "3034257BF7194E4000001A87"]
EMU_TAGS = [EmulatedTag(epc=bytes.fromhex(e), antennas=(a,), rssi_dbm=r) for e, a, r in
            zip(EPCS, (1, 2, 3), (-50.0, -56.0, -52.0), strict=True)]


def field_simulator(manufacturer: int = 0) -> LlrpSimulator:
    sim = LlrpSimulator(manufacturer=manufacturer, antennas=4).start()
    for epc, antenna in zip(EPCS, (1, 2, 3), strict=True):
        sim.place(FieldTag(epc, antenna, -50 - antenna))
    return sim


# ------------------------------------------------------------------------------ sllurp drives our simulator


@pytest.mark.parametrize("impinj", [False, True])
def test_sllurp_inventories_our_simulator(impinj: bool) -> None:
    sim = field_simulator(llrp.IMPINJ_PEN if impinj else 0)
    seen: list[dict[str, object]] = []
    states: list[int] = []
    selector = {"EnableROSpecID": False, "EnableSpecIndex": False, "EnableInventoryParameterSpecID": False,
                "EnableAntennaID": True, "EnableChannelIndex": True, "EnablePeakRSSI": True,
                "EnableFirstSeenTimestamp": False, "EnableLastSeenTimestamp": True, "EnableTagSeenCount": True,
                "EnableAccessSpecID": False}
    config = {"antennas": [1, 2], "report_every_n_tags": 1, "keepalive_interval": 0, "tag_content_selector": selector}
    if impinj:
        config["impinj_search_mode"] = 2  # dual target, through Octane custom parameters
    client = LLRPReaderClient("127.0.0.1", sim.port, LLRPReaderConfig(config))
    client.add_tag_report_callback(lambda _reader, tags: seen.extend(tags))
    client.add_state_callback(LLRPReaderState.STATE_INVENTORYING, lambda *_: states.append(1))
    try:
        client.connect()
        # sllurp's "-n 1" AISpec ends at the first tag and restarts on antenna 1: with dual target (every
        # tag answers every round) antenna 1's tag always ends it first; single target lets antenna 2's in.
        expected = {EPCS[0]} if impinj else set(EPCS[:2])
        assert wait_for(lambda: {t["EPC-96"].decode().upper() for t in seen} >= expected, 20), seen[-3:]
    finally:
        client.disconnect(timeout=5)
        client.join(5)
        sim.stop()
    assert states, "sllurp never reached its inventorying state"
    caps = client.llrp.capabilities  # sllurp parsed every capability it needs from our reply
    assert caps["GeneralDeviceCapabilities"]["MaxNumberOfAntennaSupported"] == 4
    assert client.llrp.tx_power_table[-1] == 30.0
    modes = caps["RegulatoryCapabilities"]["UHFBandCapabilities"]["UHFC1G2RFModeTable"]["UHFC1G2RFModeTableEntry"]
    assert {m["ModeIdentifier"] for m in modes} >= {0, 1, 2, 3}
    assert "C1G2LLRPCapabilities" in caps and "LLRPCapabilities" in caps
    assert client.llrp.reader_config is not None  # GET_READER_CONFIG answered
    assert {t["AntennaID"] for t in seen} <= {1, 2}  # antenna 3 is not in sllurp's ROSpec
    assert all(t["PeakRSSI"] in (-51, -52) for t in seen)


def test_sllurp_and_llrpkit_decode_our_reader_config_and_rospecs() -> None:
    config = LLRPMessage(msgbytes=llrp.encode(llrp.Msg.GET_READER_CONFIG_RESPONSE, 5,
                                              llrp.reader_config_response_body(2, 1000, frozenset({6}))))
    body = config.msgdict["GET_READER_CONFIG_RESPONSE"]
    assert body["LLRPStatus"]["StatusCode"] == "Success"
    assert body["KeepaliveSpec"]["TimeInterval"] == 1000
    assert {p["AntennaID"] for p in body["AntennaProperties"]} == {1, 2}
    # sllurp has no GET_ROSPECS_RESPONSE decoder; llrpkit has.
    plan = InventoryPlan(7, (1, 2), RoundReporting.AISPEC_END, session=1)
    listed = decode_message(llrp.encode(llrp.Msg.GET_ROSPECS_RESPONSE, 6, llrp.status() + llrp.add_rospec_body(plan)))
    assert [spec.ro_spec_id for spec in listed.ro_specs] == [7] and len(listed.ro_specs[0].spec_parameters) == 2


# ------------------------------------------------------------------------------ llrpkit drives our simulator


async def _llrpkit_session(port: int, include_tid: bool) -> tuple[list[object], object, object]:
    reader = LlrpkitReader("127.0.0.1", port, response_timeout=5.0)
    async with reader:
        config = await reader.get_config()
        found = []
        async for tag in reader.inventory(antennas=[1, 2], session=0, search_mode=2 if reader.is_impinj else None,
                                          include_tid=include_tid, include_phase=True, max_tags=6, duration=15):
            found.append(tag)
        listed = await reader.client.transact(messages.GET_ROSPECS())
        return found, config, listed


@pytest.mark.parametrize("impinj", [False, True])
def test_llrpkit_client_inventories_our_simulator(impinj: bool) -> None:
    sim = field_simulator(llrp.IMPINJ_PEN if impinj else 0)
    try:
        found, config, listed = asyncio.run(_llrpkit_session(sim.port, include_tid=impinj))
    finally:
        sim.stop()
    epcs = {t.epc_hex.upper() if hasattr(t, "epc_hex") else t.epc.hex().upper() for t in found}
    assert epcs <= set(EPCS[:2]) and epcs
    assert {t.antenna for t in found} <= {1, 2}
    assert config.keepalive_spec is not None and len(config.antenna_properties) == 4
    assert isinstance(listed, messages.GET_ROSPECS_RESPONSE)
    if impinj:  # Octane content reached llrpkit: TID without an AccessSpec, phase angle
        assert all(t.tid for t in found) and all(t.phase_deg is not None for t in found)


# ------------------------------------------------------------------------------ our client on llrpkit's emulator


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
        events = collect(reader, lambda ev: {r.epc for r in rows(ev)} >= set(EPCS[:2]))
        collect(reader, lambda ev: emulator.keepalive_acks >= 1, into=events)
    assert healths(events)[0] == Health.ONLINE
    assert reader.capabilities is not None and reader.capabilities.model == emulator.model_number
    assert reader.capabilities.firmware == emulator.firmware
    assert reader.capabilities.regulatory and reader.capabilities.modes
    negotiated = reader.negotiated
    assert negotiated is not None and negotiated.profile == "impinj" and negotiated.tid == "in the report"
    # The emulator leaves an Immediate ROSpec waiting and sends no ROSpec events: the driver started it.
    assert "no ROSpec start event after ENABLE: started by START_ROSPEC" in negotiated.fallbacks
    by_epc = {r.epc: r for r in rows(events)}
    assert EPCS[2] not in by_epc  # antenna 3 is not in our ROSpec
    assert (by_epc[EPCS[0]].antenna, by_epc[EPCS[1]].antenna) == (1, 2)
    assert all(-70 < r.rssi_dbm < -35 and r.time_us > 0 and not r.stale for r in rows(events))
    # The emulator reports its modelled TID bank (E2801105 + last 8 EPC bytes) as Impinj serialized TID.
    assert by_epc[EPCS[0]].tid == "E2801105" + EPCS[0][8:]
    assert reader.framing_errors == 0


# ------------------------------------------------------------------------------ codecs, both ways


def test_llrpkit_decodes_our_client_messages_as_we_meant_them() -> None:
    plan = InventoryPlan(9, (1, 3), RoundReporting.AISPEC_END, tags_per_report=4, session=1, mode_index=2,
                         impinj_search_mode=llrp.ImpinjSearchMode.DUAL_TARGET,
                         impinj_content=llrp.ImpinjContent(serialized_tid=True))
    rospec = decode_message(llrp.encode(llrp.Msg.ADD_ROSPEC, 5, llrp.add_rospec_body(plan)))
    assert isinstance(rospec, messages.ADD_ROSPEC) and rospec.message_id == 5
    spec = rospec.ro_spec
    assert spec.ro_spec_id == 9 and int(spec.ro_boundary_spec.ro_spec_start_trigger.ro_spec_start_trigger_type) == 1
    first, second = spec.spec_parameters  # one AISpec per antenna, so each end is one antenna's round
    assert (first.antenna_ids, second.antenna_ids) == ([1], [3])
    stop = first.ai_spec_stop_trigger
    assert int(stop.ai_spec_stop_trigger_type) == 3  # tag observation
    assert (int(stop.tag_observation_trigger.trigger_type), stop.tag_observation_trigger.number_of_attempts) == (2, 1)
    command = first.inventory_parameter_specs[0].antenna_configurations[0].air_protocol_inventory_command_settings[0]
    assert command.c1_g2_singulation_control.session == 1 and command.c1_g2_rf_control.mode_index == 2
    assert int(command.custom[0].inventory_search_mode) == 2
    report = spec.ro_report_spec
    assert report.n == 4 and int(report.ro_report_trigger) == 1 and report.tag_report_content_selector.enable_peak_rssi
    assert report.custom[0].impinj_enable_serialized_t_id.serialized_t_id_mode == 1
    config = decode_message(llrp.encode(llrp.Msg.SET_READER_CONFIG, 6, llrp.set_reader_config_body(
        750, (llrp.NotificationEvent.AISPEC, llrp.NotificationEvent.ROSPEC))))
    assert config.keepalive_spec.periodic_trigger_value == 750
    notify = config.reader_event_notification_spec.event_notification_states
    states = {int(state.event_type): state.notification_state for state in notify}
    assert states == {6: True, 2: True}
    access = decode_message(llrp.encode(llrp.Msg.ADD_ACCESSSPEC, 7, llrp.add_tid_accessspec_body(2, 9, 6)))
    read_op = access.access_spec.access_command.access_command_op_specs[0]
    assert (int(read_op.mb), read_op.word_count, access.access_spec.ro_spec_id) == (2, 6, 9)


def test_llrpkit_decodes_our_simulators_capabilities_and_events() -> None:
    description = llrp.ReaderDescription(4, llrp.IMPINJ_PEN, 7, "sim 1", (llrp.RfMode(1002, 2, 274_000),))
    caps = decode_message(llrp.encode(llrp.Msg.GET_READER_CAPABILITIES_RESPONSE, 3,
                                      llrp.capabilities_response_body(description)))
    assert caps.general_device_capabilities.max_number_of_antenna_supported == 4
    assert caps.llrp_capabilities is not None and caps.air_protocol_llrp_capabilities is not None
    uhf = caps.regulatory_capabilities.uhf_band_capabilities
    assert uhf.transmit_power_level_table_entrys[-1].transmit_power_value == 3000
    assert uhf.air_protocol_uhfrf_mode_tables[0].c1_g2_uhfrf_mode_table_entrys[0].mode_identifier == 1002
    event = decode_message(llrp.encode(llrp.Msg.READER_EVENT_NOTIFICATION, 0,
                                       llrp.reader_event_body(5, llrp.aispec_end_event(9, 2))))
    ai = event.reader_event_notification_data.ai_spec_event
    assert (int(ai.event_type), ai.ro_spec_id, ai.spec_index) == (0, 9, 2)


@given(
    reads=st.lists(
        st.tuples(st.binary(min_size=12, max_size=12), st.integers(1, 64), st.integers(-100, -20),
                  st.integers(0, 2**63 - 1), st.none() | st.binary(min_size=12, max_size=12)),
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
    assert [t["FirstSeenTimestampUTC"] for t in theirs] == ours.time_us.tolist()
    their_tid = [t["C1G2ReadOpSpecResult"]["ReadData"].hex().upper() if "C1G2ReadOpSpecResult" in t else None
                 for t in theirs]
    assert their_tid == ours.tid_hex()


def test_sllurp_reads_our_simulators_handshake() -> None:
    description = llrp.ReaderDescription(4, 25882, 7, "sim 1")
    caps = LLRPMessage(msgbytes=llrp.encode(llrp.Msg.GET_READER_CAPABILITIES_RESPONSE, 3,
                                            llrp.capabilities_response_body(description)))
    general = caps.msgdict["GET_READER_CAPABILITIES_RESPONSE"]["GeneralDeviceCapabilities"]
    assert general["MaxNumberOfAntennaSupported"] == 4 and general["ReaderFirmwareVersion"] == b"sim 1"
    assert general["DeviceManufacturerName"] == 25882 and general["ModelName"] == 7
    event = LLRPMessage(msgbytes=llrp.encode(llrp.Msg.READER_EVENT_NOTIFICATION, 0, llrp.reader_event_body(
        123, llrp.connection_attempt_event(llrp.ConnectionStatus.SUCCESS))))
    data = event.msgdict["READER_EVENT_NOTIFICATION"]["ReaderEventNotificationData"]
    assert data["ConnectionAttemptEvent"]["Status"] == "Success" and data["UTCTimestamp"]["Microseconds"] == 123
    refused = LLRPMessage(msgbytes=llrp.encode(llrp.Msg.READER_EVENT_NOTIFICATION, 0, llrp.reader_event_body(
        123, llrp.connection_attempt_event(llrp.ConnectionStatus.FAILED_CLIENT_INITIATED_CONNECTION_EXISTS))))
    status = refused.msgdict["READER_EVENT_NOTIFICATION"]["ReaderEventNotificationData"]["ConnectionAttemptEvent"]
    assert status["Status"] == "Failed (a Client initiated connection already exists)"
