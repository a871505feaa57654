"""The library's own errors, on the ground floor: every layer may raise them, and the
``asrec`` command (``asrec.cli``) catches them. This module imports nothing of asrec.
"""


class CommandError(Exception):
    """A bad file, run folder or environment: ``asrec`` prints the message as one line and exits 1.

    The training loop, evaluation and checkpoints subclass it (``TrainingDiverged``,
    ``ModelDiverged``, ``CheckpointError``) so the command reports them the same way."""
