import logging

from keyguard.server.access_log import RedactQueryStrings


def record(path: str) -> logging.LogRecord:
    return logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1,
        '%s - "%s %s HTTP/%s" %d', ("127.0.0.1:5", "GET", path, "1.1", 200), None,
    )  # fmt: skip


def test_signed_link_query_never_reaches_the_access_log():
    r = record("/v1/photos/pho_1/download?expires=1&signature=abcdef0123")
    RedactQueryStrings().filter(r)
    line = r.getMessage()
    assert "abcdef0123" not in line
    assert "/v1/photos/pho_1/download?[redacted]" in line


def test_paths_without_query_are_untouched():
    r = record("/v1/sessions/sess_1")
    RedactQueryStrings().filter(r)
    assert "/v1/sessions/sess_1 HTTP/1.1" in r.getMessage()
