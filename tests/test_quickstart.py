"""The README's quickstart is what CI follows: its Quickstart and Tests blocks are read from
README.md (so a change there changes what CI runs), make the venv inside the clone, install
the CPU torch this project measures on with the test and bench extras, run the main job,
then the test command; .ci/run runs them through tests/quickstart.py from a clone named
``asrec``. The run itself (minutes: a venv and its packages) is CI's, not this suite's."""

import os
import re
import subprocess

import pytest

from . import quickstart

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = open(os.path.join(ROOT, "README.md")).read()


def test_the_quickstart_block_sets_up_and_runs_the_main_job():
    commands = quickstart.section_commands(README, "Quickstart")
    assert len(commands) == 3, commands  # the two set-up commands and the main job
    venv, install, job = commands
    assert venv == "python3 -m venv .venv && . .venv/bin/activate"  # inside the clone: asrec/.venv
    assert install.startswith("pip install torch==2.13.0 ") and '".[test,bench]"' in install
    assert job.startswith("asrec bench")


def test_the_extras_it_installs_exist():
    pyproject = open(os.path.join(ROOT, "pyproject.toml")).read()
    for extra in re.search(r'"\.\[([a-z,]+)\]"', quickstart.section_commands(README, "Quickstart")[1]).group(1) \
            .split(","):
        assert re.search(rf"^{extra} = \[", pyproject, re.M), extra


def test_the_test_command_follows_it():
    assert quickstart.section_commands(README, "Tests") == ["pytest"]
    assert quickstart.readme_commands(README, with_tests=True)[-1] == "pytest"


def test_ci_runs_the_readme_quickstart_from_a_clone():
    ci = open(os.path.join(ROOT, ".ci", "run")).read()
    assert re.search(r"^python3 tests/quickstart\.py --with-tests$", ci, re.M)
    assert "ASREC_REQUIRE_DATA=1" in ci.split("tests/quickstart.py")[0]  # exported before it


def test_the_script_runs_the_commands_verbatim_in_order_and_stops_at_a_failure(tmp_path):
    clone = tmp_path / "asrec"
    clone.mkdir()
    commands = ["echo first > one.txt", "false", "echo never > two.txt"]
    script = quickstart.bash_script(commands, str(clone))
    for command in commands:
        assert f"\n{command}\n" in script
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True)
    assert done.returncode != 0
    assert (clone / "one.txt").read_text() == "first\n" and not (clone / "two.txt").exists()
    assert "quickstart$ echo first > one.txt" in done.stdout and "quickstart: 0 s for echo first > one.txt" in \
        done.stdout


def test_a_missing_block_is_named():
    with pytest.raises(ValueError, match="no '## Quickstart' section"):
        quickstart.section_commands("# asrec\n", "Quickstart")
    with pytest.raises(ValueError, match="section has no ```sh block"):
        quickstart.section_commands("## Quickstart\n\n    pip install .\n\n## Next\n", "Quickstart")
