"""One fit's view of the federation: its budget, clipping, trust and seeds.

Algorithms in this package see parties only through :meth:`FitSession.release`:
they name a statistic and the fraction of the fit's budget to spend on it,
and get back noisy totals.
"""

import math
import time
from fractions import Fraction

from tqdm.auto import tqdm

from .._federation import Request
from ..privacy import budget_share


class FitSession:
    """The federation as one fit sees it.

    Parameters
    ----------
    federation : Federation
    estimator_name : str
        Name under which releases are charged.
    epsilon, delta : float
        The fit's budget; algorithms spend fractions of it.
    clipping : Clipping
        Public clipping region.
    trust : {"central", "local", "secure", "peer_to_peer"}
    seed_sequence : numpy.random.SeedSequence or None
        Simulation only (a user ``random_state``): root of the noise seeds.
        ``None``: every party draws its noise from its own secret.
    fit_ledger : BudgetLedger
        The fit's own ledger (ceiling: its epsilon and delta).
    accountant : PrivacyAccountant, default=None
        Shared ledgers charged too, one per party.
    share : float, default=1.0
        Part of the budget that fractions refer to (the rest was spent
        before, e.g. on private bounds).
    strategy : str, default="auto"
        Training strategy of iterative algorithms.
    max_rounds : int or None, default=None
        Cap on the rounds of iterative algorithms (None: their default).
    max_time : float or None, default=None
        Seconds after which iterative algorithms start no further round
        (None: no limit); see :meth:`out_of_time`.
    verbose : int, default=0
        Show a progress bar over rounds when positive, and over parties in
        each release when above 1.
    group_size : int, default=1
        Records per unit of privacy (see :class:`~fedsk._federation.Request`).
    binary_features : ndarray of bool of shape (n_features,) or None
        Public: features that take only their bounds' two values (no private
        clipping region is sought for them).

    Attributes
    ----------
    timings : dict
        Seconds spent on the parties' side and in aggregation, summed over
        this fit's releases.
    """

    def __init__(
        self,
        federation,
        *,
        estimator_name,
        epsilon,
        delta,
        clipping,
        trust,
        seed_sequence,
        fit_ledger,
        accountant=None,
        share=1.0,
        strategy="auto",
        max_rounds=None,
        max_time=None,
        verbose=0,
        group_size=1,
        binary_features=None,
    ):
        self.federation = federation
        self.estimator_name = estimator_name
        self.epsilon = epsilon
        self.delta = delta
        self.clipping = clipping
        self.trust = trust
        self.seed_sequence = seed_sequence
        self.fit_ledger = fit_ledger
        self.accountant = accountant
        self.share = share
        self.strategy = strategy
        self.max_rounds = max_rounds
        self.max_time = max_time
        self._started = time.monotonic()
        self.verbose = verbose
        self.group_size = group_size
        self.binary_features = binary_features
        self.timings = {}  # seconds per phase, summed over releases
        self._used = Fraction(0)  # of the budget, exactly

    @property
    def n_features(self):
        return self.federation.n_features_in_

    def out_of_time(self):
        """True once the fit has run for ``max_time`` seconds: an iterative
        algorithm then starts no further round, and the budget of the rounds
        not run stays unspent."""
        return (
            self.max_time is not None
            and time.monotonic() - self._started >= self.max_time
        )

    def progress(self, rounds, what):
        """A progress bar over ``rounds`` (silent unless ``verbose``)."""
        return tqdm(
            total=rounds,
            desc=f"{self.estimator_name} ({what})",
            unit="round",
            disable=not self.verbose,
        )

    def check_budget(self):
        """Refuse the fit now, before its first release, if its whole budget
        does not fit in every ledger it will charge.

        Raises
        ------
        BudgetExceededError
        """
        self.federation.check_budget(
            self._request("(whole fit)", 1.0, self.clipping, {}),
            self.fit_ledger,
            self.accountant,
        )

    def release(self, statistic, fraction=1.0, *, clipping=None, **params):
        """Release ``statistic`` summed over parties, spending ``fraction``.

        Parameters
        ----------
        statistic : str
            Name in the statistic catalogue.
        fraction : float, default=1.0
            Share of the session's budget: of epsilon for pure DP, of zCDP
            rho otherwise. An algorithm's fractions add up to at most 1.
        clipping : Clipping, default=None
            Overrides the session's clipping (used before bounds are known).
        **params
            Public parameters of the statistic.

        Returns
        -------
        release : Release
        """
        request = self._request(
            statistic,
            self._take(fraction * self.share),
            self.clipping if clipping is None else clipping,
            params,
        )
        release = self.federation.release(
            request,
            seed_sequence=self.seed_sequence,
            fit_ledger=self.fit_ledger,
            accountant=self.accountant,
            verbose=self.verbose > 1,
        )
        for phase, seconds in self.federation.last_timing_.items():
            self.timings[phase] = self.timings.get(phase, 0.0) + seconds
        return release

    def _take(self, fraction):
        """``fraction``, cut so that the fractions taken add up to at most 1
        exactly (float rounding in an algorithm's split never overspends)."""
        if math.isinf(self.epsilon):  # nothing to split
            return fraction
        allowed = min(Fraction(fraction), 1 - self._used)
        taken = float(allowed)
        if Fraction(taken) > allowed:
            taken = math.nextafter(taken, 0.0)
        self._used += Fraction(taken)
        return taken

    def _request(self, statistic, fraction, clipping, params):
        epsilon, delta, rho = budget_share(self.epsilon, self.delta, fraction)
        return Request(
            statistic=statistic,
            epsilon=epsilon,
            delta=delta,
            rho=rho,
            clipping=clipping,
            estimator=self.estimator_name,
            trust=self.trust,
            params=params,
            group_size=self.group_size,
        )
