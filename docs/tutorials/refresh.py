"""Re-run the tutorial notebooks top to bottom and save them with their outputs.

    python docs/tutorials/refresh.py                 # all of them
    python docs/tutorials/refresh.py 03_*.ipynb      # some

Each notebook runs in a fresh kernel inside a temporary folder (the pictures it writes are
thrown away; what it shows is kept in the notebook). Progress bars are kept at their final
state only. The documentation site renders the saved outputs; the test suite
(``tests/test_tutorials.py``) runs every notebook again and fails if one raises.
"""
import os
import sys
import tempfile
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
TIMEOUT_SECONDS = 600


def execute(path, workdir):
    """Run the notebook at ``path`` with ``workdir`` as its current folder; returns the executed notebook."""
    notebook = nbformat.read(path, as_version=4)
    os.environ.setdefault("PYTHONWARNINGS", "ignore:IProgress not found")   # tqdm's ipywidgets hint
    client = NotebookClient(notebook, timeout=TIMEOUT_SECONDS, kernel_name="python3",
                            resources={"metadata": {"path": str(workdir)}}, coalesce_streams=True)
    client.execute()
    for cell in notebook.cells:
        cell.metadata.pop("execution", None)
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                output["text"] = final_state(output["text"])
        if "outputs" in cell:
            cell.outputs = [o for o in cell.outputs if o.get("output_type") != "stream" or o["text"].strip()]
    return notebook


def final_state(text):
    """What a terminal would show: on each line, only what follows the last carriage return."""
    return "\n".join(line.rsplit("\r", 1)[-1] for line in text.split("\n"))


def main(names):
    paths = [HERE / name for name in names] if names else sorted(HERE.glob("*.ipynb"))
    for path in paths:
        with tempfile.TemporaryDirectory() as workdir:
            notebook = execute(path, workdir)
        nbformat.write(notebook, path)
        print(f"refreshed {path.name}")


if __name__ == "__main__":
    main(sys.argv[1:])
