"""Real endpoints for the health-check tests: HTTP and HTTPS servers whose answer can be switched, a TCP listener
that can be opened and closed, and a server that accepts but never answers."""
import http.server
import os
import socket
import ssl
import subprocess
import tempfile
import threading


class SwitchableHTTP:
    """Answers GET with `status` (switchable); counts requests and remembers the last Host header, path and headers."""

    def __init__(self, https=False):
        self.status = 200
        self.requests = 0
        self.last_host = None
        self.last_path = None
        self.last_headers = {}
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                owner.requests += 1
                owner.last_host = self.headers.get("Host")
                owner.last_path = self.path
                owner.last_headers = dict(self.headers)
                self.send_response(owner.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if https:
            d = tempfile.mkdtemp()
            key, cert = os.path.join(d, "key.pem"), os.path.join(d, "cert.pem")
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1",
                            "-subj", "/CN=self-signed.invalid"], check=True, capture_output=True)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(cert, key)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class TCPListener:
    """A listening socket on a fixed port that can be closed (refused) and opened again."""

    def __init__(self):
        self.sock = None
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self.open()

    def open(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(1024)
        threading.Thread(target=self._accept, args=(self.sock,), daemon=True).start()

    def _accept(self, sock):
        while True:
            try:
                conn, _ = sock.accept()
                conn.close()
            except OSError:
                return

    def close(self):
        self.sock.close()


class Silent:
    """Accepts connections and never answers a request: an HTTP check must time out. With `greeting`, it sends those
    bytes (another protocol's banner, say) on each connection first."""

    def __init__(self, greeting=b""):
        self.greeting = greeting
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.held = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn = self.sock.accept()[0]
                if self.greeting:
                    conn.sendall(self.greeting)
                self.held.append(conn)
            except OSError:
                return

    def close(self):
        self.sock.close()
        for conn in self.held:
            conn.close()


class FastHTTP:
    """A minimal asyncio HTTP endpoint with a large backlog, for thousands of probes per second."""

    def __init__(self):
        import asyncio

        self.requests = 0
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()

        async def handle(reader, writer):
            try:
                await reader.readuntil(b"\r\n\r\n")
                self.requests += 1
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                await writer.drain()
            except Exception:
                pass
            finally:
                writer.close()

        async def start():
            self.server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=4096)
            self.port = self.server.sockets[0].getsockname()[1]
            ready.set()

        def run():
            asyncio.set_event_loop(self.loop)
            self.loop.run_until_complete(start())
            self.loop.run_forever()

        threading.Thread(target=run, daemon=True).start()
        ready.wait(10)

    def close(self):
        # Stop listening; the loop itself lives on in its daemon thread so connections in flight end quietly.
        self.loop.call_soon_threadsafe(self.server.close)
