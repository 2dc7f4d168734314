"""Docstring examples (``--doctest-modules`` over src/glassnet) run with ``np`` and ``gn`` imported,
inside a temporary folder, so examples that save files leave nothing behind."""
import numpy
import pytest

import glassnet


@pytest.fixture(autouse=True)
def doctest_setup(request, doctest_namespace):
    if isinstance(request.node, pytest.DoctestItem):
        doctest_namespace.update(np=numpy, gn=glassnet)
        request.getfixturevalue("monkeypatch").chdir(request.getfixturevalue("tmp_path"))
