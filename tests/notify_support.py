"""Real receivers for alerts on 127.0.0.1: an SMTP server (aiosmtpd) and an HTTP receiver that
keeps what it was POSTed, and a hub home whose [notify] points at them."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import select

from bhhub.exchange.alerts import raise_alert
from bhhub.store import schema


class _Receiver(BaseHTTPRequestHandler):
    failures_left = 0
    redirect = False
    delay = 0.0  # seconds before answering: a slow receiver, so two senders overlap
    requests = 0
    bodies: list

    def do_POST(self):  # noqa: N802 - the stdlib's name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        cls = type(self)
        cls.requests += 1
        time.sleep(cls.delay)
        if cls.redirect:
            self.send_response(302)
            self.send_header("Location", "/landing")
        elif cls.failures_left > 0:
            cls.failures_left -= 1
            self.send_response(503)
        else:
            cls.bodies.append((body, self.headers.get("Authorization")))
            self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receivers():
    aiosmtpd = pytest.importorskip("aiosmtpd.controller")
    from aiosmtpd.handlers import Message

    mails: list = []

    class Keep(Message):
        def handle_message(self, message):
            mails.append(message)

    with socket.socket() as probe:  # aiosmtpd checks its server by connecting to the port it was given
        probe.bind(("127.0.0.1", 0))
        smtp_port = probe.getsockname()[1]
    smtp = aiosmtpd.Controller(Keep(message_class=None), hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    handler = type("Receiver", (_Receiver,), {"bodies": [], "failures_left": 0, "redirect": False, "requests": 0,
                                          "delay": 0.0})
    http = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    yield {"smtp_port": smtp_port, "mails": mails, "http": http, "handler": handler}
    http.shutdown()
    http.server_close()
    smtp.stop()


def notify_home(hub_home: Path, receivers, token: bool = False) -> Path:
    config = hub_home / "bhhub.toml"
    config.write_text(config.read_text() + f"""
[notify.email]
host = "127.0.0.1"
port = {receivers['smtp_port']}
starttls = false
sender = "bhhub@practice.example"
to = ["billing@practice.example", "owner@practice.example"]
timeout = 5

[notify.webhook]
url = "http://127.0.0.1:{receivers['http'].server_address[1]}/hook"
timeout = 5
{'token_env = "BHHUB_TEST_WEBHOOK_TOKEN"' if token else ""}
""")
    return hub_home


def raise_one(hub, key: str) -> int:
    with hub.store.session() as session:
        raise_alert(session, key, key.split(":")[0], f"{key}: something a person must know")
        session.commit()
        return session.scalar(select(schema.Alert.id).where(schema.Alert.key == key))


class DripServer:
    """A server on 127.0.0.1 that accepts and then answers one line a second, for ever: an SMTP
    greeting that never ends (``220-`` continuation lines) or HTTP headers that never end. Every
    read a client makes returns within its timeout, so only a deadline on the whole send stops it.
    ``heal()`` drops the hanging connections and answers the next HTTP requests with a 204."""

    def __init__(self, kind: str, interval: float = 1.0):
        self.kind, self.interval = kind, interval
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections = 0
        self.connected = threading.Event()
        self.bodies: list = []
        self.healed = False
        self._clients: list[socket.socket] = []
        self._closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            self._clients.append(client)
            self.connected.set()
            threading.Thread(target=self._answer if self.healed else self._drip, args=(client,), daemon=True).start()

    def _drip(self, client: socket.socket) -> None:
        first, then = ((b"220-drip.example greets you\r\n", b"220-still greeting\r\n") if self.kind == "smtp"
                       else (b"HTTP/1.1 200 OK\r\n", b"X-Drip: 1\r\n"))
        try:
            client.sendall(first)
            while not self._closed.wait(self.interval):
                client.sendall(then)
        except OSError:
            pass  # the client gave up, or heal() dropped it

    def _answer(self, client: socket.socket) -> None:
        with client, client.makefile("rb") as reader:
            length = 0
            while (line := reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            self.bodies.append(json.loads(reader.read(length)))
            client.sendall(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    def _drop_clients(self) -> None:
        for client in self._clients:
            try:
                client.shutdown(socket.SHUT_RDWR)
                client.close()
            except OSError:
                pass
        self._clients.clear()

    def heal(self) -> None:
        self.healed = True
        self._drop_clients()

    def close(self) -> None:
        self._closed.set()
        self.listener.close()
        self._drop_clients()


@pytest.fixture
def drips():
    servers = {"smtp": DripServer("smtp"), "http": DripServer("http")}
    yield servers
    for server in servers.values():
        server.close()
