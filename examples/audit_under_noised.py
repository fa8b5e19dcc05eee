"""Catch an under-noised release with fedsk's empirical privacy auditor.

A release claims epsilon = 1 for a count (one record moves it by 1), so it
must add discrete Laplace noise of scale 1. A buggy version adds noise of
scale 0.5: its true epsilon is 2. The auditor runs each release 100,000
times on two neighbouring datasets (10 and 11 records), searches the event
``{output > c}`` that separates them best on half of the trials, and bounds
epsilon from below on the other half with Clopper-Pearson intervals at 95%
confidence. A lower bound above the claim means the claim is false.

Then the same audit runs through a real fedsk release path: the count block
of ``class_counts`` encoded on fedsk's grid (``GridEncoding``), once with the
calibrated noise and once with half of it.

Run::

    python examples/audit_under_noised.py
"""

import dataclasses

import numpy as np

from fedsk.privacy import (
    GridEncoding,
    audit_release,
    discrete_laplace,
    laplace_scale,
)

CLAIMED_EPSILON = 1.0
TRIALS = 100_000


def correct_count(rows, rng, n):
    """Count plus discrete Laplace noise of scale 1 / epsilon: n runs at once."""
    return len(rows) + discrete_laplace(laplace_scale(CLAIMED_EPSILON, 1.0), n, rng)


def under_noised_count(rows, rng, n):
    """The bug: half the noise the claim needs."""
    return len(rows) + discrete_laplace(0.5 / CLAIMED_EPSILON, n, rng)


def grid_count(encoding):
    """A count released on fedsk's grid with ``encoding``'s noise."""

    def release(rows, rng, n):
        encoded = encoding.encode([np.array([float(len(rows))])])
        wide = dataclasses.replace(encoding, block_shapes=((n,),))
        return encoded[0] + wide.noise(rng)

    return release


def report(name, mechanism):
    result = audit_release(
        mechanism,
        [0] * 11,  # a dataset with one more record ...
        [0] * 10,  # ... and its neighbour
        n_trials=TRIALS,
        vectorized=True,
        claimed_epsilon=CLAIMED_EPSILON,
        random_state=0,
    )
    verdict = (
        "VIOLATES the claim" if result.exceeds_claim else "consistent with the claim"
    )
    print(
        f"{name:<34} epsilon >= {result.epsilon_lower:5.3f}  ({verdict}; "
        f"{result.event!r} in {result.counts[0]:,} trials on the "
        f"{result.favoured} vs {result.counts[1]:,} on the other, of "
        f"{result.n_trials[0]:,} each)"
    )
    return result


def main():
    print(
        f"Claimed epsilon = {CLAIMED_EPSILON}; 95% lower bounds from {TRIALS:,} "
        "trials per dataset:"
    )
    report("correct count", correct_count)
    report("count with half the noise", under_noised_count)

    calibrated = GridEncoding.calibrate(
        [(1,)], [(1.0, 1.0)], epsilon=CLAIMED_EPSILON, rho=None
    )
    halved = dataclasses.replace(calibrated, noise_scale=calibrated.noise_scale / 2)
    report("correct grid-encoded count", grid_count(calibrated))
    report("grid-encoded count, half the noise", grid_count(halved))


if __name__ == "__main__":
    main()
