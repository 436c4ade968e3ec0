"""A TCP relay on 127.0.0.1 to a real server (Redis, PostgreSQL) that a test can take away and bring
back on the same port: the server itself keeps running for everyone else sharing the machine."""

from __future__ import annotations

import asyncio


class Proxy:
    """Relays 127.0.0.1:`port` to 127.0.0.1:`upstream`. `stop()` refuses new connections and cuts the
    open ones (as a server going away would); `start()` again listens on the same port. While
    `silent`, bytes are dropped both ways and nothing is closed: a network that loses packets."""

    def __init__(self, upstream: int = 6379) -> None:
        self.upstream = upstream
        self.port = 0
        self._server: asyncio.Server | None = None
        self._links: set[asyncio.StreamWriter] = set()
        self.silent = False

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._links):
            writer.close()
        self._links.clear()
        await self._server.wait_closed()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream)
        except OSError:
            writer.close()
            return
        self._links |= {writer, up_writer}

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    if not self.silent:
                        sink.write(data)
                        await sink.drain()
            except OSError:
                pass
            finally:
                sink.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
