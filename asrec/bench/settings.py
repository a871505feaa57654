"""The published model settings the benchmark runs (SPEC section 8)."""

SETTINGS = {
    # n_items counts the padding item: ml-100k has 1,682 items, ml-1m 3,706.
    "ml-100k": dict(n_items=1683, max_seq_length=50, hidden_size=256, inner_size=256, n_heads=4, n_layers=2,
                    fsm_mix=1.0),
    "ml-1m": dict(n_items=3707, max_seq_length=200, hidden_size=64, inner_size=64, n_heads=1, n_layers=2,
                  fsm_mix=0.4),
}
