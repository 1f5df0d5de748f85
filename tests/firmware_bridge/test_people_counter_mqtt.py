"""The MQTT people-counter driver against the Mosquitto broker on this machine, fed by the simulated
sensor publishing real MQTT messages (one fresh topic per test)."""

import queue
import socket
import time
import uuid
from collections.abc import Iterator

import pytest

from firmware_bridge.errors import SettingsError
from firmware_bridge.events import Health, HealthEvent
from firmware_bridge.kinds import Role, parse_device
from firmware_bridge.people_counter_mqtt import MqttPeopleCounter, SensorCount, SimulatedPeopleSensor, parse_count
from firmware_bridge.site import OpenContext, open_drivers
from vision.people import HeadCount, PeopleSource

BROKER = ("127.0.0.1", 1883)


def _broker_up() -> bool:
    try:
        with socket.create_connection(BROKER, timeout=1):
            return True
    except OSError:
        return False


pytestmark = pytest.mark.skipif(not _broker_up(), reason="needs the Mosquitto broker at 127.0.0.1:1883")


@pytest.fixture
def topic() -> str:
    return f"custodian-test/{uuid.uuid4().hex}/people"


@pytest.fixture
def driver(topic: str) -> Iterator[tuple[MqttPeopleCounter, list[HealthEvent]]]:
    events: list[HealthEvent] = []
    counter = MqttPeopleCounter("door-3d-1", topic, on_health=events.append).start()
    assert counter.wait_subscribed(10)
    yield counter, events
    counter.stop()


@pytest.fixture
def sensor(topic: str) -> Iterator[SimulatedPeopleSensor]:
    device = SimulatedPeopleSensor("door-3d-1", topic)
    yield device
    device.close()


def test_counts_arrive_typed_in_order(
    driver: tuple[MqttPeopleCounter, list[HealthEvent]], sensor: SimulatedPeopleSensor
) -> None:
    counter, events = driver
    sensor.walk_in(2)
    sensor.walk_out(1)
    first, second = counter.next_count(), counter.next_count()
    assert isinstance(first, SensorCount) and isinstance(second, SensorCount)
    assert (first.count, first.entered, first.exited) == (2, 2, 0)
    assert (second.count, second.entered, second.exited) == (1, 2, 1)
    assert first.time_us <= second.time_us
    assert events[0].health == Health.ONLINE


def test_the_sensor_is_a_people_source_of_head_counts(
    driver: tuple[MqttPeopleCounter, list[HealthEvent]], sensor: SimulatedPeopleSensor
) -> None:
    counter, _ = driver
    assert isinstance(counter, PeopleSource)
    sensor.walk_in(1, ambiguous=True)
    count = next(counter.counts(idle_timeout_s=5))
    assert isinstance(count, HeadCount)
    assert (count.source, count.count, count.ambiguous) == ("door-3d-1", 1, True)


def test_malformed_messages_are_reported_dropped_and_counting_goes_on(
    driver: tuple[MqttPeopleCounter, list[HealthEvent]], sensor: SimulatedPeopleSensor
) -> None:
    counter, events = driver
    for bad in (b"", b"{not json", b"[1, 2]", b'{"count": -1}', b'{"count": "2"}', b'{"entered": 3}'):
        sensor.publish_raw(bad)
    sensor.walk_in(1)
    count = counter.next_count()
    assert count is not None and count.count == 1
    assert counter.health.counters["malformed"] == 6
    assert any(e.health == Health.DEGRADED and "malformed" in e.reason for e in events)
    assert counter.health.health == Health.ONLINE


def test_an_unreachable_broker_is_offline_not_a_crash(topic: str) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    events: list[HealthEvent] = []
    counter = MqttPeopleCounter("door-3d-2", topic, port=port, on_health=events.append).start()
    try:
        assert not counter.wait_subscribed(1.5)
        assert counter.next_count(timeout_s=0.2) is None
    finally:
        counter.stop()


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b'{"count": 3}', (3, 0, 0, False)),
        (b'{"count": 0, "entered": 5, "exited": 5, "extra": "ignored"}', (0, 5, 5, False)),
        (b'{"count": 2, "ambiguous": true, "ts_ms": 1767225600123}', (2, 0, 0, True)),
    ],
)
def test_message_format(payload: bytes, expected: tuple[int, int, int, bool]) -> None:
    count = parse_count(payload, 42, "fallback")
    assert (count.count, count.entered, count.exited, count.ambiguous) == expected
    assert count.time_us == (1767225600123000 if b"ts_ms" in payload else 42)
    assert count.source == "fallback"


def test_a_site_opens_the_sensor_as_its_portal_people_counter(topic: str, sensor: SimulatedPeopleSensor) -> None:
    """Kind 'mqtt_people_counter' in the camera's role: opened by the site like every driver, its counts
    and health go to the site's event sink, named by the register's device."""
    device = parse_device("door-3d", "mqtt_people_counter", {"topic": topic, "port": BROKER[1]}, portal="main-exit")
    assert device.description.role is Role.CAMERA
    sink: queue.Queue[object] = queue.Queue()
    drivers = open_drivers([device], OpenContext(sink.put))
    counter = drivers["door-3d"]
    assert isinstance(counter, MqttPeopleCounter)
    counter.start()
    try:
        assert counter.wait_subscribed(10)
        sensor.walk_in(2, ambiguous=True)
        deadline = time.monotonic() + 10
        seen: list[object] = []
        while not any(isinstance(e, SensorCount) for e in seen) and time.monotonic() < deadline:
            seen.append(sink.get(timeout=max(0.0, deadline - time.monotonic())))
    finally:
        counter.stop()
    count = next(e for e in seen if isinstance(e, SensorCount))
    assert isinstance(count, HeadCount)
    assert (count.device, count.source, count.count, count.ambiguous) == ("door-3d", "door-3d-1", 2, True)
    assert any(isinstance(e, HealthEvent) and e.device == "door-3d" and e.health == Health.ONLINE for e in seen)


@pytest.mark.parametrize(("settings", "field"), [({"topic": "site/+/people"}, "topic"), ({"port": 0}, "port")])
def test_sensor_settings_are_checked_once(settings: dict[str, object], field: str) -> None:
    with pytest.raises(SettingsError) as raised:
        parse_device("door-3d", "mqtt_people_counter", settings)
    assert raised.value.setting == field
