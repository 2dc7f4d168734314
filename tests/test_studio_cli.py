"""``glassnet studio`` as a user runs it: a real process, its URL, Ctrl-C, and its errors."""
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

import glassnet as gn
from studio_setup import digits_model, drawn_digit_png


def start_studio(*args, cwd):
    """``glassnet studio ARGS --no-browser`` in a new process; returns (process, its first line's URL, that line)."""
    process = subprocess.Popen([sys.executable, "-u", "-m", "glassnet.apps.cli", "studio", *args, "--no-browser"],
                               cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = process.stdout.readline()
    if not first.startswith("glassnet studio on http://"):
        process.kill()
        pytest.fail(f"unexpected first line {first!r}; stderr: {process.communicate(timeout=30)[1]}")
    return process, first.split()[3], first


def stop(process):
    process.send_signal(signal.SIGINT)      # Ctrl-C
    out, err = process.communicate(timeout=60)
    return process.returncode, out, err


def test_serves_a_model_file_and_stops_cleanly_on_ctrl_c_mid_training(tmp_path):
    gn.save(digits_model(), tmp_path / "digits.glassnet")
    process, url, _ = start_studio("digits.glassnet", "--port", "0", cwd=tmp_path)
    try:
        with httpx.Client(base_url=url, timeout=30) as client:
            info = client.get("/api/model").json()
            assert info["model"]["source"] == "digits.glassnet"
            reply = client.post("/api/predict", content=drawn_digit_png(), headers={"Content-Type": "image/png"})
            assert reply.status_code == 200
            assert client.post("/api/train", json={"dataset": "digits", "epochs": 100}).status_code == 200
            deadline = time.monotonic() + 60
            while client.get("/api/model").json()["job"]["events"] < 5 and time.monotonic() < deadline:
                time.sleep(0.1)
            assert client.get("/api/model").json()["job"]["state"] == "running"
    finally:
        code, out, err = stop(process)
    assert code == 0, err
    assert "glassnet studio stopped" in out and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["digits.glassnet"]   # nothing partial left behind


def test_without_a_model_it_offers_training_and_warns_about_open_addresses(tmp_path):
    process, url, first = start_studio("--host", "0.0.0.0", "--port", "0", cwd=tmp_path)
    try:
        assert url.startswith("http://127.0.0.1:")       # a wildcard bind is opened through loopback
        assert httpx.get(url + "api/model", timeout=30).json()["model"] is None
    finally:
        code, out, err = stop(process)
    assert code == 0 and "no model: train one" in first and "glassnet studio stopped" in out
    assert "warning: binding 0.0.0.0 lets other machines on the network reach the studio" in err


def run(*args, cwd):
    return subprocess.run([sys.executable, "-m", "glassnet.apps.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def test_errors_are_one_line(tmp_path):
    missing = run("studio", "nothing.glassnet", "--no-browser", cwd=tmp_path)
    assert missing.returncode == 1 and "Traceback" not in missing.stderr
    assert missing.stderr.startswith("glassnet: error:") and "nothing.glassnet" in missing.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        busy = run("studio", "--no-browser", "--port", str(port), cwd=tmp_path)
    assert busy.returncode == 1 and f"cannot listen on 127.0.0.1:{port}" in busy.stderr
    bad_port = run("studio", "--no-browser", "--port", "70000", cwd=tmp_path)
    assert bad_port.returncode == 2 and "argument --port: must be in [0, 65535]" in bad_port.stderr
    assert len(bad_port.stderr.strip().splitlines()) == 1


def test_missing_extra_names_what_to_install(tmp_path):
    code = ("import sys; sys.modules['uvicorn'] = None; from glassnet.apps.cli import main; "
            "sys.exit(main(['studio', '--no-browser']))")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip() == ("glassnet: error: the studio needs Starlette and uvicorn: "
                                     "pip install 'glassnet[studio]'")


@pytest.mark.parametrize("module", ["starlette", "uvicorn", "playwright", "httpx", "onnx", "keras", "torch", "PIL"])
def test_import_glassnet_does_not_import_the_studio_extras(module):
    code = f"import sys, glassnet; sys.exit(1 if {module!r} in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code], timeout=120).returncode == 0
