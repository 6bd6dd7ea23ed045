"""What never leaves the process in clear: passwords in URLs, key-like query parameters, and
credential headers. Every message, header line and report that shows a runner URL goes through
:func:`redact_url` (or :func:`redact_text` for free text that may hold one); cassettes use
:func:`redact_headers` too."""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "api-key", "x-api-key", "cookie", "set-cookie"})
"""Headers whose values are credentials (compared lowercased)."""
_SECRET_PARAMETER = re.compile(r"key|token|secret|password|passwd|signature|auth", re.IGNORECASE)
_URL_IN_TEXT = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>()]*[^\s'\"<>().,;:!?]")


def is_secret_parameter(name: str) -> bool:
    """``api_key``, ``key``, ``access_token``, ``X-Amz-Signature``, ``password``...: values to hide."""
    return bool(_SECRET_PARAMETER.search(name))


def redact_url(url: str) -> str:
    """``http://user:pw@host/x?api_key=k&a=1`` -> ``http://user:***@host/x?api_key=***&a=1``.

    The user name stays (it helps tell runners apart); a URL that does not parse comes back with
    anything after ``:`` and before ``@`` in its authority masked, so nothing leaks even then."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, _, host = netloc.rpartition("@")
            user, has_password, _ = userinfo.partition(":")
            netloc = f"{user}:{MASK}@{host}" if has_password else f"{userinfo}@{host}"
        query = parts.query
        if query:
            pairs = parse_qsl(query, keep_blank_values=True)
            if any(is_secret_parameter(name) for name, _ in pairs):
                query = urlencode([(name, MASK if is_secret_parameter(name) else value) for name, value in pairs], safe="*")
        if (netloc, query) == (parts.netloc, parts.query):
            return url  # nothing to hide: as given (urlunsplit would drop the // of ``unix:///path``)
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    except ValueError:
        return re.sub(r"(//[^/@:]*:)[^/@]*@", rf"\g<1>{MASK}@", url)


def redact_text(text: str) -> str:
    """Every URL inside free text (an exception message, a probe's detail) redacted."""
    if "://" not in text:
        return text
    return _URL_IN_TEXT.sub(lambda found: redact_url(found.group(0)), text)


def redact_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """Credential headers' values masked, every other header kept as it was."""
    return [(name, MASK if name.lower() in SECRET_HEADERS else value) for name, value in headers]
