"""No server-side request forgery: femo.sources.http refuses loopback, private, link-local ...
addresses after DNS resolution, on every redirect hop, and connects only to what it checked.

Names resolve through :class:`FakeDns` (``socket.getaddrinfo`` monkeypatched), so a name can
stand for any address without the internet; the servers are the scripted one on 127.0.0.1.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from femo.platform.settings import HttpSettings, SettingsError, load_settings
from femo.sources import http

from .httpserver import Reply, ScriptedServer

ROOT = Path(__file__).resolve().parents[1]
SECRET = "sk-test-91c3e0aa5d"

#: Fast settings that refuse every address that is not public (the default allow-list).
STRICT = HttpSettings(
    connect_timeout_s=1.0,
    read_timeout_s=1.0,
    retries=0,
    total_timeout_s=5.0,
    max_bytes=100_000,
)
#: The same, with the scripted server's loopback admitted, as the tests and the mirror need.
LOOPBACK = STRICT.model_copy(update={"allow_networks": ("127.0.0.0/8",)})

PUBLIC = "93.184.215.14"  # example.com's address: public, never connected to here
METADATA = "169.254.169.254"


class FakeDns:
    """``socket.getaddrinfo`` that answers chosen names with chosen addresses (each name's
    answers in turn, the last one repeating); other names and numeric hosts go to the real
    resolver, so nothing here needs the internet."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.answers: dict[str, list[list[str]]] = {}
        self.asked: list[str] = []

    def add(self, name: str, *answers: list[str]) -> None:
        """Resolve ``name`` to ``answers[0]``, then ``answers[1]``, ..."""
        self.answers[name] = list(answers)

    def __call__(
        self, host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0
    ) -> list[tuple[Any, ...]]:
        if host not in self.answers:
            return self.real(host, port, family, type, proto, flags)  # type: ignore[no-any-return]
        answers = self.answers[host]
        addresses = answers[min(self.asked.count(host), len(answers) - 1)]
        self.asked.append(host)
        found = []
        for text in addresses:
            v6 = ipaddress.ip_address(text).version == 6
            if family not in (socket.AF_UNSPEC, socket.AF_INET6 if v6 else socket.AF_INET):
                continue
            sockaddr = (text, int(port or 0), 0, 0) if v6 else (text, int(port or 0))
            kind = socket.AF_INET6 if v6 else socket.AF_INET
            found.append((kind, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", sockaddr))
        if not found:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return found


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> FakeDns:
    fake = FakeDns(socket.getaddrinfo)
    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return fake


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as s:
        yield s


def port_of(server: ScriptedServer) -> int:
    return int(server.url.rsplit(":", 1)[1])


def get(url: str, settings: HttpSettings, **kw: Any) -> http.Fetched:
    with http.session(settings) as session:
        return http.get(session, url, settings, secrets=[SECRET], **kw)


def refused(url: str, settings: HttpSettings = STRICT, **kw: Any) -> http.FetchError:
    with pytest.raises(http.FetchError) as info:
        get(url, settings, **kw)
    return info.value


# Pure parts ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        (METADATA, "link-local"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.251", "multicast"),
        ("100.64.0.1", "not global"),  # carrier-grade NAT
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("fe80::1", "link-local"),
        ("fc00::1", "private"),
        ("fd12:3456::1", "private"),
        ("ff02::1", "multicast"),
        ("fec0::1", "site-local"),
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
        (f"::ffff:{METADATA}", "link-local"),
        ("::ffff:10.0.0.1", "private"),
        ("2002:a9fe:a9fe::1", "link-local"),  # 6to4 of 169.254.169.254
        ("64:ff9b::a9fe:a9fe", "link-local"),  # NAT64 of 169.254.169.254
        (PUBLIC, None),
        ("8.8.8.8", None),
        ("2606:4700:4700::1111", None),
        ("::ffff:8.8.8.8", None),
    ],
)
def test_address_kinds(address: str, kind: str | None) -> None:
    assert http.address_kind(ipaddress.ip_address(address)) == kind


def test_the_allow_list_admits_its_networks_only() -> None:
    loopback = http.allowed_networks(LOOPBACK)
    assert http.refusal(ipaddress.ip_address("127.0.0.1"), loopback) is None
    assert http.refusal(ipaddress.ip_address("::ffff:127.0.0.1"), loopback) is None
    assert http.refusal(ipaddress.ip_address("::1"), loopback) == "loopback"  # v6: not listed
    assert http.refusal(ipaddress.ip_address(METADATA), loopback) == "link-local"
    assert http.refusal(ipaddress.ip_address("10.0.0.5"), ()) == "private"
    assert http.refusal(ipaddress.ip_address(PUBLIC), ()) is None


def test_allow_networks_settings() -> None:
    assert HttpSettings().allow_networks == ()  # the model's default admits nothing
    cluster = load_settings(ROOT / "conf" / "cluster.yaml", environ={"FEMO_HOME": "/tmp/x"})
    assert cluster.http.allow_networks == ()
    local = load_settings(ROOT / "conf" / "local.yaml", environ={"FEMO_HOME": "/tmp/x"})
    assert local.http.allow_networks == ()  # the demo and tests allow the mirror's loopback
    one = load_settings(None, ["http.allow_networks=10.1.2.3/32"])
    assert one.http.allow_networks == ("10.1.2.3/32",)
    listed = load_settings(None, ["http.allow_networks=[127.0.0.0/8, 'fd00::/8']"])
    assert listed.http.allow_networks == ("127.0.0.0/8", "fd00::/8")
    with pytest.raises(SettingsError, match=r"http\.allow_networks: .*has host bits set"):
        load_settings(None, ["http.allow_networks=[127.0.0.1/8]"])
    with pytest.raises(SettingsError, match=r"http\.allow_networks: .*CIDR"):
        load_settings(None, ["http.allow_networks=[metadata]"])


# Refused after DNS resolution ----------------------------------------------------------------


def test_a_name_resolving_to_loopback_is_refused(server: ScriptedServer, dns: FakeDns) -> None:
    server.route("/a.jpg", Reply(200, b"private"))
    dns.add("images.example", ["127.0.0.1"])
    error = refused(f"http://images.example:{port_of(server)}/a.jpg?key={SECRET}")
    assert error.reason == http.REFUSED_ADDRESS
    assert str(error) == (
        f"refused http://images.example:{port_of(server)}/a.jpg?key=***: images.example "
        "resolves to 127.0.0.1 (loopback), not in http.allow_networks"
    )
    assert server.requests == []


def test_literal_addresses_are_refused_too(server: ScriptedServer, dns: FakeDns) -> None:
    route = server.route("/a.jpg", Reply(200, b"private"))
    assert "127.0.0.1 (loopback)" in str(refused(route))
    assert "::1 (loopback)" in str(refused(f"http://[::1]:{port_of(server)}/a.jpg", LOOPBACK))
    assert f"{METADATA} (link-local)" in str(refused(f"http://{METADATA}/latest/meta-data/"))
    assert server.requests == []


def test_any_refused_address_of_a_name_refuses_it(dns: FakeDns) -> None:
    dns.add("mixed.example", [PUBLIC, "10.0.0.7"])
    assert "mixed.example resolves to 10.0.0.7 (private)" in str(
        refused("http://mixed.example/a.jpg")
    )
    dns.add("mapped.example", [f"::ffff:{METADATA}"])
    mapped = ipaddress.ip_address(f"::ffff:{METADATA}")  # shown as ::ffff:a9fe:a9fe by 3.11
    assert f"resolves to {mapped} (= {METADATA}, link-local)" in str(
        refused("http://mapped.example/latest/meta-data/")
    )


def test_an_allowed_loopback_server_is_fetched(server: ScriptedServer, dns: FakeDns) -> None:
    route = server.route("/a.jpg", Reply(200, b"fine"))
    assert get(route, LOOPBACK).content == b"fine"
    dns.add("mirror.example", ["127.0.0.1"])
    assert get(f"http://mirror.example:{port_of(server)}/a.jpg", LOOPBACK).content == b"fine"
    assert server.hits("/a.jpg") == 2


def test_a_name_rebound_between_check_and_connect_is_refused(
    server: ScriptedServer, dns: FakeDns
) -> None:
    """The first answer (the check before the request) is public, the second (when the
    connection is opened) loopback: the connection must use a checked address."""
    server.route("/a.jpg", Reply(200, b"private"))
    dns.add("rebind.example", [PUBLIC], ["127.0.0.1"])
    error = refused(f"http://rebind.example:{port_of(server)}/a.jpg")
    assert error.reason == http.REFUSED_ADDRESS
    assert "rebind.example resolves to 127.0.0.1 (loopback)" in str(error)
    assert dns.asked == ["rebind.example", "rebind.example"]
    assert server.requests == []


# Every redirect hop --------------------------------------------------------------------------


def test_a_redirect_to_the_metadata_service_is_refused_at_the_hop(
    server: ScriptedServer, dns: FakeDns
) -> None:
    start = server.route(
        "/img/1.jpg", Reply(302, headers={"Location": f"http://{METADATA}/latest/meta-data/"})
    )
    error = refused(start, LOOPBACK)
    assert error.reason == http.REFUSED_ADDRESS
    assert str(error) == (
        f"refused http://{METADATA}/latest/meta-data/ (redirected from {start}): "
        f"{METADATA} (link-local), not in http.allow_networks"
    )
    dns.add("metadata.example", [METADATA])
    named = server.route(
        "/img/2.jpg", Reply(301, headers={"Location": "http://metadata.example/?key=x"})
    )
    error = refused(named, LOOPBACK)
    assert error.reason == http.REFUSED_ADDRESS
    assert "metadata.example resolves to 169.254.169.254 (link-local)" in str(error)
    assert "key=***" in str(error)


def test_a_redirect_to_a_private_host_is_refused_after_an_allowed_one(
    server: ScriptedServer, dns: FakeDns
) -> None:
    """Two hops: loopback (allowed) -> loopback (allowed) -> a private address (refused)."""
    dns.add("intranet.example", ["192.168.0.10"])
    server.route("/b", Reply(307, headers={"Location": "http://intranet.example/admin"}))
    start = server.route("/a", Reply(302, headers={"Location": "/b"}))
    error = refused(start, LOOPBACK)
    assert (error.reason, "intranet.example resolves to 192.168.0.10 (private)") == (
        http.REFUSED_ADDRESS,
        str(error).split(": ", 1)[1].split(",")[0],
    )
    assert server.hits("/a") == server.hits("/b") == 1


def test_redirects_are_followed_hop_by_hop_without_the_headers(server: ScriptedServer) -> None:
    server.route("/final.jpg", Reply(200, b"image"))
    server.route("/hop2", Reply(308, headers={"Location": "/final.jpg"}))
    start = server.route("/hop1", Reply(301, headers={"Location": f"{server.url}/hop2"}))
    fetched = get(start, LOOPBACK, headers={"X-Api-Key": SECRET})
    assert (fetched.url, fetched.content) == (f"{server.url}/final.jpg", b"image")
    sent = {r.path: r.headers.get("X-Api-Key") for r in server.requests}
    assert sent == {"/hop1": SECRET, "/hop2": None, "/final.jpg": None}


def test_redirects_are_bounded(server: ScriptedServer) -> None:
    start = server.route("/loop", Reply(302, headers={"Location": "/loop"}))
    error = refused(start, LOOPBACK.model_copy(update={"max_redirects": 2}))
    assert (error.reason, error.status) == (http.HTTP_ERROR, 302)
    assert str(error) == f"more than 2 redirects from {start} (next: {start})"
    assert server.hits("/loop") == 3


def test_a_redirect_to_another_scheme_is_not_followed(server: ScriptedServer) -> None:
    start = server.route("/a", Reply(302, headers={"Location": "file:///etc/passwd"}))
    error = refused(start, LOOPBACK)
    assert (error.reason, error.status) == (http.HTTP_ERROR, 302)
    assert str(error) == f"redirect from {start} to file:///etc/passwd: not http(s)"


# TLS keeps the name while connecting to the checked address ----------------------------------


def _self_signed(name: str, folder: Path) -> tuple[Path, Path]:
    """A certificate for ``name`` (its own CA) and its key, as PEM files."""
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


class _Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = self.headers.get("Host", "").encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_https_to_a_checked_address_verifies_the_name(
    tmp_path: Path, dns: FakeDns, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The connection goes to the checked address, while the Host header, SNI and the
    certificate check keep the name (the certificate names img.example, not 127.0.0.1)."""
    for bundle in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):  # they would beat session.verify
        monkeypatch.delenv(bundle, raising=False)
    cert, key = _self_signed("img.example", tmp_path)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    dns.add("img.example", ["127.0.0.1"])
    url = f"https://img.example:{server.server_address[1]}/a.jpg"
    try:
        with http.session(LOOPBACK) as session:
            session.verify = str(cert)
            assert http.get(session, url, LOOPBACK).content == (
                f"img.example:{server.server_address[1]}".encode()
            )
        with http.session(STRICT) as session:
            session.verify = str(cert)
            with pytest.raises(http.FetchError) as info:
                http.get(session, url, STRICT)
        assert info.value.reason == http.REFUSED_ADDRESS
    finally:
        server.shutdown()
        server.server_close()
