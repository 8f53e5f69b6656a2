"""The drill's pipeline: each stage once, timed; engines and restores on two threads; counts; the run's facts.

``session.DrillSession`` composes ``stages``, ``backup``, ``prepare``, ``counts`` and ``facts``;
checks see ``check_view.CheckView``. Importing this package starts nothing.
"""
