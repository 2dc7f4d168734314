"""Load on loopback: 50 concurrent predictions while a training job runs, on a real uvicorn server.

Bounded: 50 requests, each with a 60 s timeout, to 127.0.0.1 only. Every request must be
answered (none lost) with the prediction the engine gives for that image; the latencies'
p50 and p95 are printed (run with -s to see them; the README quotes a run).
"""
import concurrent.futures
import io
import time

import httpx
import numpy as np
from PIL import Image, ImageDraw

from glassnet.data.preprocessing import load_image
from glassnet.apps.studio.arrays import decode
from glassnet.apps.studio.views import Studio
from studio_setup import digits_model, png_bytes, served

REQUESTS = 50


def varied_digit(k):
    """Request k's image: a ring whose size and position vary with k."""
    image = Image.new("L", (160, 160), 255)
    inset = 10 + k % 30
    ImageDraw.Draw(image).ellipse((inset, inset // 2, 160 - inset, 150 - inset // 3), outline=0, width=8 + k % 9)
    return png_bytes(image)


def test_fifty_concurrent_predictions_while_training(tmp_path):
    studio = Studio(digits_model(), save_dir=tmp_path)
    images = [varied_digit(k) for k in range(REQUESTS)]
    with served(studio) as server, httpx.Client(base_url=server.url, timeout=60) as client:
        started = client.post("/api/train", json={"dataset": "digits", "epochs": 200, "batch_size": 16})
        assert started.status_code == 200
        deadline = time.monotonic() + 60
        while studio.job.state != "running" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert studio.job.state == "running"
        events_before = len(studio.job.events)

        def predict(k):
            begun = time.perf_counter()
            reply = client.post("/api/predict", content=images[k], headers={"Content-Type": "image/png"})
            return k, reply.status_code, reply.json(), time.perf_counter() - begun

        with concurrent.futures.ThreadPoolExecutor(max_workers=REQUESTS) as pool:
            results = list(pool.map(predict, range(REQUESTS)))
        events_during = len(studio.job.events) - events_before
        still_training = studio.job.state == "running"
        client.post("/api/train/stop")
    assert still_training and events_during > 0           # the job ran throughout
    assert len(results) == REQUESTS
    expected_model = digits_model()
    preprocessing = expected_model.metadata["preprocessing"]
    for k, status, reply, _ in results:
        assert status == 200, reply
        x = load_image(io.BytesIO(images[k]), preprocessing)[None]      # what glassnet predict would use
        np.testing.assert_array_equal(decode(reply["input"]), x[0])
        assert reply["predicted"] == int(np.argmax(expected_model.predict(x)[0]))
    latencies = np.array([seconds for *_, seconds in results]) * 1000
    ids = {reply["input_id"] for _, _, reply, _ in results}
    assert len(ids) == REQUESTS                           # each request got its own answer
    print(f"\n{REQUESTS} concurrent predictions while training: all answered; latency p50 "
          f"{np.percentile(latencies, 50):.0f} ms, p95 {np.percentile(latencies, 95):.0f} ms, max "
          f"{latencies.max():.0f} ms; {events_during} training events meanwhile")
