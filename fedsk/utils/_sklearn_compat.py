"""Every private scikit-learn name fedsk uses, in one place.

When a scikit-learn release moves one of these, this is the only file to
change.
"""

from sklearn.base import _fit_context
from sklearn.preprocessing._data import _handle_zeros_in_scale
from sklearn.utils._param_validation import Interval, StrOptions

__all__ = ["Interval", "StrOptions", "_fit_context", "_handle_zeros_in_scale"]
