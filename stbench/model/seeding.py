"""Independent seeds for the random number generators of one experiment.

Two generators seeded with the same integer produce the same stream: Syne Tune 0.16's ASHA
draws both from its own `RandomState(random_seed)` and from numpy's global RNG, so seeding
both with one seed repeated configurations a few trials apart. Every generator therefore
gets its own child of a `SeedSequence`, and the same root still gives the same children.
"""

from __future__ import annotations

import numpy as np

SEED_BOUND = 2**31 - 1  # what every consumer accepts (RandomState, random, Syne Tune)


def spawn_seeds(root: int, count: int) -> list[int]:
    """`count` independent seeds derived from `root` only (reproducible, never equal streams)."""
    children = np.random.SeedSequence(root).spawn(count)
    return [int(child.generate_state(1)[0] % SEED_BOUND) for child in children]
