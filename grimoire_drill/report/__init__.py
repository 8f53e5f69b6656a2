"""Report writers: turn one finished drill's summary (``grimoire-drill/summary@2``) into files
(Prometheus textfile, history line, manifest) and self-contained HTML fragments.

Everything here is a pure function of its inputs, so the same summary always yields the same
evidence, and the writers can be tested without running a drill.
"""
