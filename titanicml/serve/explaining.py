"""``"explain"`` on the score routes: read the option, explain the rows or say why not.

=================================  ============================================
request                            explains
=================================  ============================================
``{"data": [...], "explain": true}``   each row's :data:`DEFAULT_TOP` largest
                                   contributions (any JSON dialect)
``"explain": {"top": 5}``          its 5 largest
``?explain=true``, ``&top=5``      the same, for any body (CSV too)
``"explain": false``, no option    nothing: the answer is the usual one
=================================  ============================================

A bad value is a 400 naming it; the option given both in the URL and in the body
is a 400 too (one place says it). A model that cannot be explained (an estimator
titanicml does not explain, or a forest without shap installed) answers 501 Not
Implemented, saying why and what to install; the same request without the option
is scored as usual.
"""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from titanicml.exceptions import ExtraNotInstalledError, ModelError, RequestError
from titanicml.explain.served import DEFAULT_TOP, RowExplainer
from titanicml.model.dialects import shown

if TYPE_CHECKING:
    from titanicml.model.predictor import TabularModel

__all__ = ["DEFAULT_TOP", "NOT_EXPLAINABLE", "ExplainerCache", "NotExplainable", "explain_option"]

#: The status of an explain request for a model that cannot be explained.
NOT_EXPLAINABLE = 501
_KEY = b'"explain"'
_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no")
_EXAMPLE = '{"data": [...], "explain": {"top": 5}}'


class NotExplainable(Exception):
    """The served model cannot be explained; the message says why and what to do."""


def explain_option(body: bytes, json_body: bool, query_string: bytes) -> int | None:
    """Return how many contributions per row the request asks for (``None``: no explanation).

    Parameters
    ----------
    body : bytes
        The request body, already read by a dialect (valid JSON when ``json_body``).
    json_body : bool
        Whether the body is JSON (a CSV body takes the option from the URL only).
    query_string : bytes
        The URL's query (``explain=true&top=5``).

    Raises
    ------
    RequestError
        A 400 naming a bad value, or the option given in both places.
    """
    in_body = _from_body(body) if json_body and _KEY in body else _ABSENT
    in_url = _from_url(query_string) if query_string else _ABSENT
    if in_body is not _ABSENT and in_url is not _ABSENT:
        raise RequestError(
            "explain is given twice, in the URL and in the body; give it in one place, "
            f"e.g. {_EXAMPLE}"
        )
    chosen = in_url if in_body is _ABSENT else in_body
    return None if chosen is _ABSENT else chosen  # type: ignore[return-value]


_ABSENT: Any = object()


def _from_body(body: bytes) -> Any:
    payload = json.loads(body)
    if not isinstance(payload, dict) or "explain" not in payload:
        return _ABSENT  # the word is in a column name or a value, not the option
    value = payload["explain"]
    if value is True:
        return DEFAULT_TOP
    if value is False or value is None:
        return None
    if isinstance(value, dict):
        unknown = [k for k in value if k != "top"]
        if unknown:
            raise RequestError(
                f'"explain" takes only "top" (how many contributions per row); got '
                f"{', '.join(map(shown, unknown))}: send e.g. {_EXAMPLE}"
            )
        return _top(value.get("top", DEFAULT_TOP), '"explain": {"top": ...}')
    raise RequestError(
        f'"explain" must be true, false or an object such as {{"top": 5}}; got {shown(value)}'
    )


def _from_url(query_string: bytes) -> Any:
    try:
        pairs = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
    except ValueError:
        return _ABSENT
    options = {name: value for name, value in pairs if name in ("explain", "top")}
    if not options:
        return _ABSENT
    flag = options.get("explain")
    if flag is not None and flag.lower() not in _TRUE + _FALSE:
        raise RequestError(f"explain= must be true or false; got {shown(flag)}")
    explain = flag is not None and flag.lower() in _TRUE
    if "top" in options and not explain:
        raise RequestError(
            "top= sets how many contributions an explanation shows; add explain=true "
            "(e.g. /score?explain=true&top=5)"
        )
    if not explain:
        return None
    if "top" not in options:
        return DEFAULT_TOP
    text = options["top"]
    return _top(int(text) if text.isascii() and text.isdigit() else text, "top=")


def _top(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise RequestError(
            f"{where} must be a whole number of at least 1 (how many contributions per row); "
            f"got {shown(value)}"
        )
    return value


class ExplainerCache:
    """The served model's :class:`~titanicml.explain.served.RowExplainer`, built on first use.

    Building it explains one row, which tells whether the model can be explained at
    all; a model that cannot keeps its reason, so each request gets it at once.
    """

    def __init__(self, model: TabularModel) -> None:
        self._model = model
        self._lock = threading.Lock()
        self._explainer: RowExplainer | None = None
        self._reason: str | None = None

    def built(self) -> RowExplainer | None:
        """Return the explainer if it was built already, else ``None``."""
        return self._explainer

    def get(self) -> RowExplainer:
        """Return the explainer.

        Raises
        ------
        NotExplainable
            Saying why the model cannot be explained and what to do.
        """
        if self._explainer is None and self._reason is None:
            with self._lock:
                if self._explainer is None and self._reason is None:
                    self._build()
        if self._explainer is None:
            raise NotExplainable(self._reason)
        return self._explainer

    def _build(self) -> None:
        try:
            self._explainer = RowExplainer(self._model)
        except ExtraNotInstalledError as exc:
            self._reason = (
                f"this endpoint cannot explain its model: {exc}; install it where the "
                "endpoint runs and restart it. Requests without explain are scored as usual"
            )
        except ModelError as exc:
            self._reason = (
                f"this endpoint cannot explain its model: {exc}. Requests without explain "
                "are scored as usual"
            )
