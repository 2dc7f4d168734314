"""The studio's web app: routes that turn JSON into calls of ``Studio`` and back.

JSON API (every error is ``{"error": "one line"}`` with a 4xx/5xx status):

    GET  /api/model                   the model's layers, classes, preprocessing; the job's state
    POST /api/predict                 body: image bytes (Content-Type image/*) -> input_id, the model
                                      input as the model sees it, probabilities, top-k
    POST /api/trace                   {input_id, target?, gradients?} -> every layer's output and
                                      dL/d(output), dL/d(input), dL/d(params); the loss
    POST /api/unit                    {input_id, layer, position} -> the numbers behind one value
    POST /api/maps                    {input_id, node, what, start, count, target?} -> channels of a large
                                      array as 8-bit pictures on the array's colour scale
    POST /api/step                    {input_id, target?, lr} -> one SGD step: params before/after
    POST /api/revert                  weights back to how they were loaded
    POST /api/save                    {name} -> saved in the save folder (never overwrites)
    POST /api/why                     {input_id, method, target?, layer?} -> an attribution map (see why.py)
    POST /api/why/pixel               {input_id, method, position, target?, layer?} -> the numbers behind it
    GET  /api/why/mistakes            misclassified test images of the model's dataset, with Grad-CAM
    GET  /api/example                 seed 000's worked example and the seed's mistakes
    GET  /api/train/options           datasets, architectures, optimizers, defaults
    POST /api/train                   {dataset, arch, epochs, batch_size, lr, optimizer} -> starts the job
    POST /api/train/pause|resume|stop
    POST /api/train/use               the trained model becomes the studio's model
    POST /api/train/save              {name} -> the trained model saved
    GET  /api/train/events            server-sent events: state, batch, epoch, filters

Arrays travel as ``{"shape", "data"}`` (base64 float64, exact; see ``arrays.py``).
"""
import asyncio
import ipaddress
import json
import socket
from pathlib import Path
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.responses import FileResponse, JSONResponse, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ...data import datasets
from ...errors import GlassnetError
from ...models import presets
from ..parser import SCHEDULES
from .jobs import OPTIMIZERS, STUDIO_DATASETS
from .views import StudioError

STATIC = Path(__file__).parent / "static"
MAX_UPLOAD_BYTES = 8 * 1024 * 1024
MAX_JSON_BYTES = 64 * 1024
LOCAL_NAMES = {"127.0.0.1", "localhost", "::1"}
SECURITY_HEADERS = [
    # the page loads nothing from elsewhere: scripts, styles and images from this server only
    (b"content-security-policy", b"default-src 'self'; img-src 'self' data: blob:; connect-src 'self'; "
                                 b"frame-ancestors 'none'; base-uri 'none'; form-action 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


def error_response(status, message):
    return JSONResponse({"error": message}, status_code=status)


class LocalOnly:
    """ASGI middleware: serve only requests whose Host names the bound address or localhost
    (DNS rebinding), refuse POSTs whose Origin is another site, add security headers."""

    def __init__(self, app, bound_host):
        self.app = app
        bound = bound_host.strip("[]").lower()
        self.allowed = LOCAL_NAMES | {bound}
        # bound to every interface: this machine's name, and any IP address typed as the Host (DNS
        # rebinding needs a name the attacker controls, never an IP literal); no DNS look-up here
        self.any_address = bound in ("0.0.0.0", "::")
        if self.any_address:
            self.allowed.add(socket.gethostname().lower())

    def _allowed(self, host):
        if host in self.allowed:
            return True
        if self.any_address and host:
            try:
                ipaddress.ip_address(host)
                return True
            except ValueError:
                return False
        return False

    def _hostname(self, value):
        try:
            return urlsplit("//" + value).hostname
        except ValueError:
            return None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope["headers"]}
        host = self._hostname(headers.get("host", ""))
        if not self._allowed(host):
            response = error_response(403, f"refused: Host {headers.get('host', '')!r} is not this studio's "
                                           "address (only localhost and the bound address are served)")
            return await response(scope, receive, send)
        origin = headers.get("origin")
        if scope["method"] not in ("GET", "HEAD") and origin is not None:
            parts = urlsplit(origin) if origin != "null" else None
            if parts is None or parts.scheme not in ("http", "https") or not self._allowed(parts.hostname):
                response = error_response(403, f"refused: a request from another site (Origin {origin!r})")
                return await response(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + SECURITY_HEADERS
            await send(message)

        return await self.app(scope, receive, send_with_headers)


async def read_body(request, limit):
    """The request body, refused with 413 past ``limit`` bytes (checked before and while reading)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise StudioError(413, f"upload of {int(declared):,} bytes exceeds the limit of {limit:,} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise StudioError(413, f"upload exceeds the limit of {limit:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request):
    body = await read_body(request, MAX_JSON_BYTES)
    try:
        value = json.loads(body or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise StudioError(400, "the request body is not valid JSON") from None
    if not isinstance(value, dict):
        raise StudioError(400, f"expected a JSON object. Received: {type(value).__name__}")
    return value


def endpoint(handler):
    """Wrap a route: refusals become their status, engine errors 400, anything else 500; never a crash."""
    async def route(request):
        try:
            return JSONResponse(await handler(request))
        except StudioError as error:
            return error_response(error.status, str(error))
        except GlassnetError as error:
            return error_response(400, str(error))
        except Exception as error:  # the server stays up; the page shows the line
            return error_response(500, f"internal error: {type(error).__name__}: {error}")
    return route


def create_app(studio, bound_host="127.0.0.1"):
    """The ASGI app serving ``studio`` (a ``views.Studio``) and the page."""

    async def model_info(request):
        return await run_in_threadpool(studio.describe)

    async def predict(request):
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if not kind.startswith("image/"):
            raise StudioError(415, f"expected an image (Content-Type image/png, image/jpeg, ...). "
                                   f"Received: {kind or 'no Content-Type'}")
        data = await read_body(request, MAX_UPLOAD_BYTES)
        if not data:
            raise StudioError(400, "the upload is empty (0 bytes)")
        name = request.headers.get("x-file-name", "upload")[:100]
        return await run_in_threadpool(studio.predict_image, data, name)

    async def trace_view(request):
        body = await read_json(request)
        return await run_in_threadpool(studio.trace_view, body.get("input_id"), body.get("target"),
                                       bool(body.get("gradients", True)))

    async def maps(request):
        body = await read_json(request)
        return await run_in_threadpool(studio.maps, body.get("input_id"), body.get("target"), body.get("node"),
                                       body.get("what", "output"), body.get("start", 0), body.get("count", 16))

    async def unit(request):
        body = await read_json(request)
        return await run_in_threadpool(studio.unit, body.get("input_id"), body.get("layer"), body.get("position"))

    async def step(request):
        body = await read_json(request)
        return await run_in_threadpool(studio.sgd_step, body.get("input_id"), body.get("target"), body.get("lr"))

    async def revert(request):
        return await run_in_threadpool(studio.revert)

    async def save_model(request):
        body = await read_json(request)
        return await run_in_threadpool(studio.save_as, body.get("name"))

    async def example(request):
        return await run_in_threadpool(studio.example)

    async def why_view(request):
        body = await read_json(request)
        return await run_in_threadpool(studio.why_view, body.get("input_id"), body.get("method"), body.get("target"),
                                       body.get("layer"))

    async def why_pixel(request):
        body = await read_json(request)
        return await run_in_threadpool(studio.why_pixel, body.get("input_id"), body.get("method"),
                                       body.get("position"), body.get("target"), body.get("layer"))

    async def why_mistakes(request):
        return await run_in_threadpool(studio.why_mistakes)

    async def train_options(request):
        return {"datasets": [{"name": name, "available": datasets.availability(name),
                              "defaults": presets.DEFAULTS[name]} for name in STUDIO_DATASETS],
                "architectures": [a for a in presets.ARCHITECTURES if a != "xor"], "optimizers": list(OPTIMIZERS),
                "schedules": ["none", *SCHEDULES]}

    async def train_start(request):
        body = await read_json(request)
        return await run_in_threadpool(studio.start_training, body)

    def job_action(name):
        async def action(request):
            job = studio.require_job()
            return getattr(job, name)()
        return action

    async def train_use(request):
        return await run_in_threadpool(studio.use_trained)

    async def train_save(request):
        body = await read_json(request)
        job = studio.require_job()
        if job.model is None or not job.finished():
            raise StudioError(409, "the training job has not finished; stop it or wait for it")
        return await run_in_threadpool(studio.save_as, body.get("name"), job.model)

    async def train_events(request):
        job = studio.require_job()
        last = request.headers.get("last-event-id", request.query_params.get("after", "0"))
        seen = int(last) if last.isdigit() else 0
        return StreamingResponse(event_stream(job, seen), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store"})

    async def index(request):
        return FileResponse(STATIC / "index.html")

    json_routes = [("/api/model", model_info, "GET"), ("/api/predict", predict, "POST"),
                   ("/api/trace", trace_view, "POST"), ("/api/unit", unit, "POST"), ("/api/maps", maps, "POST"),
                   ("/api/step", step, "POST"),
                   ("/api/revert", revert, "POST"), ("/api/save", save_model, "POST"),
                   ("/api/example", example, "GET"), ("/api/train/options", train_options, "GET"),
                   ("/api/why", why_view, "POST"), ("/api/why/pixel", why_pixel, "POST"),
                   ("/api/why/mistakes", why_mistakes, "GET"),
                   ("/api/train", train_start, "POST"), ("/api/train/pause", job_action("pause"), "POST"),
                   ("/api/train/resume", job_action("resume"), "POST"),
                   ("/api/train/stop", job_action("stop"), "POST"), ("/api/train/use", train_use, "POST"),
                   ("/api/train/save", train_save, "POST")]
    routes = [Route(path, endpoint(handler), methods=[method]) for path, handler, method in json_routes]
    routes += [Route("/api/train/events", guarded(train_events), methods=["GET"]),
               Route("/", index, methods=["GET"]),
               Mount("/static", StaticFiles(directory=STATIC), name="static")]
    app = Starlette(routes=routes)
    app.state.studio = studio
    return LocalOnly(app, bound_host)


def guarded(handler):
    """Like ``endpoint`` for routes that return their own response (the event stream)."""
    async def route(request):
        try:
            return await handler(request)
        except StudioError as error:
            return error_response(error.status, str(error))
    return route


async def event_stream(job, seen, poll=0.1, keepalive=10.0):
    """Server-sent events: every job event after number ``seen``, then ``end`` once the job is over."""
    idle = 0.0
    while True:
        done = job.finished()
        events = job.events_after(seen)
        for event in events:
            seen = event["seq"]
            yield f"id: {seen}\ndata: {json.dumps(event)}\n\n"
        if done and not events:
            yield "event: end\ndata: {}\n\n"
            return
        if events:
            idle = 0.0
        else:
            idle += poll
            if idle >= keepalive:
                idle = 0.0
                yield ": keep-alive\n\n"
            await asyncio.sleep(poll)
