"""Data checks run before training: what Azure AutoML calls "data guardrails".

=====================  ========================================================  ==========
check                  finds                                                     status
=====================  ========================================================  ==========
``target_leakage``     a column that predicts the target too well to be known    fixed /
                       before the outcome (single-column CV model, pure subset)  alerted
``id_like``            a key: unique single-token strings, unique integers in    fixed
                       order or in a near-contiguous range
``constant``           one value in every row, or every value missing            fixed
``high_missingness``   >= 95 % missing (dropped), >= 50 % missing (kept)         fixed /
                                                                                 alerted
``missing_values``     some values missing: imputed, with a missing indicator    fixed
``high_cardinality``   text with more than 15 distinct values (target-encoded)   alerted
``class_imbalance``    smallest / largest class < 0.2, or a class of < 20 rows   alerted
``duplicate_rows``     copies of a row; identical features, different targets    alerted
=====================  ========================================================  ==========

``fixed`` means titanicml handles the finding itself (for instance by dropping
the column); ``alerted`` means the data is used as is and the user should look.
Every check that found nothing still has one ``passed`` row in the report.
Each finding is a :class:`titanicml.findings.Finding`; columns are classified once by
:func:`titanicml.data.columns.classify_column`, as the featurization plan classifies them.
See ``docs/data-checks.md`` for the rules and why the thresholds are what they are.

Modules: ``run`` (the order of the checks), ``rules`` (the column and table checks),
``leakage`` (the target-leakage detector), ``report`` (:class:`CheckReport`).
"""

from titanicml.data.checks.report import CHECKS, CheckReport
from titanicml.data.checks.run import ON_LEAKAGE, run_checks

__all__ = ["CHECKS", "ON_LEAKAGE", "CheckReport", "run_checks"]
