"""The default folder of a run: ``runs/<name>-<YYYYmmdd-HHMMSS>``, numbered on when it exists."""

import datetime
import os


def fresh_run_folder(name: str) -> str:
    """A path under ``runs/`` that does not exist yet (not created here)."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    output = base = os.path.join("runs", f"{name}-{stamp}")
    suffix = 1
    while os.path.exists(output):
        suffix += 1
        output = f"{base}-{suffix}"
    return output
