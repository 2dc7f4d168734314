"""Every tutorial notebook runs top to bottom in a fresh kernel; each ends with a cell of checks,
so a tutorial whose story stops being true fails here (and so fails CI)."""
import importlib.util
from pathlib import Path

import pytest

TUTORIALS = Path(__file__).resolve().parents[1] / "docs" / "tutorials"
NOTEBOOKS = sorted(TUTORIALS.glob("*.ipynb"))


def load_refresh():
    spec = importlib.util.spec_from_file_location("refresh", TUTORIALS / "refresh.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_all_seven_tutorials_are_there():
    assert [path.name[:2] for path in NOTEBOOKS] == ["01", "02", "03", "04", "05", "06", "07"]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_the_tutorial_runs_twice_in_one_folder_and_its_checks_pass(notebook, tmp_path):
    """A reader runs a notebook again where it ran before: it must pass again, and everything it writes
    goes into its own folder under work/ (ignored by git), never beside the notebooks."""
    for run in (1, 2):
        executed = load_refresh().execute(notebook, tmp_path)
        last = [cell for cell in executed.cells if cell.cell_type == "code"][-1]
        assert "assert" in last.source, "a tutorial ends with a cell of checks"
        printed = "".join(output.get("text", "") for output in last.outputs)
        assert "all checks passed" in printed, f"run {run}"
        assert {path.name for path in tmp_path.iterdir()} <= {"work"}, sorted(tmp_path.iterdir())


def test_git_ignores_the_tutorials_working_folder():
    ignored = (TUTORIALS.parents[1] / ".gitignore").read_text().split()
    assert "docs/tutorials/work/" in ignored
