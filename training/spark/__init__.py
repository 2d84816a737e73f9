"""The Spark engine (``orderlift train --engine spark``): the same artifact from a Spark cluster.

Spark reads, validates and weighs the events, counts co-purchases and fits MLlib ALS; the driver
scores the holdout, fits the cart model and writes the artifact, as the local engine does.
pyspark is imported only inside this package.
"""
