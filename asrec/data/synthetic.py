"""A seeded synthetic dataset with periodic and drifting preferences (``--dataset synthetic``).

Items are split into ``n_topics`` topics of equal size; inside a topic, item popularity
follows a Zipf law shared by all users. Each user has

- a periodic cycle of ``period`` topics (period drawn from 2..5): at step t the periodic
  topic is ``cycle[t % period]``;
- a drifting topic that moves to a neighbouring topic every ``drift_every`` steps on
  average (a random walk on the ring of topics).

- a favourite item in every topic.

At each step the user picks the periodic topic with probability ``periodic_share``, else
the drifting topic; then the favourite item of that topic with probability
``favourite_share``, else an item of the topic by popularity. Timestamps increase by one
per step, so time order is step order. A popularity ranking sees only the Zipf law; a
sequence model can also read the cycle, the drift and the favourites from the history.
"""

import numpy as np


def generate(n_users: int = 600, n_items: int = 300, n_topics: int = 12, min_length: int = 20,
             max_length: int = 60, periodic_share: float = 0.7, drift_every: float = 8.0,
             favourite_share: float = 0.5, seed: int = 0) -> dict:
    """Interactions as token arrays: ``{"user", "item", "time"}``, like ``read_interactions``."""
    if n_items < n_topics:
        raise ValueError(f"n_items ({n_items}) must be at least n_topics ({n_topics})")
    rng = np.random.default_rng(seed)
    per_topic = n_items // n_topics
    zipf = 1.0 / np.arange(1, per_topic + 1) ** 1.1
    zipf /= zipf.sum()
    users, items, times = [], [], []
    for user in range(n_users):
        length = int(rng.integers(min_length, max_length + 1))
        cycle = rng.choice(n_topics, size=int(rng.integers(2, 6)), replace=False)
        drift = int(rng.integers(n_topics))
        steps = np.arange(length)
        moves = rng.random(length) < 1.0 / drift_every
        drift_topics = (drift + np.cumsum(np.where(moves, rng.choice([-1, 1], size=length), 0))) % n_topics
        periodic = rng.random(length) < periodic_share
        topics = np.where(periodic, cycle[steps % len(cycle)], drift_topics)
        favourites = rng.integers(per_topic, size=n_topics)
        picks = np.where(rng.random(length) < favourite_share, favourites[topics],
                         rng.choice(per_topic, size=length, p=zipf))
        users += [f"u{user}"] * length
        items += [f"i{t * per_topic + p}" for t, p in zip(topics, picks)]
        times.append(user * 10_000 + steps)
    return {"user": np.array(users), "item": np.array(items), "time": np.concatenate(times).astype(np.float64)}
