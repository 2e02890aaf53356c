"""Mail: SMTP delivery to a real server (plain, and STARTTLS with login), the .eml outbox, clear failures."""

import smtplib
import socket
import ssl
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from core.clock import TOKYO
from core.mail import MailDeliveryError, OutboxMailer, SmtpMailer, compose

AT = datetime(2026, 11, 24, 10, 0, tzinfo=TOKYO)
SUBJECT = "【証明書発行サービス】第2パスワードの再設定"
BODY = "以下のURL（ワンタイムURL）にアクセスしてください。\nhttps://madoguchi.example.ac.jp/links/x\n〜①髙﨑〜\n"
USER, PASSWORD = "madoguchi", "s3cret-pass"


def free_port() -> int:
    """A loopback port nothing listens on once this returns."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def japanese_mail(to: str = "taro.yamada@example.ac.jp"):
    return compose(sender="madoguchi <no-reply@madoguchi.invalid>", to=to, subject=SUBJECT, body=BODY, at=AT)


def test_smtp_mailer_delivers_japanese_intact(smtp_server, inbox):
    controller, _ = smtp_server
    SmtpMailer(controller.hostname, controller.port).send(japanese_mail())
    received = inbox.only()
    assert received["Subject"] == SUBJECT
    assert received["To"] == "taro.yamada@example.ac.jp"
    assert received["From"] == "madoguchi <no-reply@madoguchi.invalid>"
    assert received["Auto-Submitted"] == "auto-generated"
    assert received.get_content_charset() == "utf-8"
    assert inbox.body(received).replace("\r\n", "\n") == BODY  # SMTP carries CRLF line ends


def test_outbox_mailer_writes_a_parseable_eml(tmp_path):
    outbox = OutboxMailer(tmp_path / "outbox")
    assert outbox.messages() == []
    outbox.send(japanese_mail())
    [path] = outbox.messages()
    assert path.suffix == ".eml" and path.parent == tmp_path / "outbox"
    parsed = message_from_bytes(path.read_bytes(), policy=policy.default)
    assert parsed["Subject"] == SUBJECT
    assert parsed["To"] == "taro.yamada@example.ac.jp"
    assert parsed.get_body(preferencelist=("plain",)).get_content() == BODY


def test_a_refused_connection_raises(tmp_path):
    port = free_port()  # bound and released: nothing listens there
    with pytest.raises(MailDeliveryError, match=f"127.0.0.1:{port}") as raised:
        SmtpMailer("127.0.0.1", port, timeout=5).send(japanese_mail())
    assert isinstance(raised.value.__cause__, ConnectionRefusedError)


# --- STARTTLS and login -------------------------------------------------------------------------------


def _self_signed(folder: Path) -> tuple[Path, Path]:
    """A throwaway certificate for 127.0.0.1, made with `cryptography`."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    cert, key = folder / "cert.pem", folder / "key.pem"

    private_key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(private_key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                       critical=False)
        # Its own trust anchor: Python 3.13's strict verification wants these extensions present.
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(private_key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(private_key.public_key()),
                       critical=False)
        .sign(private_key, hashes.SHA256()))
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()))
    return cert, key


class Recorder:
    """Keeps each message with whether its session was encrypted and authenticated."""

    def __init__(self) -> None:
        self.received: list[dict[str, object]] = []

    async def handle_DATA(self, server, session, envelope) -> str:  # aiosmtpd's hook name
        self.received.append({"message": message_from_bytes(envelope.content, policy=policy.default),
                              "tls": session.ssl is not None, "authenticated": session.authenticated})
        return "250 OK"


def _authenticator(server, session, envelope, mechanism, auth_data) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        USER.encode(), PASSWORD.encode())
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def tls_server(tmp_path):
    """An aiosmtpd server that requires STARTTLS before anything, and login before mail."""
    cert, key = _self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    recorder = Recorder()
    controller = Controller(recorder, hostname="127.0.0.1", port=free_port(), tls_context=context,
                            require_starttls=True, authenticator=_authenticator, auth_required=True,
                            auth_require_tls=True)
    controller.start()
    yield controller, recorder, cert
    controller.stop()


def trusting(cert: Path) -> ssl.SSLContext:
    """A verifying client context that trusts the test certificate (and nothing else)."""
    return ssl.create_default_context(cafile=str(cert))


def test_starttls_and_login_deliver(tls_server):
    controller, recorder, cert = tls_server
    SmtpMailer(controller.hostname, controller.port, starttls=True, username=USER, password=PASSWORD,
               timeout=10, tls_context=trusting(cert)).send(japanese_mail())
    [received] = recorder.received
    assert received["tls"] is True and received["authenticated"] is True
    assert received["message"]["Subject"] == SUBJECT


def test_wrong_password_is_refused(tls_server):
    controller, recorder, cert = tls_server
    mailer = SmtpMailer(controller.hostname, controller.port, starttls=True, username=USER, password="wrong",
                        tls_context=trusting(cert))
    with pytest.raises(MailDeliveryError) as raised:
        mailer.send(japanese_mail())
    assert isinstance(raised.value.__cause__, smtplib.SMTPAuthenticationError)
    assert recorder.received == []


def test_login_is_never_attempted_over_plain_text(tls_server):
    controller, recorder, _ = tls_server
    # Without STARTTLS the server neither offers AUTH nor accepts mail; the password is never sent in clear.
    mailer = SmtpMailer(controller.hostname, controller.port, username=USER, password=PASSWORD)
    with pytest.raises(MailDeliveryError) as raised:
        mailer.send(japanese_mail())
    assert isinstance(raised.value.__cause__, smtplib.SMTPException)
    assert recorder.received == []


def test_starttls_to_a_server_without_it_raises(smtp_server):
    controller, _ = smtp_server
    with pytest.raises(MailDeliveryError) as raised:
        SmtpMailer(controller.hostname, controller.port, starttls=True).send(japanese_mail())
    assert isinstance(raised.value.__cause__, smtplib.SMTPNotSupportedError)


def test_starttls_refuses_an_untrusted_server_certificate(tls_server):
    controller, recorder, _ = tls_server
    # By default the mailer verifies the certificate: a self-signed one is refused before any login.
    with pytest.raises(MailDeliveryError) as raised:
        SmtpMailer(controller.hostname, controller.port, starttls=True, username=USER, password=PASSWORD,
                   timeout=10).send(japanese_mail())
    assert isinstance(raised.value.__cause__, ssl.SSLCertVerificationError)
    assert recorder.received == []


def test_free_port_is_closed():
    # Guards test_a_refused_connection_raises: a just-released port refuses connections.
    port = free_port()
    with socket.socket() as sock, pytest.raises(ConnectionRefusedError):
        sock.connect(("127.0.0.1", port))
