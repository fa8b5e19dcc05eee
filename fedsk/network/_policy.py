"""What a party agent checks before it touches its rows.

The coordinator is not trusted to calibrate the noise: the agent recomputes
the calibration of every release from the statistic's own sensitivity (in
the catalogue it runs), the request's clipping, epsilon and rho, and refuses
a request whose encoding differs (a coordinator could otherwise ask for
less noise). It refuses what its policy does not allow: a noise-free
release unless it was started with ``--epsilon inf``, a trust mode it does
not accept, clipping (of features or target) wider than its bounds policy,
a secure sum that would hold fewer noise shares than the release was
calibrated for or fewer parties than its ``--min-parties``, a record-level
fit when it requires party-level privacy, and seeded noise (simulation
only).
"""

import math

import numpy as np

from .._federation import DISTRIBUTED, TRUST_MODELS
from .._party import PartyTask
from .._statistics import STATISTICS
from ..privacy import ReleaseEvent, zcdp_epsilon

KINDS = ("describe", "release", "contribute", "protocol", "ledger", "check")
PROTOCOLS = {"secure": "masking", "peer_to_peer": "sharing"}
STEPS = {"masking": ("keys", "share", "reveal"), "sharing": ("keys", "partial")}
_GUARANTEE = ("epsilon", "delta", "rho", "trust", "group_size", "estimator")


class Refusal(ValueError):
    """A request the party's policy does not allow (nothing was computed)."""


class Policy:
    """A party agent's rules.

    Parameters
    ----------
    trust : tuple of str
        Trust modes it accepts. ``"central"`` hands the exact clipped
        statistic to the coordinator, who adds the noise.
    allow_inf : bool
        Answer noise-free (epsilon = inf) requests: only when the party was
        started with ``--epsilon inf``.
    bounds : tuple of ndarray or None
        ``(lower, upper)`` per feature: the widest clipping region it
        accepts. None: any.
    y_bounds : tuple of float or None
        The widest clipping range of the target it accepts. None: any.
    min_parties : int, default=2
        Fewest parties (vouched for by their certificates) whose inputs its
        own is summed with under secure and peer-to-peer trust.
    privacy_unit : {"record", "party"}, default="record"
        ``"party"``: answer only fits that protect all of its rows as one
        unit (``privacy_unit="party"``).
    """

    def __init__(
        self,
        trust=("local", "secure", "peer_to_peer"),
        allow_inf=False,
        bounds=None,
        *,
        y_bounds=None,
        min_parties=2,
        privacy_unit="record",
    ):
        unknown = set(trust) - set(TRUST_MODELS)
        if unknown:
            raise ValueError(
                f"trust modes must be among {TRUST_MODELS}; got {sorted(unknown)}."
            )
        self.trust = tuple(trust)
        self.allow_inf = allow_inf
        self.bounds = bounds
        self.y_bounds = y_bounds
        if not isinstance(min_parties, int) or min_parties < 1:
            raise ValueError(
                f"min_parties must be a positive integer; got {min_parties!r}."
            )
        self.min_parties = min_parties
        if privacy_unit not in ("record", "party"):
            raise ValueError(
                f"privacy_unit must be 'record' or 'party'; got {privacy_unit!r}."
            )
        self.privacy_unit = privacy_unit


def check_guarantee(guarantee):
    """Validate the guarantee a coordinator attached to a request."""
    if not isinstance(guarantee, dict) or set(guarantee) != set(_GUARANTEE):
        raise Refusal(f"a release request must state its guarantee {_GUARANTEE}")
    epsilon, delta, rho = guarantee["epsilon"], guarantee["delta"], guarantee["rho"]
    if not isinstance(epsilon, int | float) or not epsilon > 0:
        raise Refusal(f"epsilon must be a positive number; got {epsilon!r}")
    if not isinstance(delta, int | float) or not 0 <= delta < 1:
        raise Refusal(f"delta must be in [0, 1); got {delta!r}")
    if rho is not None:
        if not isinstance(rho, int | float) or not rho > 0 or delta <= 0:
            raise Refusal("rho must be positive, with a positive delta")
        if not math.isclose(zcdp_epsilon(rho, delta), epsilon, rel_tol=1e-9):
            raise Refusal("epsilon does not match rho and delta")
    if guarantee["trust"] not in TRUST_MODELS:
        raise Refusal(f"unknown trust mode {guarantee['trust']!r}")
    k = guarantee["group_size"]
    if not isinstance(k, int) or k < 1:
        raise Refusal("group_size must be a positive integer")
    if not isinstance(guarantee["estimator"], str):
        raise Refusal("estimator must be a name")
    return guarantee


def expected_encoding(task, guarantee, n_features):
    """The calibration this party computes for ``task`` itself (None at inf)."""
    if math.isinf(guarantee["epsilon"]):
        return None
    statistic = STATISTICS[task.statistic]
    try:
        return statistic.encoding(
            task.clipping,
            n_features,
            task.params,
            epsilon=guarantee["epsilon"],
            rho=guarantee["rho"],
            group_size=guarantee["group_size"],
            divisible=guarantee["trust"] in DISTRIBUTED,
        )
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise Refusal(
            f"parameters of {task.statistic!r} do not fit it ({type(exc).__name__})"
        ) from None


def check_task(request, guarantee, policy, n_features):
    """Refuse a release or contribution the party's policy does not allow.

    Returns
    -------
    encoding : GridEncoding or None
        The party's own calibration (None: noise-free).
    """
    task = request.task
    if not isinstance(task, PartyTask) or not isinstance(task.release_id, str):
        raise Refusal("the request carries no task")
    if task.statistic not in STATISTICS:
        raise Refusal(f"unknown statistic kind {task.statistic!r}")
    if not isinstance(task.params, dict):
        raise Refusal("statistic parameters must be a mapping")
    if task.seed is not None:
        raise Refusal("seeded noise is for simulation only: the party draws its own")
    trust = guarantee["trust"]
    if trust not in policy.trust and not (
        math.isinf(guarantee["epsilon"]) and policy.allow_inf
    ):
        raise Refusal(
            f"trust={trust!r} is not accepted (this party accepts {list(policy.trust)})"
        )
    if task.delta != guarantee["delta"]:
        raise Refusal("the task's delta differs from its guarantee")
    _check_bounds(task.clipping, policy.bounds, n_features)
    _check_y_bounds(task.clipping, policy.y_bounds)
    encoding = expected_encoding(task, guarantee, n_features)
    if encoding is None:
        if not policy.allow_inf:
            raise Refusal(
                "a noise-free (epsilon=inf) request: this party answers those only "
                "when started with --epsilon inf"
            )
        if task.encoding is not None:
            raise Refusal("a noise-free request must not carry an encoding")
        return None
    if trust == "central":
        if task.encoding is not None:
            raise Refusal("under central trust the coordinator adds the noise")
    elif task.encoding != encoding:
        raise Refusal(
            "its noise calibration does not match the one this party computes from "
            "the statistic's sensitivity, the clipping, epsilon and rho"
        )
    distributed = trust in DISTRIBUTED
    if request.kind == "release" and (distributed or task.n_shares != 1):
        raise Refusal(
            f"under trust={trust!r} the statistic is only contributed to a secure sum"
        )
    if request.kind == "contribute":
        if not distributed or request.protocol != PROTOCOLS[trust]:
            raise Refusal(f"trust={trust!r} does not use protocol {request.protocol!r}")
        if not isinstance(task.n_shares, int) or task.n_shares < 1:
            raise Refusal("n_shares must be a positive integer")
        check_peers(request, policy)
    if guarantee["group_size"] > 1 and (
        task.max_rows is None or task.max_rows > guarantee["group_size"]
    ):
        raise Refusal("party-level privacy needs max_rows at most the group size")
    check_unit(guarantee, policy)
    return encoding


def check_step(request, guarantee, policy):
    """Refuse a protocol step that would unmask too few noise shares."""
    task = request.task
    if not isinstance(task, PartyTask):
        raise Refusal("the request carries no task")
    trust = guarantee["trust"]
    if PROTOCOLS.get(trust) != request.protocol:
        raise Refusal(f"trust={trust!r} does not use protocol {request.protocol!r}")
    if request.step not in STEPS[request.protocol]:
        raise Refusal(f"unknown step {request.step!r} of {request.protocol!r}")
    if request.step != "keys":
        check_peers(request, policy)


# the parties a step's input is summed with: (message field, excluded field)
_SUMMED_WITH = {
    ("masking", "share"): ("roster", None),
    ("masking", "contribute"): ("members", None),
    ("masking", "reveal"): ("alive", None),
    ("sharing", "contribute"): ("roster", None),
    ("sharing", "partial"): ("roster", "dropped"),
}


def check_peers(request, policy):
    """Refuse a step whose sum would hold too few parties' noise shares.

    The parties named in the step's message must be roster members, and
    the parties the party's input is summed with at least the release's
    ``n_shares`` (its noise calibration) and the party's ``min_parties``.
    """
    task, message = request.task, _message(request)
    roster = message.get("roster", {})
    if not isinstance(roster, dict):
        raise Refusal("a roster must be a mapping")
    for field in ("members", "alive", "dropped"):
        names = message.get(field, ())
        if not isinstance(names, list | tuple) or not set(names) <= set(roster):
            raise Refusal(f"{field!r} must list roster members")
    step = "contribute" if request.kind == "contribute" else request.step
    field, excluded = _SUMMED_WITH[(request.protocol, step)]
    summed = set(message.get(field, ())) - set(message.get(excluded, ()))
    if len(summed) < task.n_shares:
        raise Refusal(
            f"the sum would hold {len(summed)} noise shares, fewer than the "
            f"{task.n_shares} the release is calibrated for"
        )
    if len(summed) < policy.min_parties:
        raise Refusal(
            f"the sum would hold {len(summed)} parties' inputs; this party takes "
            f"part only in sums of at least {policy.min_parties} (--min-parties)"
        )


def check_unit(guarantee, policy):
    """Refuse a request that protects less than the party's unit of privacy
    (with party-level privacy, ``check_task`` caps its rows at the group size)."""
    if policy.privacy_unit == "party" and guarantee["group_size"] < 2:
        raise Refusal(
            "this party requires party-level privacy (--privacy-unit party): "
            "fit with privacy_unit='party'"
        )


def release_event(name, task, guarantee, encoding):
    """The event this party charges for a release."""
    return ReleaseEvent.of_release(
        name,
        estimator=guarantee["estimator"],
        statistic=task.statistic,
        encoding=encoding,
        epsilon=float(guarantee["epsilon"]),
        delta=float(guarantee["delta"]),
        rho=guarantee["rho"],
        trust=guarantee["trust"],
        group_size=guarantee["group_size"],
        note="charged by the party agent",
    )


def _message(request):
    message = request.message or {}
    if not isinstance(message, dict):
        raise Refusal("a protocol message must be a mapping")
    return message


def _check_bounds(clipping, bounds, n_features):
    if bounds is None:
        return
    lower, upper = bounds
    if clipping is None or clipping.lower is None:
        raise Refusal(
            "this party's bounds policy needs per-feature bounds in every request"
        )
    ok = (
        np.shape(clipping.lower) == (n_features,)
        and np.all(np.asarray(clipping.lower) >= lower)
        and np.all(np.asarray(clipping.upper) <= upper)
    )
    if not ok:
        raise Refusal("the clipping bounds are wider than this party's bounds policy")


def _check_y_bounds(clipping, y_bounds):
    if y_bounds is None or clipping is None or clipping.y_lower is None:
        return
    if not y_bounds[0] <= clipping.y_lower <= clipping.y_upper <= y_bounds[1]:
        raise Refusal(
            "the target's clipping bounds are wider than this party's bounds policy"
        )
