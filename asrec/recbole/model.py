"""``ASRec``: the published RecBole model class, computed by ``asrec.ASRecModel``."""

import torch
from recbole.model.abstract_recommender import SequentialRecommender

from .. import checkpoint
from ..model import ASRecModel

# RecBole's SASRec defaults for the keys a config may leave out (the published class has no defaults)
DEFAULTS = dict(n_layers=2, n_heads=2, hidden_size=64, inner_size=256, hidden_dropout_prob=0.5,
                attn_dropout_prob=0.5, hidden_act="gelu", layer_norm_eps=1e-12, initializer_range=0.02, A=1.0)
_PREFIX = "asrec."


class ASRec(SequentialRecommender):
    """RecBole ``SequentialRecommender`` of the published ASRec.

    Reads the published config keys (``n_layers``, ``n_heads``, ``hidden_size``,
    ``inner_size``, ``hidden_dropout_prob``, ``attn_dropout_prob``, ``hidden_act``,
    ``layer_norm_eps``, ``initializer_range``, ``A``, ``MAX_ITEM_LIST_LENGTH``; missing ones
    take ``DEFAULTS``) and the optional ``filter_scope`` ("batch", published, or "sequence").
    Its ``state_dict()`` has the published keys, order and shapes, and ``load_state_dict``
    takes a published state_dict (or one of this class), so RecBole checkpoints of the
    published code load here and the other way round. The training loss is cross-entropy
    over all items (the published loss, whatever ``loss_type`` says, so a config must not
    ask for negative sampling).
    """

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        negatives = config["train_neg_sample_args"]
        if negatives is not None and negatives.get("distribution", "none") != "none":
            raise ValueError("ASRec trains with cross-entropy over all items: set train_neg_sample_args to None "
                             "(and loss_type to 'CE')")
        published = {key: config[key] if config[key] is not None else DEFAULTS.get(key)
                     for key in checkpoint.CONFIG_KEYS}
        published["MAX_ITEM_LIST_LENGTH"] = self.max_seq_length
        # the published config -> ASRecModel arguments, as for a published checkpoint; n_items
        # (which that conversion reads off the item embedding) is the dataset's
        shape_only = {"item_embedding.weight": torch.empty(self.n_items, published["hidden_size"], device="meta")}
        kwargs = checkpoint.model_kwargs_from_original(shape_only, published)
        self.asrec = ASRecModel(filter_scope=config["filter_scope"] or "batch", **kwargs)
        self.asrec.check_values = False  # RecBole's batches hold valid ids and lengths
        self.n_layers = kwargs["n_layers"]
        # older torch releases have only the private name of the post-hook registration
        (getattr(self, "register_state_dict_post_hook", None) or self._register_state_dict_hook)(
            _to_published_keys)
        self.register_load_state_dict_pre_hook(_from_published_keys)

    def forward(self, item_seq: torch.Tensor, item_seq_len: torch.Tensor) -> torch.Tensor:
        """(batch, N) ids, (batch,) lengths -> (batch, hidden): the state at each last item."""
        return self.asrec(item_seq, item_seq_len)

    def calculate_loss(self, interaction) -> torch.Tensor:
        """Cross-entropy of the next item over all items (mean over the batch)."""
        seq, length = interaction[self.ITEM_SEQ], interaction[self.ITEM_SEQ_LEN]
        return self.asrec.loss(seq, length, interaction[self.POS_ITEM_ID])

    def predict(self, interaction) -> torch.Tensor:
        """Score of ``interaction[ITEM_ID]`` for each sequence (RecBole's sampled evaluation)."""
        output = self.forward(interaction[self.ITEM_SEQ], interaction[self.ITEM_SEQ_LEN])
        return (output * self.asrec.item_embedding(interaction[self.ITEM_ID])).sum(dim=-1)

    def full_sort_predict(self, interaction) -> torch.Tensor:
        """(batch, n_items) scores of every item (RecBole sets the padding item's to -inf)."""
        return self.asrec.full_sort_scores(interaction[self.ITEM_SEQ], interaction[self.ITEM_SEQ_LEN])


def _to_published_keys(module: ASRec, state_dict, prefix: str, local_metadata) -> None:
    """state_dict post-hook: ``asrec.<asrec name>`` -> the published name, in published order."""
    pairs = checkpoint.name_map(module.n_layers)
    tensors = {ours: state_dict.pop(prefix + _PREFIX + ours) for _, ours in pairs}
    for original, ours in pairs:
        state_dict[prefix + original] = tensors[ours]


def _from_published_keys(module: ASRec, state_dict, prefix: str, *args) -> None:
    """load_state_dict pre-hook: published names -> ``asrec.<asrec name>`` (others untouched)."""
    for original, ours in checkpoint.name_map(module.n_layers):
        if prefix + original in state_dict:
            state_dict[prefix + _PREFIX + ours] = state_dict.pop(prefix + original)
