"""A small ctypes binding to libsrt (Haivision SRT 1.5, Debian's ``libsrt1.5-openssl``).

Only what a live listener needs: sockets, options, bind/listen/accept, the listener callback
(which sees the stream ID before the handshake completes), non-blocking message reads and
``srt_epoll``; and, for self-test publishers, ``connect`` and ``send``. SRT itself (ARQ,
TSBPD, encryption) stays in libsrt; nothing here touches UDP. Every call that fails raises
``SrtError`` with libsrt's own code and message. The functions block only as libsrt documents
(``epoll_uwait`` up to its timeout, ``connect`` for the handshake); the server calls them from
its one I/O thread, never from the event loop.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import socket
import struct
from collections.abc import Callable
from functools import cache
from typing import Any

LIBRARY_NAMES = ("libsrt-openssl.so.1.5", "libsrt.so.1.5", "libsrt-gnutls.so.1.5")

# srt.h: enum SRT_SOCKOPT
SRTO_RCVSYN = 2
SRTO_SNDSYN = 1
SRTO_LATENCY = 23
SRTO_PASSPHRASE = 26
SRTO_STATE = 17
SRTO_RCVLATENCY = 43
SRTO_STREAMID = 46
SRTO_TRANSTYPE = 50
SRTO_ENFORCEDENCRYPTION = 53
SRTO_PEERIDLETIMEO = 55
SRTT_LIVE = 0

# srt.h: enum SRT_EPOLL_OPT
EPOLL_IN = 0x1
EPOLL_ERR = 0x8

# srt.h: SRT_SOCKSTATUS
SRTS_CONNECTED = 5
SRTS_BROKEN = 6

# srt.h: error codes (1000 * major + minor)
EASYNCRCV = 6002
ECONNLOST = 2001
EINVSOCK = 5004

# access_control.h: rejection reasons a listener callback may set (SRT_REJX_*)
REJX_BAD_REQUEST = 1400
REJX_UNAUTHORIZED = 1401
REJX_OVERLOAD = 1402
REJX_FORBIDDEN = 1403
REJX_NOTFOUND = 1404
REJX_BAD_MODE = 1405
REJX_CONFLICT = 1409

#: SRT live mode payloads are at most 1456 bytes (SRT_LIVE_MAX_PLSIZE); 1316 = 7 TS packets.
MAX_MESSAGE = 1500

INVALID_SOCK = -1

#: ``int (*)(void* opaque, SRTSOCKET ns, int hsversion, const sockaddr* peer, const char* sid)``
ListenCallbackType = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p
)


class SrtError(OSError):
    """A libsrt call failed; ``code`` is libsrt's (e.g. 6002 = no data yet, 2001 = lost)."""

    def __init__(self, call: str, code: int, message: str) -> None:
        super().__init__(code, f"{call}: {message} (SRT error {code})")
        self.code = code


class SrtUnavailable(RuntimeError):
    """libsrt is not installed (apt-get install libsrt1.5-openssl)."""


class _EpollEvent(ctypes.Structure):
    _fields_ = [("fd", ctypes.c_int), ("events", ctypes.c_int)]


class _SockaddrStorage(ctypes.Structure):
    _fields_ = [("data", ctypes.c_ubyte * 128)]


@cache
def load() -> Any:
    """The libsrt shared library with prototypes set; ``SrtUnavailable`` when missing."""
    lib = None
    for name in (*LIBRARY_NAMES, ctypes.util.find_library("srt")):
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name)
            break
        except OSError:
            continue
    if lib is None:
        raise SrtUnavailable("libsrt not found: install libsrt1.5-openssl (Debian) or libsrt")
    c_int, c_void_p, c_char_p = ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p
    protos: dict[str, tuple[Any, list[Any]]] = {
        "srt_startup": (c_int, []),
        "srt_cleanup": (c_int, []),
        "srt_create_socket": (c_int, []),
        "srt_bind": (c_int, [c_int, c_void_p, c_int]),
        "srt_listen": (c_int, [c_int, c_int]),
        "srt_accept": (c_int, [c_int, c_void_p, ctypes.POINTER(c_int)]),
        "srt_listen_callback": (c_int, [c_int, ListenCallbackType, c_void_p]),
        "srt_close": (c_int, [c_int]),
        "srt_getsockname": (c_int, [c_int, c_void_p, ctypes.POINTER(c_int)]),
        "srt_getpeername": (c_int, [c_int, c_void_p, ctypes.POINTER(c_int)]),
        "srt_setsockflag": (c_int, [c_int, c_int, c_void_p, c_int]),
        "srt_getsockflag": (c_int, [c_int, c_int, c_void_p, ctypes.POINTER(c_int)]),
        "srt_recvmsg": (c_int, [c_int, c_void_p, c_int]),
        "srt_connect": (c_int, [c_int, c_void_p, c_int]),
        "srt_send": (c_int, [c_int, c_char_p, c_int]),
        "srt_getlasterror": (c_int, [c_void_p]),
        "srt_getlasterror_str": (c_char_p, []),
        "srt_clearlasterror": (None, []),
        "srt_getsockstate": (c_int, [c_int]),
        "srt_epoll_create": (c_int, []),
        "srt_epoll_add_usock": (c_int, [c_int, c_int, ctypes.POINTER(c_int)]),
        "srt_epoll_remove_usock": (c_int, [c_int, c_int]),
        "srt_epoll_uwait": (c_int, [c_int, ctypes.POINTER(_EpollEvent), c_int, ctypes.c_int64]),
        "srt_epoll_release": (c_int, [c_int]),
        "srt_epoll_set": (ctypes.c_int32, [c_int, ctypes.c_int32]),
        "srt_setrejectreason": (c_int, [c_int, c_int]),
        "srt_setloglevel": (None, [c_int]),
    }
    for name, (restype, argtypes) in protos.items():
        func = getattr(lib, name)
        func.restype = restype
        func.argtypes = argtypes
    return lib


def _fail(call: str) -> SrtError:
    lib = load()
    code = int(lib.srt_getlasterror(None))
    message = (lib.srt_getlasterror_str() or b"").decode(errors="replace")
    lib.srt_clearlasterror()
    return SrtError(call, code, message)


def _check(call: str, result: int) -> int:
    if result < 0:
        raise _fail(call)
    return result


def startup(log_level: int = 2) -> None:
    """Start libsrt (reference-counted by libsrt); its own logging at syslog ``log_level``
    (2 = critical only: refused handshakes are ours to log, with their reason)."""
    lib = load()
    _check("srt_startup", lib.srt_startup())
    lib.srt_setloglevel(log_level)


def cleanup() -> None:
    load().srt_cleanup()


def create_socket() -> int:
    return _check("srt_create_socket", load().srt_create_socket())


def set_int(sock: int, option: int, value: int) -> None:
    raw = ctypes.c_int(value)
    _check("srt_setsockflag", load().srt_setsockflag(sock, option, ctypes.byref(raw), 4))


def set_bool(sock: int, option: int, value: bool) -> None:
    raw = ctypes.c_bool(value)
    _check("srt_setsockflag", load().srt_setsockflag(sock, option, ctypes.byref(raw), 1))


def set_string(sock: int, option: int, value: str) -> None:
    raw = value.encode()
    _check("srt_setsockflag", load().srt_setsockflag(sock, option, raw, len(raw)))


def get_string(sock: int, option: int) -> str:
    buf = ctypes.create_string_buffer(513)
    size = ctypes.c_int(len(buf))
    _check("srt_getsockflag", load().srt_getsockflag(sock, option, buf, ctypes.byref(size)))
    return buf.raw[: size.value].decode(errors="replace")


def _sockaddr(host: str, port: int) -> tuple[bytes, int]:
    info = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
    family, address = info[0], info[4]
    ip = str(address[0])
    if family == socket.AF_INET6:
        scope = int(address[3]) if len(address) > 3 else 0  # type: ignore[misc]
        packed = struct.pack("=H", socket.AF_INET6) + port.to_bytes(2, "big") + b"\x00" * 4 \
            + socket.inet_pton(socket.AF_INET6, ip) + struct.pack("=I", scope)
    else:
        packed = struct.pack("=H", socket.AF_INET) + port.to_bytes(2, "big") \
            + socket.inet_pton(socket.AF_INET, ip) + b"\x00" * 8
    return packed, len(packed)


def format_sockaddr(pointer: int | None) -> str:
    """``host:port`` of a ``struct sockaddr*`` libsrt hands us (IPv4 or IPv6)."""
    if not pointer:
        return "?"
    family = ctypes.c_ushort.from_address(pointer).value
    if family == socket.AF_INET:
        raw = ctypes.string_at(pointer, 16)
        port = int.from_bytes(raw[2:4], "big")
        return f"{socket.inet_ntop(socket.AF_INET, raw[4:8])}:{port}"
    if family == socket.AF_INET6:
        raw = ctypes.string_at(pointer, 28)
        port = int.from_bytes(raw[2:4], "big")
        return f"[{socket.inet_ntop(socket.AF_INET6, raw[8:24])}]:{port}"
    return f"family {family}"


def bind(sock: int, host: str, port: int) -> None:
    packed, size = _sockaddr(host, port)
    _check("srt_bind", load().srt_bind(sock, packed, size))


def listen(sock: int, backlog: int) -> None:
    _check("srt_listen", load().srt_listen(sock, backlog))


def local_port(sock: int) -> int:
    storage = _SockaddrStorage()
    size = ctypes.c_int(ctypes.sizeof(storage))
    _check("srt_getsockname", load().srt_getsockname(sock, ctypes.byref(storage), ctypes.byref(size)))
    return int.from_bytes(bytes(storage.data[2:4]), "big")


def peer_name(sock: int) -> str:
    storage = _SockaddrStorage()
    size = ctypes.c_int(ctypes.sizeof(storage))
    if load().srt_getpeername(sock, ctypes.byref(storage), ctypes.byref(size)) < 0:
        load().srt_clearlasterror()
        return "?"
    return format_sockaddr(ctypes.addressof(storage))


def accept(sock: int) -> int:
    """A connected socket from the listener's queue; ``SrtError`` (6002) when none is ready."""
    return _check("srt_accept", load().srt_accept(sock, None, None))


#: ``hook(new_socket, peer "host:port", stream_id) -> 0 to accept, or an SRT_REJX_* code``
ListenHook = Callable[[int, str, str], int]


def listen_callback(sock: int, hook: ListenHook) -> Any:
    """Install ``hook`` as the listener callback; keep the returned object alive as long as
    the listener. A non-zero return rejects the handshake with that reason (the caller
    never gets a connection); an exception in ``hook`` rejects with 1500."""
    lib = load()

    def trampoline(_opaque: int, new_sock: int, _hs_version: int, peer: int, stream_id: bytes | None) -> int:
        try:
            reason = hook(new_sock, format_sockaddr(peer), (stream_id or b"").decode(errors="replace"))
        except Exception:  # an exception must not unwind into C
            reason = 1500
        if reason:
            lib.srt_setrejectreason(new_sock, reason)
            return -1
        return 0

    callback = ListenCallbackType(trampoline)
    _check("srt_listen_callback", lib.srt_listen_callback(sock, callback, None))
    return callback


def connect(sock: int, host: str, port: int) -> None:
    """Connect as a caller (blocking until the handshake completes or is rejected)."""
    packed, size = _sockaddr(host, port)
    _check("srt_connect", load().srt_connect(sock, packed, size))


def send(sock: int, data: bytes) -> None:
    """Send one message (live mode: at most 1316 bytes, i.e. 7 TS packets)."""
    _check("srt_send", load().srt_send(sock, data, len(data)))


def recv_message(sock: int, buf: Any) -> int:
    """Bytes of the next message into ``buf``; 0 when none is ready (non-blocking socket)."""
    result = load().srt_recvmsg(sock, buf, len(buf))
    if result < 0:
        error = _fail("srt_recvmsg")
        if error.code == EASYNCRCV:
            return 0
        raise error
    if result == 0:
        raise SrtError("srt_recvmsg", ECONNLOST, "connection closed by the peer")
    return int(result)


def state(sock: int) -> int:
    return int(load().srt_getsockstate(sock))


def close(sock: int) -> None:
    if load().srt_close(sock) < 0:
        load().srt_clearlasterror()


class Epoll:
    """An ``srt_epoll`` set of SRT sockets, waited on from one thread."""

    def __init__(self, capacity: int = 256) -> None:
        lib = load()
        self._lib = lib
        self.eid = _check("srt_epoll_create", lib.srt_epoll_create())
        lib.srt_epoll_set(self.eid, 1)  # SRT_EPOLL_ENABLE_EMPTY: waiting on no socket is fine
        self._events = (_EpollEvent * capacity)()

    def add(self, sock: int, events: int = EPOLL_IN | EPOLL_ERR) -> None:
        flags = ctypes.c_int(events)
        _check("srt_epoll_add_usock", self._lib.srt_epoll_add_usock(self.eid, sock, ctypes.byref(flags)))

    def remove(self, sock: int) -> None:
        if self._lib.srt_epoll_remove_usock(self.eid, sock) < 0:
            self._lib.srt_clearlasterror()

    def wait(self, timeout_ms: int) -> list[tuple[int, int]]:
        count = self._lib.srt_epoll_uwait(self.eid, self._events, len(self._events), timeout_ms)
        if count < 0:
            raise _fail("srt_epoll_uwait")
        return [(self._events[i].fd, self._events[i].events) for i in range(min(count, len(self._events)))]

    def release(self) -> None:
        self._lib.srt_epoll_release(self.eid)
