"""Start the studio: load the model, bind the address, serve until Ctrl-C.

    glassnet studio [MODEL] [--host 127.0.0.1] [--port 8000] [--no-browser]
"""
import ipaddress
import socket
import sys
import threading
import webbrowser

from ...errors import GlassnetError


def studio_modules():
    """(uvicorn, create_app, Studio), or a one-line error naming the extra to install."""
    try:
        import starlette  # noqa: F401
        import uvicorn
    except ImportError:
        raise GlassnetError("the studio needs Starlette and uvicorn: pip install 'glassnet[studio]'") from None
    from .app import create_app
    from .views import Studio
    return uvicorn, create_app, Studio


def is_loopback(host):
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind(host, port):
    """A listening socket on (host, port); port 0 lets the system choose. Errors name the address."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as error:
        sock.close()
        raise GlassnetError(f"cannot listen on {host}:{port}: {error.strerror or error}") from None
    # replies go out as soon as written (headers and a small JSON body are two writes; without
    # this, Nagle's algorithm holds the second until the client's delayed ACK, ~40 ms)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def url_of(sock, host):
    """The address to open: a wildcard bind (0.0.0.0, ::) is opened through loopback."""
    port = sock.getsockname()[1]
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "[::]": "::1"}.get(host, host)
    shown = f"[{host.strip('[]')}]" if ":" in host else host
    return f"http://{shown}:{port}/"


class StudioServer:
    """A studio served by uvicorn on an already bound socket (also used by the tests, in a thread)."""

    def __init__(self, studio, host="127.0.0.1", port=8000):
        uvicorn, create_app, _ = studio_modules()
        self.studio = studio
        self.socket = bind(host, port)
        self.url = url_of(self.socket, host)
        config = uvicorn.Config(create_app(studio, host), log_level="warning", access_log=False,
                                timeout_graceful_shutdown=3)
        self.server = uvicorn.Server(config)

    def run(self):
        """Serve until stopped (Ctrl-C, or ``stop()`` from another thread); then stop training."""
        try:
            self.server.run(sockets=[self.socket])
        finally:
            self.studio.shutdown()
            self.socket.close()

    def start_in_thread(self):
        thread = threading.Thread(target=self.run, name="glassnet-studio-server", daemon=True)
        thread.start()
        while not self.server.started and thread.is_alive():
            thread.join(0.02)
        self.thread = thread
        return self

    def stop(self):
        self.server.should_exit = True
        if getattr(self, "thread", None) is not None:
            self.thread.join(10)


def serve(model_path=None, host="127.0.0.1", port=8000, open_browser=True, log=print,
          warn=lambda line: print(line, file=sys.stderr)):
    """The ``glassnet studio`` command: ``log`` gets the URL and the final line, ``warn`` warnings."""
    _, _, Studio = studio_modules()
    from ...files.serialization import load
    model = load(model_path) if model_path else None
    if not is_loopback(host):
        warn(f"warning: binding {host} lets other machines on the network reach the studio and your model; "
            "the default 127.0.0.1 keeps it on this machine")
    server = StudioServer(Studio(model, model_path), host, port)
    log(f"glassnet studio on {server.url}  ({'model ' + str(model_path) if model_path else 'no model: train one'}"
        "; Ctrl-C to stop)")
    if open_browser:
        threading.Timer(0.5, webbrowser.open, args=(server.url,)).start()
    try:
        server.run()
    except KeyboardInterrupt:  # uvicorn shuts down gracefully on Ctrl-C, then re-raises it
        pass
    log("glassnet studio stopped")
