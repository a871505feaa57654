"""Follow the README's quickstart literally, as a newcomer would: clone this repository into a
folder named ``asrec`` (with the shared data beside it, as ``../shared``), then run the
commands of the README's "Quickstart" block in one bash session inside the clone (the venv
is made there, ``asrec/.venv``), and with ``--with-tests`` the README's test command after
them. Each command is echoed with the seconds it took. CI (.ci/run) runs it this way.

    python3 tests/quickstart.py [--with-tests] [--keep]

The commands are read from README.md at run time, so a change to the README changes what
is run; ``tests/test_quickstart.py`` checks that the blocks are there and say what CI needs.
"""

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def section_commands(readme: str, heading: str) -> list:
    """The command lines of the first ```sh block under ``## <heading>`` (comments and blank
    lines dropped)."""
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## )", readme + "\n## ", re.S | re.M)
    if match is None:
        raise ValueError(f"README.md has no '## {heading}' section")
    block = re.search(r"^```sh\n(.*?)^```", match.group(1), re.S | re.M)
    if block is None:
        raise ValueError(f"README.md's '## {heading}' section has no ```sh block")
    lines = [line.split(" #")[0].rstrip() for line in block.group(1).splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def readme_commands(readme: str, with_tests: bool) -> list:
    commands = section_commands(readme, "Quickstart")
    if with_tests:
        commands += section_commands(readme, "Tests")
    return commands


def bash_script(commands: list, clone: str) -> str:
    """One bash session in ``clone`` running ``commands`` verbatim, in order, stopping at the
    first failure; each is echoed first and its seconds printed after."""
    lines = ["set -euo pipefail", f"cd {shlex.quote(clone)}"]
    for command in commands:
        lines += [f"echo {shlex.quote('quickstart$ ' + command)}", "SECONDS=0", command,
                  f"printf 'quickstart: %s s for %s\\n' \"$SECONDS\" {shlex.quote(command)}"]
    return "\n".join(lines) + "\n"


def clone_as_asrec(parent: str) -> str:
    """``parent/asrec``: a git clone of this checkout's HEAD, with ``parent/shared`` linking the
    checkout's ``../shared`` (the data the README's commands and the tests read)."""
    clone = os.path.join(parent, "asrec")
    subprocess.run(["git", "clone", "--quiet", ROOT, clone], check=True)
    shared = os.path.join(os.path.dirname(ROOT), "shared")
    if os.path.isdir(shared):
        os.symlink(os.path.realpath(shared), os.path.join(parent, "shared"))
    return clone


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--with-tests", action="store_true", help="then run the README's test command in the clone")
    parser.add_argument("--keep", action="store_true", help="keep the clone and its venv (default: removed)")
    args = parser.parse_args(argv)
    with open(os.path.join(ROOT, "README.md")) as f:
        commands = readme_commands(f.read(), args.with_tests)
    parent = tempfile.mkdtemp(prefix="asrec-quickstart-")
    try:
        clone = clone_as_asrec(parent)
        head = subprocess.run(["git", "-C", clone, "rev-parse", "--short=12", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
        print(f"quickstart: README commands in {clone} (commit {head})", flush=True)
        # a newcomer's shell: no venv of the caller active, nothing on PYTHONPATH
        active = os.environ.get("VIRTUAL_ENV")
        env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
        env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                      if not (active and p.startswith(active)))
        return subprocess.run(["bash", "-c", bash_script(commands, clone)], env=env).returncode
    finally:
        if args.keep:
            print(f"quickstart: kept {parent}", flush=True)
        else:
            shutil.rmtree(parent, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
