"""The federation: parties, and the one way to get anything from them.

:meth:`Federation.release` is the boundary. It calibrates the noise from the
statistic's public sensitivity, charges every ledger the release touches
(all or nothing, before any noise is drawn), runs the party-side work through
joblib, aggregates, and returns only noisy totals.
"""

import math
import multiprocessing
import time
from dataclasses import dataclass, field, replace

import numpy as np
from sklearn.utils import check_array
from sklearn.utils.parallel import Parallel, delayed
from tqdm.auto import tqdm

from ._aggregation import (
    SecureAggregationAbort,
    Transcript,
    run_masking,
    run_sharing,
    sum_blocks,
    sum_encoded,
)
from ._party import (
    Party,
    PartyError,
    PartyFailure,
    PartyRequest,
    PartyTask,
    named_answer,
    named_answers,
)
from ._statistics import STATISTICS
from .privacy import (
    PrivacyReport,
    ReleaseEvent,
    charge,
    check_affordable,
    new_release_id,
    new_secret,
    noise_generator,
    refund,
    spawn_seeds,
)

TRUST_MODELS = ("central", "local", "secure", "peer_to_peer")
# Trust models in which every party adds a share of the noise and the shares
# are summed by a protocol that reveals only the total.
DISTRIBUTED = ("secure", "peer_to_peer")
# Most joblib tasks one release creates; more parties share tasks.
MAX_TASKS = 64


@dataclass(frozen=True)
class Request:
    """What an estimator asks the federation for, all of it public.

    Parameters
    ----------
    statistic : str
        Name in the statistic catalogue.
    epsilon, delta, rho : float
        The guarantee of this release (``rho`` is None for pure DP).
    clipping : Clipping
        Region the rows are clipped into.
    estimator : str
        Name of the fit, for the ledgers.
    trust : {"central", "local", "secure", "peer_to_peer"}
        Who adds the noise.
    params : dict
        Public parameters of the statistic (e.g. ``classes``).
    group_size : int, default=1
        The unit of privacy in records: 1 protects one record; with
        ``privacy_unit="party"`` it is the public cap on a party's rows, and
        the whole party is protected (its rows form one group, so every
        sensitivity is multiplied by the cap).
    """

    statistic: str
    epsilon: float
    delta: float
    rho: float | None
    clipping: object
    estimator: str
    trust: str = "central"
    params: dict = field(default_factory=dict)
    group_size: int = 1


@dataclass(frozen=True)
class Release:
    """The aggregated result of a request.

    Attributes
    ----------
    blocks : list of ndarray
        The noisy totals, block by block.
    noise_std : list of float
        Public standard deviation of the noise on each block (0 without
        noise), for estimators to regularise against.
    """

    blocks: list
    noise_std: list


class Federation:
    """Parties whose rows stay with them, and the statistics they release.

    Parameters
    ----------
    parties : list of Party
        Parties with distinct names and the same features.
    n_jobs : int, default=None
        Number of joblib workers for party-side work. The backend is chosen
        with ``joblib.parallel_config`` (loky, threading, dask, ray, ...).
    min_parties : int, default=None
        The fewest parties a release needs. A party that fails, times out or
        returns a malformed statistic is left out of that release (the
        report names it) as long as at least ``min_parties`` remain; below,
        nothing is released and the fit fails with an error naming the
        missing parties. A party left out is not charged, unless its failure
        came from computing on its rows (whether that happens depends on
        them, so it stays charged). ``None``: every party. With
        ``trust="secure"`` or ``"peer_to_peer"`` the threshold is never
        below a majority; it is the Shamir threshold of the masks, and
        every party's noise share is calibrated so that that many shares
        carry the whole guarantee (more survivors add more noise).
    timeout : float, default=None
        Seconds a round waits for the parties (joblib's per-task timeout;
        needs ``n_jobs`` other than 1). Parties that have not answered are
        left out as above.
    retries : int, default=0
        Times a failed party is asked again within one release. A retry
        carries the same release id, from which the party derives its noise,
        so it returns the same noisy value: noise is never redrawn for free.

    Attributes
    ----------
    n_features_in_ : int
        Number of features, shared by all parties.
    feature_names_in_ : ndarray of str or None
        Column names, when the parties' data were DataFrames.
    """

    def __init__(
        self,
        parties,
        *,
        n_jobs=None,
        min_parties=None,
        timeout=None,
        retries=0,
    ):
        self.parties = list(parties)
        self.n_jobs = n_jobs
        self.min_parties = min_parties
        self.timeout = timeout
        self.retries = retries
        self.last_transcript_ = Transcript()
        if min_parties is not None and not 1 <= min_parties <= len(self.parties):
            raise ValueError(
                f"min_parties must be between 1 and the number of parties "
                f"({len(self.parties)}); got {min_parties!r}."
            )
        if retries < 0:
            raise ValueError(f"retries must be >= 0; got {retries!r}.")
        if not self.parties:
            raise ValueError("A Federation needs at least one party.")
        names = [p.name for p in self.parties]
        if len(set(names)) != len(names):
            raise ValueError(f"Party names must be distinct; got {names}.")
        self._describe_loaded()
        first = self.parties[0]
        for party in self.parties[1:]:
            if party.n_features != first.n_features:
                raise ValueError(
                    f"Party {party.name!r} has {party.n_features} features but "
                    f"party {first.name!r} has {first.n_features}."
                )
            if not _same_names(party.feature_names, first.feature_names):
                raise ValueError(
                    f"Party {party.name!r} has different feature names from "
                    f"party {first.name!r}."
                )
        self.n_features_in_ = first.n_features
        self.feature_names_in_ = first.feature_names

    def _describe_loaded(self):
        """Read the public schema of parties whose rows are loaded remotely."""
        loaded = [p for p in self.parties if p.schema is None]
        if not loaded:
            return
        schemas = self._call_parties(
            {p.name: PartyRequest("describe") for p in loaded}, "describe", 0
        )
        for party in loaded:
            schema = schemas[party.name]
            if isinstance(schema, PartyFailure):
                raise PartyError(
                    f"Party {party.name!r} could not load its rows: {schema.error}"
                )
            party.schema = schema

    @classmethod
    def from_labels(cls, X, y, parties, *, accountant=None, n_jobs=None):
        """Simulate a federation from pooled rows and a party label per row.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or None
        parties : array-like of shape (n_samples,) or None
            The party of each row. ``None`` puts every row in one party.
        accountant : PrivacyAccountant, default=None
            Where the simulated parties' ledgers live (shared across fits).
            ``None`` gives each party a fresh ledger with no ceiling.
        n_jobs : int, default=None
        """
        if not hasattr(X, "iloc"):
            X = check_array(X, dtype=None, ensure_all_finite=False)
        n_samples = X.shape[0]
        if y is not None and _num_rows(y) != n_samples:
            raise ValueError(
                f"X has {n_samples} rows but y has {_num_rows(y)}; they must match."
            )
        labels = (
            np.zeros(n_samples, dtype=int) if parties is None else np.asarray(parties)
        )
        if labels.shape != (n_samples,):
            raise ValueError(
                f"parties must have one label per row: expected shape "
                f"({n_samples},), got {labels.shape}."
            )
        members = []
        for label in _unique_in_order(labels):
            rows = np.flatnonzero(labels == label)
            name = "all" if parties is None else str(label)
            party = Party(name, _take(X, rows), None if y is None else _take(y, rows))
            if accountant is not None:
                party.ledger = accountant.ledger(name)
            members.append(party)
        return cls(members, n_jobs=n_jobs)

    @classmethod
    def connect(
        cls, address, *, certs, parties, timeout=60, min_parties=None, retries=0
    ):
        """A federation of party agents at their own sites, through a server.

        Parameters
        ----------
        address : str
            ``HOST:PORT`` of the server (``fedsk serve``).
        certs : str
            The coordinator's start-up kit (``DIR/client`` of ``fedsk certs``).
        parties : list of str
            Names of the parties (their agents, ``fedsk party``, must be
            polling the server).
        timeout : float, default=60
            Seconds to wait for each party's answer to one request.
        min_parties, retries
            As in :class:`Federation`.

        Returns
        -------
        federation : fedsk.network.RemoteFederation
            Needs the ``network`` extra (grpcio).
        """
        from .network import connect

        return connect(
            address,
            certs=certs,
            parties=parties,
            timeout=timeout,
            min_parties=min_parties,
            retries=retries,
        )

    @property
    def party_names(self):
        return [p.name for p in self.parties]

    @property
    def n_parties(self):
        return len(self.parties)

    @property
    def required_parties(self):
        """Fewest parties a release needs (see ``min_parties``)."""
        return self.n_parties if self.min_parties is None else self.min_parties

    @property
    def mask_threshold(self):
        """Fewest survivors of a secure sum (``min_parties``, at least a majority).

        It is the Shamir threshold of the masks and the number of noise
        shares that carry a release's guarantee.
        """
        return max(self.required_parties, self.n_parties // 2 + 1)

    def require_targets(self, *, numeric):
        """Check, on each party's side, that it holds targets.

        With ``numeric``, they must also be finite numbers; numeric targets
        stored as objects are converted to float, as scikit-learn regressors
        do. Errors name the party.
        """
        for party in self.parties:
            party.require_targets(numeric=numeric)

    def release(
        self, request, *, seed_sequence, fit_ledger=None, accountant=None, verbose=0
    ):
        """Release one noisy statistic aggregated over the parties.

        Parameters
        ----------
        request : Request
            What to compute, with which guarantee.
        seed_sequence : numpy.random.SeedSequence or None
            Simulation only (a user ``random_state``): the root from which
            the coordinator derives every party's noise seed, so noise is
            reproducible, and every charged event says so. ``None`` (always
            outside simulation): each party draws its noise from its own
            secret, which never leaves it, and the central noise comes from
            the operating system's cryptographic source.
        fit_ledger : BudgetLedger, default=None
            The fit's own budget, charged once per release (parties are
            disjoint, so they compose in parallel).
        accountant : PrivacyAccountant, default=None
            Shared ledgers charged too, one per party (by name), besides the
            party's own ledger.
        verbose : int, default=0
            Show a progress bar over the parties when positive.

        Returns
        -------
        release : Release

        Raises
        ------
        BudgetExceededError
            Before any noise is drawn, when any party or the fit would
            exceed its budget.
        PartyError
            When fewer than the required parties return a well-formed
            statistic; the message names the others. Nothing is released;
            the charge is taken back from every ledger, except those of
            parties that handed over a noisy value (local noise), and those
            of parties whose failure came from computing on their rows
            (whether such a failure happens depends on the rows, so it is
            itself a release).
        """
        if request.trust not in TRUST_MODELS:
            raise ValueError(
                f"trust must be one of {TRUST_MODELS}; got {request.trust!r}."
            )
        if request.trust in DISTRIBUTED and not math.isfinite(request.epsilon):
            raise ValueError(
                f"trust={request.trust!r} sums grid-encoded noisy statistics; with "
                "epsilon=inf there is no noise and no grid, so the exact statistics "
                "would be summed in the clear. Use a finite epsilon, or "
                "trust='central' for a noise-free fit."
            )
        self.last_transcript_ = Transcript()
        statistic = STATISTICS[request.statistic]
        shapes = statistic.shapes(self.n_features_in_, **request.params)
        encoding = None
        if math.isfinite(request.epsilon):
            encoding = statistic.encoding(
                request.clipping,
                self.n_features_in_,
                request.params,
                epsilon=request.epsilon,
                rho=request.rho,
                group_size=request.group_size,
                divisible=request.trust in DISTRIBUTED,
            )
        if encoding is not None and encoding.max_rows(self.n_parties) < 1:
            raise ValueError(
                "epsilon is too small: its noise leaves no room for a single row in "
                "the 64-bit encoded sum. Nothing was released or charged."
            )
        seeded = encoding is not None and seed_sequence is not None
        charges = self._charge(request, encoding, fit_ledger, accountant, seeded)
        by_party = encoding is not None and request.trust != "central"
        distributed = by_party and request.trust in DISTRIBUTED
        required = self.mask_threshold if distributed else self.required_parties
        seeds = (
            spawn_seeds(seed_sequence, self.n_parties + 1)
            if seeded
            else [None] * (self.n_parties + 1)
        )
        task = PartyTask(
            release_id=new_release_id(),
            clipping=request.clipping,
            statistic=request.statistic,
            params=request.params,
            encoding=encoding if by_party else None,
            n_shares=required if distributed else 1,
            max_rows=self._max_rows(encoding, request.group_size),
            delta=request.delta,
        )
        tasks = {
            p.name: replace(task, seed=seed if by_party else None)
            for p, seed in zip(self.parties, seeds)
        }
        started = time.perf_counter()
        failures = {}
        if distributed:
            try:
                total, members = self._secure_sum(request, tasks, failures, verbose)
            except SecureAggregationAbort as exc:
                self._fail(request, failures, charges, [], required, exc)
        else:
            requests = {
                name: PartyRequest("release", task) for name, task in tasks.items()
            }
            results = self._call_parties(requests, request.statistic, verbose)
            for name, out in results.items():
                problem = self._malformed(out, shapes, encoding, by_party)
                if problem:
                    out = PartyFailure(name, f"malformed statistic: {problem}")
                if isinstance(out, PartyFailure):
                    failures[name] = out
            members = [n for n in self.party_names if n not in failures]
            if len(members) < required:
                self._fail(
                    request, failures, charges, members if by_party else [], required
                )
        computed = time.perf_counter()
        if failures:
            self._leave_out(failures, charges)
        if encoding is None:
            total = sum_blocks([results[name] for name in members])
            release = Release(total, [0.0] * len(total))
        elif distributed:
            std = encoding.noise_std(required, len(members))
            release = Release(encoding.decode(total), std)
        elif by_party:
            total = sum_encoded([results[name] for name in members])
            std = np.sqrt(len(members)) * np.asarray(encoding.noise_std())
            release = Release(encoding.decode(total), list(std))
        else:
            own = seeds[-1] if seeded else new_secret()
            total = encoding.encode(sum_blocks([results[name] for name in members]))
            total = total + encoding.noise(noise_generator(own))
            release = Release(encoding.decode(total), encoding.noise_std())
        self.last_timing_ = {
            "parties": computed - started,
            "aggregation": time.perf_counter() - computed,
        }
        return release

    def _secure_sum(self, request, tasks, failures, verbose):
        """Run the secure-sum protocol; every party step runs in the party's task.

        The coordinator only relays messages: it receives public keys,
        masked vectors (or, peer to peer, sealed shares it cannot open) and
        the final reveals. Failed parties are recorded in ``failures``.
        Returns the noisy encoded total and the parties in it.
        """
        protocol = "masking" if request.trust == "secure" else "sharing"
        n_coords = next(iter(tasks.values())).encoding.n_coords

        def run(step, messages):
            kind = "contribute" if step == "contribute" else "protocol"
            requests = {
                name: PartyRequest(kind, tasks[name], protocol, step, message)
                for name, message in messages.items()
            }
            answers = {}
            what = f"{request.statistic} ({step})"
            for name, out in self._call_parties(requests, what, verbose).items():
                if step == "contribute" and protocol == "masking":
                    problem = _malformed_masked(out, n_coords)
                    if problem:
                        out = PartyFailure(name, f"malformed statistic: {problem}")
                if isinstance(out, PartyFailure):
                    failures.setdefault(name, out)
                else:
                    answers[name] = out
            return answers

        if protocol == "masking":
            return run_masking(
                run, self.party_names, self.mask_threshold, self.last_transcript_
            )
        return run_sharing(
            run, self.party_names, self.mask_threshold, self.last_transcript_
        )

    def _call_parties(self, requests, what, verbose):
        """Deliver ``{name: PartyRequest}`` to the parties; failures are values.

        Each party is retried up to ``retries`` times with the same request
        (the same release id, so the same noise); parties that have not
        answered within ``timeout`` are recorded as failed.
        """
        results = {}
        for _ in range(self.retries + 1):
            todo = [
                (self._party(name).source, name, request)
                for name, request in requests.items()
                if isinstance(results.get(name, PartyFailure(name, "")), PartyFailure)
            ]
            if not todo:
                break
            if any(self._party(name).resources for _, name, _ in todo):
                answers = self._pinned_calls(todo)
            else:
                answers = self._chunked_calls(todo)
            progress = tqdm(
                total=len(todo), desc=what, unit="party", disable=not verbose
            )
            try:
                for name, out in answers:
                    results[name] = out
                    progress.update()
            except multiprocessing.TimeoutError:
                for _, name, _ in todo:
                    if name not in results or isinstance(results[name], PartyFailure):
                        results.setdefault(
                            name,
                            PartyFailure(name, f"no answer within {self.timeout} s"),
                        )
            finally:
                progress.close()
        return {name: results[name] for name in requests}

    def _max_rows(self, encoding, group_size):
        """Most rows a party may hold for this release (None: no limit)."""
        if encoding is None:
            return None
        limit = encoding.max_rows(self.n_parties)
        return limit if group_size == 1 else min(limit, group_size)

    def _party(self, name):
        if getattr(self, "_by_name", None) is None or len(self._by_name) != len(
            self.parties
        ):
            self._by_name = {p.name: p for p in self.parties}
        return self._by_name[name]

    def _chunked_calls(self, todo):
        """Run ``(source, name, request)`` calls through joblib, in at most
        ``MAX_TASKS`` tasks.

        Many parties are grouped into chunks, each run one party after the
        other in one task, so 10,000 parties do not cost 10,000 tasks of
        overhead; with ``timeout``, a chunk that does not answer in time
        fails all its parties. Yields ``(name, result)`` pairs.
        """
        size = math.ceil(len(todo) / MAX_TASKS)
        chunks = [todo[i : i + size] for i in range(0, len(todo), size)]
        calls = Parallel(
            n_jobs=self.n_jobs,
            timeout=self.timeout,
            return_as="generator_unordered",
        )(delayed(named_answers)(chunk) for chunk in chunks)
        for outputs in calls:
            yield from outputs

    def _pinned_calls(self, todo):
        """Run ``(source, name, request)`` calls on the Dask workers holding
        each party's resources; yields ``(name, result)`` as they complete."""
        try:
            from distributed import as_completed, get_client
        except ImportError as exc:
            raise ImportError(
                "Parties with resources= run on Dask workers, which need the dask "
                "extra: pip install 'fedsk[dask]'."
            ) from exc
        try:
            client = get_client()
        except ValueError as exc:
            raise RuntimeError(
                "Parties with resources= run on Dask workers: start a "
                "dask.distributed Client first."
            ) from exc
        futures = [
            client.submit(
                named_answer,
                source,
                name,
                request,
                resources=self._party(name).resources,
                pure=False,
            )
            for source, name, request in todo
        ]
        try:
            for future in as_completed(futures, timeout=self.timeout):
                yield future.result()
        except TimeoutError as exc:
            raise multiprocessing.TimeoutError(str(exc)) from exc

    def _malformed(self, out, shapes, encoding, by_party):
        """Why a party's contribution cannot be aggregated, or None.

        Checked before anything is summed: the shape the statistic declares,
        finite values, and (with noise) a magnitude below which the encoded
        total cannot overflow.
        """
        if isinstance(out, PartyFailure):
            return None
        limit = None if encoding is None else (2**63 - 1) // self.n_parties
        if by_party:
            size = encoding.n_coords
            if not isinstance(out, np.ndarray) or out.dtype != np.int64:
                return "expected an int64 vector"
            if out.shape != (size,):
                return f"shape {out.shape}, expected ({size},)"
            if np.any(np.abs(out) > limit):
                return "values out of range"
            return None
        if not isinstance(out, list | tuple) or len(out) != len(shapes):
            return f"expected {len(shapes)} blocks"
        for block, shape, scale in zip(
            out, shapes, encoding.block_scales if encoding else [None] * len(shapes)
        ):
            block = np.asarray(block)
            if block.shape != tuple(shape):
                return f"a block of shape {block.shape}, expected {tuple(shape)}"
            if not np.all(np.isfinite(block)):
                return "NaN or infinite values"
            if limit is not None and np.any(
                np.abs(block) / (scale * encoding.step) > limit
            ):
                return "values out of range"
        return None

    def _leave_out(self, failures, charges):
        """Settle the failed parties of a release that happened; note who was
        left out.

        A party whose failure came from computing on its rows stays charged
        (the failure depends on its rows); the others' charges are taken
        back.
        """
        names = sorted(failures)
        refund([c for n in names if not failures[n].charged for c in charges[n]])
        note = f"left out {len(names)} of {self.n_parties} parties ({', '.join(names)})"
        kept = [
            c
            for n, pairs in charges.items()
            if n not in failures or failures[n].charged
            for c in pairs
        ]
        self._annotate(kept, note)

    @staticmethod
    def _annotate(charges, note):
        """Replace each charged event by a copy carrying ``note`` (same charge)."""
        for ledger, events in charges:
            for i, event in enumerate(events):
                noted = replace(event, note="; ".join(filter(None, [event.note, note])))
                # by identity: an earlier identical release must keep its own
                at = next(j for j, e in enumerate(ledger.events) if e is event)
                ledger.events[at] = noted
                events[i] = noted

    def _charge(self, request, encoding, fit_ledger, accountant, seeded):
        """Charge every ledger the release touches, all or nothing.

        Returns ``{party name: [(ledger, [event])]}`` with the fit's own
        ledger under ``None``.
        """
        events = self._events(request, encoding, seeded)
        charges = {}
        for party in self.parties:
            ledgers = [party.ledger]
            if accountant is not None:
                shared = accountant.ledger(party.name)
                if shared is not party.ledger:
                    ledgers.append(shared)
            charges[party.name] = [(led, [events(party.name)]) for led in ledgers]
        charges[None] = (
            [] if fit_ledger is None else [(fit_ledger, [events("all parties")])]
        )
        charge([pair for pairs in charges.values() for pair in pairs])
        return charges

    def check_budget(self, request, fit_ledger=None, accountant=None):
        """Raise, before anything is released, if ``request`` cannot be afforded.

        Used to check a whole fit's budget (``request`` carries the fit's
        total guarantee) before its first release, so a fit that cannot
        finish is refused with nothing spent.
        """
        events = self._events(request, None, False)
        pairs = [(p.ledger, [events(p.name)]) for p in self.parties]
        if accountant is not None:
            pairs += [
                (accountant.ledger(p.name), [events(p.name)]) for p in self.parties
            ]
        if fit_ledger is not None:
            pairs.append((fit_ledger, [events("all parties")]))
        check_affordable(pairs)

    @staticmethod
    def _events(request, encoding, seeded):
        """A function from a ledger's owner to the release's event."""
        note = (
            "noise seeded from random_state: reproducible by whoever holds it "
            "(simulation only)"
            if seeded
            else ""
        )

        def event(owner):
            return ReleaseEvent.of_release(
                owner,
                estimator=request.estimator,
                statistic=request.statistic,
                encoding=encoding,
                epsilon=request.epsilon,
                delta=request.delta,
                rho=request.rho,
                trust=request.trust,
                group_size=request.group_size,
                note=note,
            )

        return event

    def _fail(self, request, failures, charges, kept, required, cause=None):
        """Take back the charges of a release that cannot happen, then raise.

        ``kept``: parties that handed over noisy values and stay charged;
        parties whose failure came from their rows stay charged too.
        """
        stay = set(kept) | {n for n, f in failures.items() if f.charged}
        refund([c for n, pairs in charges.items() if n not in stay for c in pairs])
        details = "; ".join(f"party {n!r}: {f.error}" for n, f in failures.items())
        if not details and cause is not None:
            details = str(cause)
        charged = (
            f" Parties {sorted(stay)} stay charged (noisy values were handed over, "
            "or the failure depends on their rows)."
            if stay
            else " Nothing was released or charged for it."
        )
        raise PartyError(
            f"The release of {request.statistic!r} needs {required} of "
            f"{self.n_parties} parties, but {len(failures)} failed ({details})."
            f"{charged}"
        )

    def privacy_report(self):
        """Return the :class:`~fedsk.privacy.PrivacyReport` of every party."""
        return PrivacyReport([p.ledger for p in self.parties])

    def __repr__(self):
        return f"Federation({self.party_names}, n_jobs={self.n_jobs})"


def _num_rows(data):
    return data.shape[0] if hasattr(data, "shape") else np.shape(data)[0]


def _take(data, rows):
    if hasattr(data, "iloc"):
        return data.iloc[rows]
    return np.asarray(data)[rows]


def _unique_in_order(labels):
    _, first = np.unique(labels, return_index=True)
    return labels[np.sort(first)]


def _same_names(a, b):
    if a is None or b is None:
        return a is None and b is None
    return len(a) == len(b) and bool(np.all(a == b))


def _malformed_masked(out, n_coords):
    """Why a masked contribution cannot be summed, or None (its values are
    masked, so only its form can be checked)."""
    if isinstance(out, PartyFailure):
        return None
    if not isinstance(out, np.ndarray) or out.dtype != np.uint64:
        return "expected a uint64 vector"
    if out.shape != (n_coords,):
        return f"shape {out.shape}, expected ({n_coords},)"
    return None
