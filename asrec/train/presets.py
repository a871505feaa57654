"""Published training presets (SPEC section 8, ``run_ASRec.py``) and the synthetic demo preset."""

COMMON = dict(hidden_act="gelu", layer_norm_eps=1e-12, initializer_range=0.02, learning_rate=1e-3,
              weight_decay=0.0, epochs=300, patience=10, eval_batch_size=256, seed=2020, min_interactions=5)

PRESETS = {
    "ml-100k": dict(COMMON, max_seq_length=50, hidden_size=256, inner_size=256, n_heads=4, n_layers=2,
                    hidden_dropout_prob=0.5, attn_dropout_prob=0.5, batch_size=256, fsm_mix=1.0),
    "amazon-beauty": dict(COMMON, max_seq_length=50, hidden_size=256, inner_size=256, n_heads=4, n_layers=2,
                          hidden_dropout_prob=0.5, attn_dropout_prob=0.5, batch_size=256, fsm_mix=1.0),
    "amazon-sports-outdoors": dict(COMMON, max_seq_length=50, hidden_size=256, inner_size=256, n_heads=4,
                                   n_layers=2, hidden_dropout_prob=0.5, attn_dropout_prob=0.5, batch_size=256,
                                   fsm_mix=1.0),
    "yelp": dict(COMMON, max_seq_length=50, hidden_size=256, inner_size=256, n_heads=1, n_layers=2,
                 hidden_dropout_prob=0.5, attn_dropout_prob=0.5, batch_size=1024, fsm_mix=0.0),
    "ml-1m": dict(COMMON, max_seq_length=200, hidden_size=64, inner_size=64, n_heads=1, n_layers=2,
                  hidden_dropout_prob=0.5, attn_dropout_prob=0.5, batch_size=256, fsm_mix=0.4),
    # not published: a small model that trains in seconds per epoch on a CPU
    "synthetic": dict(COMMON, max_seq_length=20, hidden_size=32, inner_size=64, n_heads=2, n_layers=2,
                      hidden_dropout_prob=0.1, attn_dropout_prob=0.1, batch_size=128, fsm_mix=1.0, epochs=30,
                      patience=5, learning_rate=3e-3),
}

MODEL_KEYS = ("max_seq_length", "hidden_size", "n_layers", "n_heads", "inner_size", "hidden_dropout_prob",
              "attn_dropout_prob", "hidden_act", "layer_norm_eps", "initializer_range", "fsm_mix")
