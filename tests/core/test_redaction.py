"""No secret in a URL, a message or a header survives redaction."""

from __future__ import annotations

import pytest

from pytest_dmr import errors
from pytest_dmr.protocol import addresses
from pytest_dmr.redaction import redact_headers, redact_text, redact_url


@pytest.mark.parametrize(("url", "shown"), [
    ("http://bob:hunter2@127.0.0.1:12434/engines/v1", "http://bob:***@127.0.0.1:12434/engines/v1"),
    ("http://bob@127.0.0.1:12434", "http://bob@127.0.0.1:12434"),
    ("http://127.0.0.1:12434/v1?api_key=k1&Access_Token=t&keep=1", "http://127.0.0.1:12434/v1?api_key=***&Access_Token=***&keep=1"),
    ("http://127.0.0.1:12434", "http://127.0.0.1:12434"),
    ("http://u:p%40ss@[::1", "http://u:***@[::1"),
    ("unix:///var/run/docker.sock", "unix:///var/run/docker.sock"),  # nothing to hide: kept as given
])
def test_urls(url: str, shown: str) -> None:
    assert redact_url(url) == shown
    assert "hunter2" not in redact_url(url) and "p%40ss" not in redact_url(url)


def test_text_with_several_urls() -> None:
    text = "tried http://a:one@h1:1/x and https://b:two@h2/y?token=three, then gave up"
    assert redact_text(text) == "tried http://a:***@h1:1/x and https://b:***@h2/y?token=***, then gave up"


def test_headers() -> None:
    headers = [("Authorization", "Bearer sk-1"), ("x-api-key", "k"), ("Api-Key", "k2"), ("Accept", "text/event-stream")]
    assert redact_headers(headers) == [("Authorization", "***"), ("x-api-key", "***"), ("Api-Key", "***"),
                                       ("Accept", "text/event-stream")]


def test_errors_never_show_a_password() -> None:
    error = errors.RunnerUnavailableError("nothing answered at http://bob:hunter2@127.0.0.1:1", runner_url="http://bob:hunter2@127.0.0.1:1",
                                          model="ai/smollm2", hint="Check http://bob:hunter2@127.0.0.1:1")
    assert "hunter2" not in str(error)
    assert error.runner_url == "http://bob:***@127.0.0.1:1"
    with pytest.raises(errors.ConfigurationError) as raised:
        addresses.parse_runner_url("ftp://bob:hunter2@127.0.0.1")
    assert "hunter2" not in str(raised.value)
