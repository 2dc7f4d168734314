"""Test-wide set-up: glassnet's data cache lives in a temporary folder, never in the user's home."""
import os

import pytest


@pytest.fixture(autouse=True, scope="session")
def private_data_cache(tmp_path_factory):
    """$GLASSNET_DATA_DIR for the whole run (child processes inherit it); restored afterwards."""
    before = os.environ.get("GLASSNET_DATA_DIR")
    os.environ["GLASSNET_DATA_DIR"] = str(tmp_path_factory.mktemp("glassnet-data"))
    yield
    if before is None:
        os.environ.pop("GLASSNET_DATA_DIR", None)
    else:
        os.environ["GLASSNET_DATA_DIR"] = before


@pytest.fixture(params=["numpy", "array_api_strict", "torch"])
def backend(request):
    """The array library a test runs glassnet on (see tests/backends.py)."""
    from backends import Backend
    return Backend(request.param)
