"""Who is at fault when an RTMP exchange goes wrong.

A RemoteProtocolError (alias RtmpProtocolError) is the peer's fault: the connection that sent
it is closed with the reason logged, and nothing else is affected. A LocalProtocolError is our
own misuse of the core (a bug) and must surface loudly.
"""

from __future__ import annotations


class RtmpProtocolError(Exception):
    """The peer sent something RTMP does not allow, or exceeded a limit."""


RemoteProtocolError = RtmpProtocolError


class LimitExceeded(RtmpProtocolError):
    """The peer tried to make us hold more than a configured limit."""


class LocalProtocolError(Exception):
    """The application called the core in a state where that call is not legal."""
