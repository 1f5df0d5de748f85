"""Body size limits through the real app: 413 naming the limit, decided while the body is read. Over a real
socket: a Content-Length over the limit is answered before any of the body is sent, and a streamed body
without a length is cut off soon after the limit, long before 25 MB have gone in."""

from __future__ import annotations

import dataclasses
import json
import select
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import APIRouter, FastAPI, UploadFile
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from api import ApiSettings, create_app
from api.deps import Administrator
from api.limits import accepts_images
from api.settings import MIB
from tests.api.conftest import PASSWORD, LiveServer, Tokens, token_for

TOO_BIG = 25 * MIB


def padded_venue(size: int) -> bytes:
    """A venue whose name pads the JSON to `size` bytes (valid but for the name's length)."""
    head = b'{"code":"big","ceiling":"internal","name":"'
    return head + b"x" * (size - len(head) - 2) + b'"}'


def test_json_over_a_megabyte_is_413_naming_the_limit(client: TestClient, tokens: Tokens) -> None:
    headers = {**tokens["admin"], "content-type": "application/json"}
    under = client.post("/api/admin/venues", content=padded_venue(MIB - 1000), headers=headers)
    assert under.status_code == 422  # read and validated: the name is too long, not the body
    over = client.post("/api/admin/venues", content=padded_venue(MIB + 1), headers=headers)
    assert over.status_code == 413
    assert over.json() == {"detail": f"the request body is larger than this route accepts ({MIB} bytes at most)"}
    assert over.headers["x-content-type-options"] == "nosniff"


def test_the_limits_are_settings(settings: ApiSettings, factory: sessionmaker[Session]) -> None:
    small = dataclasses.replace(settings, max_body_bytes=4096, max_image_bytes=8192)
    with TestClient(create_app(small, session_factory=factory)) as client:
        headers = {**token_for(client, "admin"), "content-type": "application/json"}
        answer = client.post("/api/admin/venues", content=padded_venue(5000), headers=headers)
    assert answer.status_code == 413 and "(4096 bytes at most)" in answer.json()["detail"]
    with pytest.raises(ValueError, match="max_image_bytes"):
        dataclasses.replace(settings, max_image_bytes=100)


def test_streamed_json_without_a_length_is_cut_off_at_the_limit(client: TestClient, tokens: Tokens) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(TOO_BIG // 65536):
            yield b" " * 65536

    headers = {**tokens["admin"], "content-type": "application/json"}
    assert client.post("/api/admin/venues", content=chunks(), headers=headers).status_code == 413


def test_forms_and_sign_in_are_limited_too(client: TestClient) -> None:
    answer = client.post("/api/token", data={"username": "gus", "password": "x" * (2 * MIB)})
    assert answer.status_code == 413
    page = client.post("/login", data={"username": "gus", "password": "x", "csrf_token": "y" * (2 * MIB)})
    assert page.status_code == 413


def test_a_route_that_takes_images_accepts_a_photo_up_to_the_image_limit(app: FastAPI, tokens: Tokens) -> None:
    # No route of this version takes a photo yet: the test adds one, marked as the routes that will are.
    photos = APIRouter()

    @photos.post("/api/test/photo")
    @accepts_images
    async def photo(file: UploadFile, _user: Administrator) -> dict[str, int]:
        return {"bytes": len(await file.read())}

    app.include_router(photos)
    with TestClient(app) as client:
        headers = token_for(client, "admin")
        five_mb = client.post("/api/test/photo", files={"file": ("label.jpg", b"\xff" * 5 * MIB)}, headers=headers)
        assert five_mb.status_code == 200 and five_mb.json() == {"bytes": 5 * MIB}
        too_big = client.post("/api/test/photo", files={"file": ("label.jpg", b"\xff" * TOO_BIG)}, headers=headers)
        assert too_big.status_code == 413 and f"({20 * MIB} bytes at most)" in too_big.json()["detail"]
        # The JSON routes keep their own limit.
        json_headers = {**headers, "content-type": "application/json"}
        assert client.post("/api/admin/venues", content=padded_venue(2 * MIB), headers=json_headers).status_code == 413


def _connect(server: LiveServer) -> socket.socket:
    url = urlsplit(server.url)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)  # keep our side's buffering small
    sock.settimeout(10)
    sock.connect((url.hostname, url.port))
    return sock


def _response(sock: socket.socket) -> tuple[int, dict[str, object]]:
    """Status and JSON body of one HTTP/1.1 answer with a Content-Length."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    length = next(int(line.split(":")[1]) for line in lines if line.lower().startswith("content-length:"))
    while len(body) < length:
        body += sock.recv(65536)
    return int(lines[0].split()[1]), json.loads(body)


def _request_head(server: LiveServer, bearer: str, extra: str) -> bytes:
    host = urlsplit(server.url).netloc
    return (
        f"POST /api/admin/venues HTTP/1.1\r\nHost: {host}\r\nAuthorization: {bearer}\r\n"
        f"Content-Type: application/json\r\n{extra}\r\n"
    ).encode()


@pytest.fixture
def bearer(live_server: LiveServer) -> str:
    answer = httpx.post(f"{live_server.url}/api/token", data={"username": "admin", "password": PASSWORD})
    return f"Bearer {answer.json()['access_token']}"


def test_a_declared_25_mb_body_is_refused_before_any_of_it_is_sent(live_server: LiveServer, bearer: str) -> None:
    with _connect(live_server) as sock:
        # The client waits to be invited (100 Continue) before sending the body; it never is.
        sock.sendall(_request_head(live_server, bearer, f"Content-Length: {TOO_BIG}\r\nExpect: 100-continue\r\n"))
        status, body = _response(sock)
    assert status == 413
    assert "bytes at most" in str(body["detail"])


def test_a_streamed_25_mb_body_is_cut_off_soon_after_the_limit(live_server: LiveServer, bearer: str) -> None:
    chunk = b" " * 65536
    frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    sent = 0
    pending = memoryview(b"")
    with _connect(live_server) as sock:
        sock.sendall(_request_head(live_server, bearer, "Transfer-Encoding: chunked\r\n"))
        sock.setblocking(False)
        while sent < TOO_BIG:
            readable, writable, _ = select.select([sock], [sock], [], 10)
            if readable:
                break  # the server has answered
            if writable:
                pending = pending or memoryview(frame)
                try:
                    done = sock.send(pending)
                except BlockingIOError:
                    continue
                sent, pending = sent + done, pending[done:]
        sock.setblocking(True)
        status, body = _response(sock)
    assert status == 413 and "bytes at most" in str(body["detail"])
    # What was sent past the limit sat in socket buffers: the server stopped reading at the limit.
    assert sent < 4 * MIB, sent  # measured: about 1.6 MB (the limit, then what the buffers held)
