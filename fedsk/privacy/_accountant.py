"""How releases add up, and the ledgers that refuse to overspend.

A :class:`BudgetLedger` holds one party's (or one fit's) events and its
ceiling. :func:`charge` checks every ledger a release touches and records the
events in all of them, or in none: it runs in the parent process before any
noise is drawn. A :class:`PrivacyAccountant` is a shared collection of
ledgers keyed by party name; ``copy.deepcopy`` (and so ``sklearn.clone``)
returns the same object, so the spends of every fit in a search land in one
place.
"""

import math
import os
import threading

from ._composition import DISPLAY_TOLERANCE, composed_epsilon
from ._errors import BudgetExceededError
from ._report import PrivacyReport

_CHARGE_LOCK = threading.Lock()


class BudgetLedger:
    """The releases charged against one budget, and its ceiling.

    Parameters
    ----------
    name : str
        Whose budget it is (a party, or a fit).
    epsilon : float, default=inf
        Ceiling on the composed epsilon.
    delta : float or None, default=None
        The delta at which epsilon is composed and capped. ``None`` means no
        delta ceiling: the total is stated at the sum of the events' deltas.

    Attributes
    ----------
    events : list of ReleaseEvent
        Every release charged, in order.
    """

    def __init__(self, name, *, epsilon=math.inf, delta=None):
        if not epsilon > 0:
            raise ValueError(
                f"The privacy budget of {name!r} must have epsilon > 0 (or inf); "
                f"got {epsilon!r}."
            )
        if delta is not None and not 0 <= delta < 1:
            raise ValueError(
                f"The privacy budget of {name!r} must have delta in [0, 1); "
                f"got {delta!r}."
            )
        self.name = name
        self.epsilon = float(epsilon)
        self.delta = delta
        self.events = []
        self._pid = os.getpid()

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_pid"] = None  # a copy outside this process may not be charged
        return state

    def spent(self, extra=()):
        """Return ``(epsilon, delta)`` spent, optionally with ``extra`` events."""
        events = [*self.events, *extra]
        delta = self.delta
        if delta is None:
            delta = min(math.fsum(e.delta for e in events), 1.0)
        return composed_epsilon(events, delta), delta

    def remaining(self):
        """Epsilon left under the ceiling (never negative)."""
        if math.isinf(self.epsilon):
            return math.inf
        left = self.epsilon - self.spent()[0]
        # the margin left by budget splits is not budget anyone planned on
        return 0.0 if left <= DISPLAY_TOLERANCE * max(1.0, self.epsilon) else left

    def _refusal(self, new_events):
        spent, delta = self.spent(new_events)
        if spent <= self.epsilon:  # no slack: budget splits leave a margin
            return None
        return (
            f"{self.name!r} would spend epsilon {spent:.6g} (at delta {delta:.3g}) "
            f"against a budget of {self.epsilon:.6g}; {self.remaining():.6g} "
            "remains"
        )

    def __repr__(self):
        eps, delta = self.spent()
        return (
            f"BudgetLedger({self.name!r}, spent epsilon={eps:.6g}, "
            f"delta={delta:.3g}, budget epsilon={self.epsilon:.6g}, "
            f"releases={len(self.events)})"
        )


def charge(charges):
    """Record events in ledgers, all or nothing, after checking every ceiling.

    Parameters
    ----------
    charges : sequence of (BudgetLedger, sequence of ReleaseEvent)
        What each ledger is asked to pay.

    Raises
    ------
    BudgetExceededError
        If any ledger would exceed its ceiling. Nothing is recorded anywhere.
    RuntimeError
        If a ledger is a copy made in another process (its spends would be
        lost when that process ends).
    """
    with _CHARGE_LOCK:
        for ledger, _ in charges:
            if ledger._pid != os.getpid():
                raise RuntimeError(
                    f"The budget ledger of {ledger.name!r} was copied into another "
                    "process, where spends would be lost. Run searches with "
                    "n_jobs=1 or inside joblib.parallel_config(backend='threading')."
                )
        _check(charges, "Nothing was released or charged")
        for ledger, events in charges:
            ledger.events.extend(events)


def check_affordable(charges):
    """Raise :class:`BudgetExceededError` if :func:`charge` would; record nothing.

    Used to refuse a whole fit before its first release when its planned
    total does not fit in some ledger.
    """
    with _CHARGE_LOCK:
        _check(
            charges,
            "Nothing was released or charged: the fit was refused before its "
            "first release",
        )


def _check(charges, consequence):
    pending = {}  # a ledger asked to pay several events pays them together
    for ledger, events in charges:
        pending.setdefault(id(ledger), (ledger, []))[1].extend(events)
    refusals = [
        r for ledger, events in pending.values() if (r := ledger._refusal(events))
    ]
    if refusals:
        raise BudgetExceededError(
            "Privacy budget exceeded: "
            + "; ".join(refusals)
            + f". {consequence}. Lower epsilon, or raise the budget."
        )


def refund(charges):
    """Remove events recorded by :func:`charge` for a release that never happened.

    Used only when the release failed before any noisy value left the
    parties' and aggregator's hands; ``charges`` is (part of) what was
    passed to :func:`charge`. Events are removed by identity.
    """
    with _CHARGE_LOCK:
        for ledger, events in charges:
            drop = {id(e) for e in events}
            ledger.events[:] = [e for e in ledger.events if id(e) not in drop]


class PrivacyAccountant:
    """Shared ledgers of every party, across fits, clones and searches.

    Pass one accountant to every ``FederatedEstimator`` that works on the
    same parties: each party's spending is then composed across all of them,
    including every fit of a ``GridSearchCV`` or ``cross_val_score``, and a
    party's ceiling is enforced over all of them.

    Parameters
    ----------
    epsilon : float, default=inf
        Budget ceiling of every party that this accountant creates a ledger
        for.
    delta : float or None, default=None
        Delta ceiling of those parties (``None``: no delta ceiling).

    Notes
    -----
    ``copy.deepcopy`` and ``sklearn.base.clone`` return this same object, so
    that spends are not lost on copies. Charging from another process (for
    example a search with ``n_jobs=2`` under the loky backend) raises an error
    rather than losing spends; use the threading backend for parallel
    searches.
    """

    def __init__(self, *, epsilon=math.inf, delta=None):
        self.epsilon = epsilon
        self.delta = delta
        self.ledgers = {}
        self._pid = os.getpid()

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_pid"] = None  # a copy outside this process may not be used
        return state

    def ledger(self, party):
        """Return the ledger of ``party``, creating it with the default ceiling.

        Raises
        ------
        RuntimeError
            In a copy of the accountant made in another process, whose new
            ledgers and spends would be lost.
        """
        with _CHARGE_LOCK:
            if self._pid != os.getpid():
                raise RuntimeError(
                    "This PrivacyAccountant was copied into another process, where "
                    "spends would be lost. Run searches with n_jobs=1 or inside "
                    "joblib.parallel_config(backend='threading')."
                )
            if party not in self.ledgers:
                self.ledgers[party] = BudgetLedger(
                    party, epsilon=self.epsilon, delta=self.delta
                )
            return self.ledgers[party]

    def __deepcopy__(self, memo):
        return self

    def privacy_report(self):
        """Return the :class:`~fedsk.privacy.PrivacyReport` of every party."""
        return PrivacyReport(list(self.ledgers.values()))

    def __repr__(self):
        return (
            f"PrivacyAccountant(epsilon={self.epsilon!r}, delta={self.delta!r}, "
            f"parties={len(self.ledgers)})"
        )
