"""The house in wings: every import inside src/glassnet, read with ``ast`` (imports inside functions
count too), must follow the rule each wing's ``__init__`` states on its ``Imports:`` line, and no two
wings may import each other, directly or round a longer circle."""
import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "glassnet"
FOUNDATIONS = "foundations"
EXTRAS = ["PIL", "matplotlib", "starlette", "uvicorn", "onnx", "onnxruntime", "keras", "torch", "array_api_compat",
          "array_api_strict", "cupy", "mpi4py", "ray", "sklearn", "mlxtend", "tqdm", "threadpoolctl", "IPython"]


def wings(root=PACKAGE):
    return sorted(path.parent.name for path in root.glob("*/__init__.py"))


def module_name(path, root=PACKAGE):
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(root=PACKAGE):
    return {module_name(path, root): path for path in root.rglob("*.py")}


def imported_modules(path, known, root=PACKAGE):
    """Every glassnet module ``path`` imports, at any depth of the file, as absolute names."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.split(".")[0] == "glassnet")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            if source.split(".")[0] != "glassnet":
                continue
            for alias in node.names:   # `from .data import datasets` imports the module glassnet.data.datasets
                found.add(f"{source}.{alias.name}" if f"{source}.{alias.name}" in known else source)
    return found


def wing_of(module, root=PACKAGE):
    """'nn', 'data', ... for a module inside a wing; 'foundations' for a loose module; None for the door."""
    parts = module.split(".")
    if len(parts) == 1:
        return None
    return parts[1] if parts[1] in wings(root) else FOUNDATIONS


def allowed_imports(wing, root=PACKAGE):
    """The wings named on the ``Imports:`` line of ``wing``'s docstring (of glassnet's, for foundations)."""
    source = root / ("__init__.py" if wing == FOUNDATIONS else f"{wing}/__init__.py")
    docstring = ast.get_docstring(ast.parse(source.read_text())) or ""
    if wing == FOUNDATIONS:
        line = re.search(r"^Foundations import: (.*)$", docstring, re.MULTILINE)
    else:
        line = re.search(r"^Imports: (.*)$", docstring, re.MULTILINE)
    assert line, f"{source}: the docstring needs an 'Imports:' line naming the wings it may import"
    text = line.group(1)
    if "every other wing" in text:
        return set(wings(root)) | {FOUNDATIONS}
    return {word for word in re.findall(r"[a-z]+", text) if word in set(wings(root)) | {FOUNDATIONS}}


def wing_graph(root=PACKAGE):
    """{(importing wing, imported wing): [module -> module, ...]} across wings."""
    known = modules(root)
    edges = {}
    for name, path in known.items():
        here = wing_of(name, root)
        if here is None:
            continue
        for target in imported_modules(path, known, root):
            there = wing_of(target, root)
            if there is not None and there != here:
                edges.setdefault((here, there), []).append(f"{name} -> {target}")
    return edges


def test_the_package_is_a_few_wings_and_a_few_foundations():
    assert wings() == ["apps", "data", "files", "models", "nn", "see", "training"]
    loose = sorted(path.stem for path in PACKAGE.glob("*.py") if path.name != "__init__.py")
    assert loose == ["archive", "atomic", "backend", "errors", "validation"]


@pytest.mark.parametrize("wing", ["apps", "data", "files", "models", "nn", "see", "training", FOUNDATIONS])
def test_every_wing_imports_only_what_its_docstring_allows(wing):
    allowed = allowed_imports(wing) | {wing}
    forbidden = {edge: where for edge, where in wing_graph().items() if edge[0] == wing and edge[1] not in allowed}
    assert not forbidden, f"{wing} may import {sorted(allowed)}, but: {forbidden}"


def circle(edges):
    """One circle of wings (``["nn", "models", "nn"]``) in ``edges``, or None."""
    graph = {}
    for here, there in edges:
        graph.setdefault(here, set()).add(there)

    def walk(start, path):
        for nxt in sorted(graph.get(path[-1], ())):
            if nxt == start:
                return path + [nxt]
            if nxt not in path:
                found = walk(start, path + [nxt])
                if found:
                    return found
        return None

    for wing in sorted(graph):
        found = walk(wing, [wing])
        if found:
            return found
    return None


def test_no_circle_between_wings():
    edges = wing_graph()
    found = circle(edges)
    assert found is None, ("import circle " + " -> ".join(found) + ": "
                           + "; ".join(edges[(a, b)][0] for a, b in zip(found, found[1:])))


def test_the_checker_sees_an_import_hidden_in_a_function(tmp_path):
    """A made-up package whose low wing imports a high one inside a function: both rules fail on it."""
    root = tmp_path / "glassnet"
    files = {"__init__.py": '"""door\n\nFoundations import: foundations\n"""\n', "errors.py": "",
             "low/__init__.py": '"""low\n\nImports: foundations.\n"""\n',
             "low/thing.py": "from ..errors import x\n\n\ndef late():\n    from ..high.other import y\n",
             "high/__init__.py": '"""high\n\nImports: foundations, low.\n"""\n',
             "high/other.py": "from ..low import thing\n"}
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    edges = wing_graph(root)
    assert edges == {("low", "foundations"): ["glassnet.low.thing -> glassnet.errors"],
                     ("low", "high"): ["glassnet.low.thing -> glassnet.high.other"],
                     ("high", "low"): ["glassnet.high.other -> glassnet.low.thing"]}
    assert circle(edges) == ["high", "low", "high"]
    assert allowed_imports("low", root) == {"foundations"} and allowed_imports("high", root) == {"foundations", "low"}


def test_import_glassnet_pulls_in_no_extra_and_no_app():
    code = ("import sys, glassnet; print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in "
            f"{EXTRAS!r} or m.startswith('glassnet.apps.'))))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == []


def test_old_import_paths_still_work():
    code = ("import glassnet as gn\n"
            "from glassnet.layers import Conv2D\nfrom glassnet.layers.conv import Conv2D as C2\n"
            "from glassnet.datasets import digits\nfrom glassnet.datasets.folder import image_folder\n"
            "from glassnet.interop.onnx_format import export_onnx\nfrom glassnet.interop.compare import compare\n"
            "from glassnet.trace import Trace, trace\n"
            "assert Conv2D is C2 is gn.Conv2D and digits is gn.datasets.digits and export_onnx is gn.export_onnx\n"
            "assert compare is gn.compare and Trace is gn.Trace and trace is gn.trace and callable(gn.trace)\n"
            "assert gn.layers.Dense is gn.Dense and image_folder is gn.datasets.image_folder\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
