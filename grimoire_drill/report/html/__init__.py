"""HTML fragments of the drill report, each a self-contained string, one module per section.

The same fragments serve two pages: pytest-html's report (the plugin hands them to
``pytest_html_results_summary``) and ``full_page()`` for standalone use. So each fragment is a
``<section class="gd ...">`` with its own heading, all class names are prefixed ``gd-`` so
pytest-html's stylesheet and ours do not fight, and there is no script, no external asset and
no URL reference: the page must read the same in ten years, offline, in an audit folder.

Every string that comes from the summary passes through ``redact()`` and then HTML escaping
(``_text``): a DSN pasted into a check message or a tool's output must not leak a password
into an artifact that CI keeps for months.

The helpers every section shares (``_text``, ``_kv_table``...) live in ``common`` and are private
to this package; callers import the sections from ``grimoire_drill.report.html_parts``.
"""
