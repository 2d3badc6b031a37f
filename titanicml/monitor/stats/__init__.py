"""The statistics of the monitor: distributions, drift metrics with bootstrap intervals.

:mod:`~titanicml.monitor.stats.distributions` turns a column (or its training profile)
into a distribution; :mod:`~titanicml.monitor.stats.drift` measures the distance between
two of them, with an interval and the rows a window needs;
:mod:`~titanicml.monitor.stats.performance` scores a model with labels, estimates its
accuracy without them (CBPE) and measures multivariate drift with a domain classifier.
"""
