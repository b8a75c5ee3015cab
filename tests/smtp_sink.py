"""A real SMTP server on loopback for the tests (aiosmtpd)."""

from __future__ import annotations

from aiosmtpd.controller import Controller


class LoopbackController(Controller):
    """aiosmtpd's threaded controller on 127.0.0.1, on the port the OS chose (port 0):
    the port is read from the bound socket before the controller's self-check connects
    to it (``Controller`` itself would connect to port 0)."""

    def _trigger_server(self) -> None:
        assert self.server is not None
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()
