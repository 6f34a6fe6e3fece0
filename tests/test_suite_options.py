"""The test suite's own options (tests/conftest.py): what the default run leaves out, and that it says so."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent


@pytest.fixture
def suite(tmp_path) -> Path:
    """A small suite under our conftest: one plain test, two marked `extended`."""
    shutil.copy(TESTS / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    extended: left out unless --extended\n")
    (tmp_path / "test_small.py").write_text(
        "import pytest\n\n"
        "def test_plain():\n    pass\n\n"
        "@pytest.mark.extended\ndef test_long_one():\n    pass\n\n"
        "@pytest.mark.extended\n@pytest.mark.parametrize('n', [1])\ndef test_long_two(n):\n    pass\n")
    return tmp_path


def pytest_in(folder: Path, *args: str) -> tuple[str, set]:
    """pytest run in ``folder``: its "left out" line ("" when none), and the tests that passed."""
    done = subprocess.run([sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider", *args], cwd=folder,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    said = [line for line in done.stdout.splitlines() if line.startswith("left out")]
    assert len(said) <= 1
    passed = {word.split("::")[1] for line in done.stdout.splitlines() if "PASSED" in line
              for word in line.split() if "::" in word}
    return (said[0] if said else ""), passed


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["one process", "xdist"])
def test_the_default_run_leaves_out_the_extended_tests_and_says_how_many(suite, workers):
    last, out = pytest_in(suite, *workers)
    assert out == {"test_plain"}
    assert last.startswith("left out: 2 tests marked `extended`") and "--extended" in last


def test_extended_runs_everything_and_a_named_test_always_runs(suite):
    last, out = pytest_in(suite, "--extended")
    assert out == {"test_plain", "test_long_one", "test_long_two[1]"} and last == ""
    last, out = pytest_in(suite, "test_small.py::test_long_two")
    assert out == {"test_long_two[1]"} and last == ""


def test_tests_that_k_leaves_out_are_not_counted_as_ours(suite):
    last, out = pytest_in(suite, "-k", "long_one or plain")
    assert out == {"test_plain"} and last.startswith("left out: 1 tests marked")


@pytest.fixture(scope="module")
def folders_a_module_fixture_sees() -> dict:
    """What a module's fixture (built before any test's own fixtures: test_describer_eval.py reads 64 pages in
    one) sees of the folders a run writes to."""
    import os

    return {name: os.environ.get(name) for name in ("XDG_CACHE_HOME", "MANGA2MUSIC_CACHE", "MANGA2MUSIC_CONFIG_DIR")}


def test_a_module_fixture_writes_nothing_into_the_developers_own_folders(folders_a_module_fixture_sees,
                                                                         tmp_path_factory):
    temp = tmp_path_factory.getbasetemp()
    for name, value in folders_a_module_fixture_sees.items():
        assert value and Path(value).is_relative_to(temp), f"{name}={value}"
