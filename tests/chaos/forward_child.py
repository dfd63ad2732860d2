"""A TCP forwarder as its own process, so it can sit inside a namespace behind a link.

`python tests/chaos/forward_child.py LISTEN_HOST LISTEN_PORT TARGET_HOST TARGET_PORT`: every
connection accepted on LISTEN is carried to TARGET, both ways, until either side closes. The
chaos suite puts it in a namespace between the shield (root namespace) and the origin (root
namespace, listening on the link's outside address), so the shield's upstream traffic crosses
the wire and a link fault sits between shield and origin. At most MAX_CONNECTIONS at once;
more are refused (closed at once), so a retry storm cannot grow it without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys

MAX_CONNECTIONS = 512
CHUNK = 65536


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            writer.close()


async def main(listen_host: str, listen_port: int, target_host: str, target_port: int) -> None:
    open_now = 0

    async def carry(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal open_now
        if open_now >= MAX_CONNECTIONS:
            writer.close()
            return
        open_now += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(target_host, target_port)
        except OSError:
            writer.close()
            open_now -= 1
            return
        try:
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        finally:
            open_now -= 1

    server = await asyncio.start_server(carry, listen_host, listen_port, reuse_address=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])))
