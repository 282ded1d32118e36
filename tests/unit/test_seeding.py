"""Seeding: no two random generators of an experiment draw the same numbers (issue 10).

Syne Tune 0.16's ASHA samples from its own `RandomState(random_seed)` and, once it has
results, from numpy's global RNG; seeded alike, the two streams coincide and configurations
repeat a few trials apart.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import numpy as np
import pytest
from syne_tune.backend.trial_status import Trial
from syne_tune.config_space import Float

from stbench.model.catalog import load_benchmark
from stbench.model.seeding import spawn_seeds
from stbench.orchestration.study_runner import seeded_scheduler

NUM_TRIALS = 300


@pytest.fixture(autouse=True)
def global_rng_state() -> Iterator[None]:
    numpy_state, random_state = np.random.get_state(), random.getstate()
    yield
    np.random.set_state(numpy_state)
    random.setstate(random_state)


def proposals(method: str, scheduler_seed: int, num_trials: int = NUM_TRIALS) -> list[dict]:
    """The configs of new trials, seeded as `run_experiment` seeds the method, each trial
    reporting one epoch (ASHA draws from the global RNG only once it has results)."""
    scheduler = seeded_scheduler(method, load_benchmark("synthetic_curves"), scheduler_seed)
    configs = []
    for trial_id in range(num_trials):
        suggestion = scheduler.suggest()
        assert suggestion is not None and suggestion.spawn_new_trial_id
        trial = Trial(trial_id, suggestion.config, creation_time=None)
        scheduler.on_trial_add(trial)
        loss = (trial_id * 0.618034) % 1.0  # any deterministic values
        scheduler.on_trial_result(trial, {"epoch": 1, "loss": loss})
        configs.append(suggestion.config)
    return configs


def repeated_draws(configs: list[dict]) -> int:
    """Uniform draws (each float value as a fraction of its range) seen more than once. The
    range's ends are left out: they are no draws but where the GP searchers' local search
    clips a step that left the space (MOBSTER may propose x = 3.0 twice)."""
    space = load_benchmark("synthetic_curves").config_space
    floats = {k: d for k, d in space.items() if isinstance(d, Float)}
    assert len(floats) >= 2
    draws = [round((config[k] - d.lower) / (d.upper - d.lower), 9)
             for config in configs for k, d in floats.items()]
    draws = [draw for draw in draws if 0.0 < draw < 1.0]
    return len(draws) - len(set(draws))


# MOBSTER fits a Gaussian process per proposal once it has results: fewer trials keep it fast.
@pytest.mark.parametrize(("method", "num_trials"),
                         [("ASHA", NUM_TRIALS), ("RS", NUM_TRIALS), ("BOHB", NUM_TRIALS),
                          ("MOBSTER", 60)])
def test_no_draw_repeats_across_trials_or_keys(method: str, num_trials: int) -> None:
    assert repeated_draws(proposals(method, 1234, num_trials)) == 0


@pytest.mark.parametrize("method", ["ASHA", "MOBSTER"])
def test_same_scheduler_seed_gives_same_configurations(method: str) -> None:
    first = proposals(method, 77, 20)
    np.random.seed(0)  # whatever ran before in the process does not matter
    assert proposals(method, 77, 20) == first
    assert proposals(method, 78, 20) != first


def test_spawned_seeds_are_distinct_and_reproducible() -> None:
    seeds = spawn_seeds(5, 4)
    assert len(set(seeds)) == 4 and 5 not in seeds
    assert spawn_seeds(5, 4) == seeds
