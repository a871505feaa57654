"""``run``: RecBole's quick start (``run_recbole``) for ``asrec.recbole.ASRec``."""

import os
import warnings
from logging import getLogger
from typing import Optional

import torch
from recbole.config import Config
from recbole.data import create_dataset, data_preparation
from recbole.trainer import Trainer
from recbole.utils import init_logger, init_seed

from ..run_folder import fresh_run_folder
from .config import published_config
from .model import ASRec


def run(dataset: str, data_path: Optional[str] = None, config_dict: Optional[dict] = None,
        config_file_list: Optional[list] = None, saved: bool = True, show_progress: bool = False,
        epochs: Optional[int] = None, output: Optional[str] = None) -> dict:
    """Train ``ASRec`` with RecBole's ``Trainer`` on ``dataset`` and evaluate the best model on
    the test set, as ``run_recbole`` does for RecBole's own models.

    The config is ``published_config(dataset)`` for the paper's datasets (else RecBole's
    defaults), then ``config_file_list``, then ``config_dict``. ``data_path``: the folder
    holding ``<dataset>.inter`` (RecBole would otherwise read its own copy of ml-100k, or
    ``<config data_path>/<dataset>``). ``epochs``: the number of training epochs (None: the
    config's, for the published presets up to 200 with early stopping, hours on a CPU).
    ``output``: the run's folder (default ``runs/recbole-<dataset>-<time>``), which gets
    RecBole's ``log/``, ``log_tensorboard/`` and ``saved/`` (the checkpoint); RecBole writes the
    first two under the working folder, so the working folder is ``output`` while it runs
    (do not call ``run`` from several threads at once).

    Returns RecBole's result dict (best_valid_score, valid_score_bigger, best_valid_result,
    test_result) and ``output``, the run folder's absolute path.
    """
    overrides = dict(config_dict or {})
    if epochs is not None:
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise ValueError(f"epochs: expected a positive int, got {epochs!r}")
        if overrides.get("epochs", epochs) != epochs:
            raise ValueError(f"epochs: {epochs} contradicts config_dict['epochs'] = {overrides['epochs']}; give one")
        overrides["epochs"] = epochs
    try:
        base = published_config(dataset)
    except ValueError:
        base = {"loss_type": "CE", "train_neg_sample_args": None}
    output = os.path.abspath(output or default_output(dataset))
    files = [os.path.abspath(f) for f in config_file_list] if config_file_list else None
    config = Config(model=ASRec, dataset=dataset, config_file_list=files,
                    config_dict={**base, "checkpoint_dir": os.path.join(output, "saved"), **overrides})
    if data_path is not None:
        config["data_path"] = os.path.abspath(data_path)
    os.makedirs(output, exist_ok=True)
    working = os.getcwd()
    os.chdir(output)  # RecBole's logger and TensorBoard writer write log/ and log_tensorboard/ in the working folder
    try:
        with warnings.catch_warnings():
            # RecBole 1.2.1's own calls of APIs that pandas and torch have since deprecated
            # (fillna(inplace=True), torch.cuda.amp.GradScaler): nothing the caller can act on
            warnings.filterwarnings("ignore", category=FutureWarning, module=r"recbole\.")
            results = _run(config, saved, show_progress)
    finally:
        os.chdir(working)
    return {**results, "output": output}


def default_output(dataset: str) -> str:
    """``runs/recbole-<dataset>-<time>``, numbered on when it exists."""
    return fresh_run_folder(f"recbole-{dataset}")


def _run(config: Config, saved: bool, show_progress: bool) -> dict:
    init_seed(config["seed"], config["reproducibility"])
    init_logger(config)
    logger = getLogger()
    logger.info(config)
    data = create_dataset(config)
    logger.info(data)
    train_data, valid_data, test_data = data_preparation(config, data)
    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    model = ASRec(config, train_data._dataset).to(config["device"])
    logger.info(model)
    trainer = Trainer(config, model)
    best_valid_score, best_valid_result = trainer.fit(train_data, valid_data, saved=saved,
                                                      show_progress=show_progress)
    if saved:
        load_best(trainer)
    test_result = trainer.evaluate(test_data, load_best_model=False, show_progress=show_progress)
    return {"best_valid_score": best_valid_score, "valid_score_bigger": config["valid_metric_bigger"],
            "best_valid_result": best_valid_result, "test_result": test_result}


def load_best(trainer: Trainer) -> None:
    """Load the trainer's saved best model into its model.

    What ``Trainer.evaluate(load_best_model=True)`` does, but RecBole 1.2.1 calls
    ``torch.load`` with torch's default ``weights_only``, which is True from torch 2.6 on and
    refuses the config object inside RecBole's checkpoints; this is RecBole's own file.
    """
    state = torch.load(trainer.saved_model_file, map_location=trainer.device, weights_only=False)
    trainer.model.load_state_dict(state["state_dict"])
    trainer.model.load_other_parameter(state.get("other_parameter"))
