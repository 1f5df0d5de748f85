"""An overhead people-counting sensor (3-D / stereo counters) publishing its counts over MQTT.

Such sensors report, per counting line, how many people are in the zone now and how many crossed in
each direction since they started. The message this driver reads (JSON, one object per message):

    {"sensor": "door-3d-1", "ts_ms": 1767225600123, "count": 2, "entered": 17, "exited": 15,
     "ambiguous": false}

`ts_ms` is the sensor's clock (epoch milliseconds; the receive time is used when absent); `ambiguous`
is the sensor's own "cannot tell exactly" (a crowd, an occluded view), absent meaning false. Unknown
keys are ignored; a message that is not such an object is dropped, counted and reported as a degraded
health event, and the driver goes on. The driver reconnects by itself (paho's loop) and reports the
link's health like every other driver.

`SimulatedPeopleSensor` is the device side: it publishes real MQTT messages to the same broker.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import paho.mqtt.client as mqtt

from firmware_bridge.events import HealthEvent, SensorCount
from firmware_bridge.health import HealthTracker, now_us
from firmware_bridge.kinds import Device, KindBackend, SettingProblem

if TYPE_CHECKING:
    from firmware_bridge.site import OpenContext

__all__ = ["PEOPLE_SENSOR", "MqttPeopleCounter", "PeopleSensorSettings", "SensorCount", "SimulatedPeopleSensor"]

QUEUE_SIZE = 10_000


class MalformedCount(ValueError):
    """A message that is not a count this driver understands."""


def parse_count(payload: bytes, received_us: int, default_source: str) -> SensorCount:
    try:
        message = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise MalformedCount(f"not JSON: {error}") from error
    if not isinstance(message, dict):
        raise MalformedCount("not a JSON object")
    counts = {key: message.get(key, 0) for key in ("count", "entered", "exited")}
    if "count" not in message:
        raise MalformedCount("no 'count'")
    if any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in counts.values()):
        raise MalformedCount("counts must be non-negative integers")
    stamp = message.get("ts_ms")
    if stamp is not None and (isinstance(stamp, bool) or not isinstance(stamp, int | float) or stamp <= 0):
        raise MalformedCount("'ts_ms' must be a positive number")
    ambiguous = message.get("ambiguous", False)
    if not isinstance(ambiguous, bool):
        raise MalformedCount("'ambiguous' must be true or false")
    source = message.get("sensor", default_source)
    return SensorCount(
        source=str(source),
        time_us=int(stamp * 1000) if stamp is not None else received_us,
        count=counts["count"],
        ambiguous=ambiguous,
        entered=counts["entered"],
        exited=counts["exited"],
    )


class MqttPeopleCounter:
    """Subscribes to one sensor's topic; `counts()` yields SensorCounts as they arrive.

    Usage: `with MqttPeopleCounter("door-3d-1", "site/portal-1/people") as sensor: for c in sensor.counts(): ...`
    Health events (connected, lost, malformed messages) go to `on_health`. With `on_count` every count
    goes there instead (from paho's network thread), as a site's portal controller takes them.
    """

    def __init__(
        self,
        name: str,
        topic: str,
        *,
        host: str = "127.0.0.1",
        port: int = 1883,
        on_health: Callable[[HealthEvent], None] | None = None,
        on_count: Callable[[SensorCount], None] | None = None,
        keepalive_s: int = 10,
    ) -> None:
        self.name = name
        self._on_count = on_count
        self.topic = topic
        self.host, self.port, self.keepalive_s = host, port, keepalive_s
        self.health = HealthTracker(name, on_health or (lambda _event: None))
        self._queue: queue.Queue[SensorCount] = queue.Queue(maxsize=QUEUE_SIZE)
        self._stop = threading.Event()
        self._subscribed = threading.Event()
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"custodian-{name}-{id(self):x}")
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message
        self._client.reconnect_delay_set(min_delay=1, max_delay=10)

    # -- lifecycle
    def start(self) -> MqttPeopleCounter:
        try:
            self._client.connect_async(self.host, self.port, self.keepalive_s)
        except OSError as error:
            self.health.offline(f"cannot reach broker {self.host}:{self.port}: {error}")
        self._client.loop_start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._client.disconnect()
        self._client.loop_stop()
        _release(self._client)

    def __enter__(self) -> MqttPeopleCounter:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def wait_subscribed(self, timeout_s: float = 5.0) -> bool:
        return self._subscribed.wait(timeout_s)

    # -- the PeopleSource side
    def counts(self, idle_timeout_s: float | None = None) -> Iterator[SensorCount]:
        """Counts in arrival order until stopped (or until nothing arrives for `idle_timeout_s`)."""
        while not self._stop.is_set():
            try:
                yield self._queue.get(timeout=idle_timeout_s if idle_timeout_s is not None else 0.2)
            except queue.Empty:
                if idle_timeout_s is not None:
                    return

    def next_count(self, timeout_s: float = 5.0) -> SensorCount | None:
        try:
            return self._queue.get(timeout=timeout_s)
        except queue.Empty:
            return None

    # -- paho callbacks (its network thread)
    def _on_connect(
        self, client: mqtt.Client, _userdata: object, _flags: object, reason: object, _props: object
    ) -> None:
        if getattr(reason, "is_failure", False):
            self.health.offline(f"broker refused the connection: {reason}")
            return
        client.subscribe(self.topic, qos=1)

    def _on_subscribe(self, *_args: object) -> None:
        self.health.online(f"subscribed to {self.topic}")
        self._subscribed.set()

    def _on_disconnect(self, *_args: object) -> None:
        self._subscribed.clear()
        if not self._stop.is_set():
            self.health.offline("connection to the broker lost; reconnecting")

    def _on_message(self, _client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage) -> None:
        try:
            count = replace(parse_count(message.payload, now_us(), self.name), device=self.name)
        except MalformedCount as error:
            n = self.health.count("malformed")
            self.health.degraded(f"malformed count message #{n} dropped: {error}")
            return
        if self.health.reason.startswith("malformed"):
            self.health.online(f"subscribed to {self.topic}")
        if self._on_count is not None:
            self._on_count(count)
            return
        try:
            self._queue.put_nowait(count)
        except queue.Full:  # the reader stalled: report it rather than block the network thread
            self.health.degraded(f"count queue full ({QUEUE_SIZE}); reader is not keeping up")


class SimulatedPeopleSensor:
    """The sensor: publishes counts as JSON over MQTT, QoS 1, the way an overhead counter does."""

    def __init__(self, name: str, topic: str, *, host: str = "127.0.0.1", port: int = 1883) -> None:
        self.name, self.topic = name, topic
        self.entered = self.exited = self.count = 0
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"sim-{name}-{id(self):x}")
        self._client.connect(host, port, 10)
        self._client.loop_start()

    def walk_in(self, people: int = 1, ambiguous: bool = False) -> None:
        self.entered += people
        self.count += people
        self.publish(ambiguous=ambiguous)

    def walk_out(self, people: int = 1) -> None:
        self.exited += people
        self.count = max(0, self.count - people)
        self.publish()

    def publish(self, ambiguous: bool = False, ts_ms: int | None = None) -> None:
        message = {
            "sensor": self.name,
            "ts_ms": ts_ms if ts_ms is not None else time.time_ns() // 1_000_000,
            "count": self.count,
            "entered": self.entered,
            "exited": self.exited,
        }
        if ambiguous:
            message["ambiguous"] = True
        self.publish_raw(json.dumps(message).encode())

    def publish_raw(self, payload: bytes) -> None:
        self._client.publish(self.topic, payload, qos=1).wait_for_publish(5)

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
        _release(self._client)


def _release(client: mqtt.Client) -> None:
    """Close the client's wake-up socket pair now; paho otherwise leaves it to the garbage collector."""
    client._reset_sockets()


# ---------------------------------------------------------------------------------------------- the kind


@dataclass(frozen=True, slots=True)
class PeopleSensorSettings:
    """Where the sensor publishes: the broker and its topic (one topic per sensor)."""

    topic: str = "custodian/people"
    host: str = "127.0.0.1"
    port: int = 1883

    def __post_init__(self) -> None:
        if not self.topic or any(c in self.topic for c in "+#"):
            raise SettingProblem("topic", "must be one topic, without the wildcards + or #")
        if not 0 < self.port < 65536:
            raise SettingProblem("port", "must be a TCP port, 1..65535")


def _open(devices: Sequence[Device[PeopleSensorSettings]], context: OpenContext) -> dict[str, object]:
    """One subscriber per sensor; its counts and its health go straight to the site's event sink."""
    return {
        d.name: MqttPeopleCounter(
            d.name,
            d.settings.topic,
            host=d.settings.host,
            port=d.settings.port,
            on_health=context.sink,
            on_count=context.sink,
        )
        for d in devices
    }


# A site counts people at a portal with a camera (kind 'camera') or with such a sensor: both are the
# portal's people counter (role CAMERA), and the portal controller takes either one's counts.
PEOPLE_SENSOR: KindBackend[PeopleSensorSettings] = KindBackend(PeopleSensorSettings, open=_open)
