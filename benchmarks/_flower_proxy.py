"""A byte-counting TCP proxy, put in front of a server by ``bench_network.py``.

The same proxy sits in front of fedsk's server (for the party agents) and in
front of Flower's server (for its clients), so both are counted the same way:
every byte on the wire in both directions, TLS and HTTP/gRPC framing
included. Started as its own process so its work does not share the
benchmark's interpreter. On SIGUSR1 it writes ``{"up": n, "down": n}`` (bytes
from clients to the server, and back) to ``COUNTS`` by an atomic rename.

    python _flower_proxy.py LISTEN_PORT TARGET_PORT COUNTS
"""

import asyncio
import json
import os
import signal
import sys

counts = {"up": 0, "down": 0}


async def pipe(reader, writer, key):
    try:
        while data := await reader.read(1 << 16):
            counts[key] += len(data)
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def serve(listen_port, target_port, path):
    async def handle(client_reader, client_writer):
        try:
            server_reader, server_writer = await asyncio.open_connection(
                "127.0.0.1", target_port
            )
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(
            pipe(client_reader, server_writer, "up"),
            pipe(server_reader, client_writer, "down"),
        )

    def dump():
        tmp = f"{path}.tmp"
        with open(tmp, "w") as f:
            json.dump(counts, f)
        os.replace(tmp, path)

    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, dump)
    server = await asyncio.start_server(handle, "127.0.0.1", listen_port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]))
