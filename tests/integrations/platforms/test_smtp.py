"""The SMTP adapter against a real SMTP server (aiosmtpd) on loopback."""

from email import message_from_bytes, policy

from integrations.platforms import adapter
from integrations.platforms.smtp import DELIVERY_HEADER, SmtpAdapter
from tests.conftest import free_port

from .conftest import make_message


def test_smtp_delivers_both_parts_and_the_headers(smtp_server):
    results = SmtpAdapter(from_email="news@example.com").send([make_message(1), make_message(2)])

    assert [(r.recipient_id, r.status) for r in results] == [("u1", "sent"), ("u2", "sent")]
    assert len(smtp_server.received) == 2
    rcpts, raw = smtp_server.received[0]
    assert rcpts == ["user1@example.com"]
    mime = message_from_bytes(raw, policy=policy.default)
    assert mime["Subject"] == "Picks for user 1"
    assert mime["From"] == "news@example.com"
    assert mime["List-Unsubscribe"] == "<https://example.com/u/1>"
    assert mime["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert mime[DELIVERY_HEADER] == "d1"
    assert mime["Message-ID"] == results[0].message_id
    assert mime.get_content_type() == "multipart/alternative"
    assert mime.get_body(("plain",)).get_content().strip() == "Hello 1"
    assert mime.get_body(("html",)).get_content().strip() == "<p>Hello 1</p>"


def test_smtp_refusals_are_per_recipient(smtp_server):
    messages = [
        make_message(1),
        make_message(2, email="hard@example.com"),
        make_message(3, email="soft@example.com"),
    ]
    results = SmtpAdapter().send(messages)

    assert [r.status for r in results] == ["sent", "failed", "retryable"]
    assert "550" in results[1].error and "450" in results[2].error
    assert [rcpts for rcpts, _ in smtp_server.received] == [["user1@example.com"]]


def test_smtp_server_down_is_retryable(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    results = SmtpAdapter().send([make_message(1), make_message(2)])
    assert {r.status for r in results} == {"retryable"}
    assert "cannot connect" in results[0].error


def test_the_default_adapter_follows_the_email_backend_setting(settings, tmp_path):
    settings.EMAIL_PLATFORM = {}
    settings.EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    settings.EMAIL_FILE_PATH = str(tmp_path)
    results = adapter().send([make_message(1)])
    assert results[0].status == "sent"
    (written,) = tmp_path.iterdir()
    assert b"List-Unsubscribe: <https://example.com/u/1>" in written.read_bytes()
