"""Loopback connections whose answers are timed by the kernel, not by the client that reads them.

Ten thousand answers arriving at once queue up in a Python client: the time it reads the last
one says more about the client than about the server. With ``SO_TIMESTAMPNS`` the kernel stamps
each received packet (``man 7 socket``); on loopback the stamp is taken as the server's
``send`` hands the packet to the loopback device (``net_timestamp_check`` in ``netif_rx``), so
it is the instant the server wrote the answer, whenever the client gets round to reading it.
"""

from __future__ import annotations

import select
import socket
import struct
import time
from dataclasses import dataclass

#: ``SO_TIMESTAMPNS`` (also the control message type, ``SCM_TIMESTAMPNS``) on Linux.
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
_TIMESPEC = struct.Struct("@qq")


@dataclass(frozen=True, slots=True)
class Answer:
    status: int  # 0: the connection closed before a whole answer
    written: float  # kernel stamp of the packet that completed the answer (epoch seconds)
    read: float  # when this client read it (epoch seconds)


class StampedConns:
    """``n`` keep-alive connections to 127.0.0.1:``port`` that each send one request and wait."""

    def __init__(self, port: int, n: int) -> None:
        self.socks: list[socket.socket] = []
        for _ in range(n):
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            sock.setblocking(False)
            self.socks.append(sock)

    def send(self, path: str, version: str = "1.1") -> None:
        """``version`` may carry header lines after it (``"1.0\\r\\nConnection: keep-alive"``)."""
        request = f"GET {path} HTTP/{version}\r\nHost: 127.0.0.1\r\n\r\n".encode()
        for sock in self.socks:
            sock.send(request)  # a few dozen bytes into an empty send buffer: never short

    def collect(self, timeout_s: float) -> list[Answer]:
        """Each connection's answer (status 0 for one that closed or did not answer in time)."""
        by_fd = {sock.fileno(): sock for sock in self.socks}
        buffers = {fd: bytearray() for fd in by_fd}
        answers: dict[int, Answer] = {}
        poller = select.epoll(sizehint=len(by_fd))
        for fd in by_fd:
            poller.register(fd, select.EPOLLIN)
        deadline = time.monotonic() + timeout_s
        ancillary = socket.CMSG_SPACE(_TIMESPEC.size)
        try:
            while len(answers) < len(by_fd) and time.monotonic() < deadline:
                for fd, _ in poller.poll(0.2):
                    answer = self._read(by_fd[fd], buffers[fd], ancillary)
                    if answer is not None:
                        answers[fd] = answer
                        poller.unregister(fd)
        finally:
            poller.close()
        return [answers.get(fd, Answer(0, float("nan"), float("nan"))) for fd in by_fd]

    @staticmethod
    def _read(sock: socket.socket, buffer: bytearray, ancillary: int) -> Answer | None:
        stamp = float("nan")
        while True:
            try:
                data, cmsgs, _, _ = sock.recvmsg(1 << 16, ancillary)
            except BlockingIOError:
                break
            if not data:
                return Answer(0, stamp, time.time())
            buffer += data
            for level, kind, payload in cmsgs:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    seconds, nanos = _TIMESPEC.unpack(payload[: _TIMESPEC.size])
                    stamp = seconds + nanos / 1e9
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            return None
        head = bytes(buffer[:end]).lower()
        at = head.find(b"content-length:")
        length = int(head[at + 15 :].split(b"\r\n", 1)[0]) if at >= 0 else 0
        if len(buffer) < end + 4 + length:
            return None
        return Answer(int(head[9:12]), stamp, time.time())

    def close(self) -> None:
        for sock in self.socks:
            sock.close()
