"""The report's one stylesheet (declarative data: every class is prefixed ``gd-`` so pytest-html's and
ours do not fight).
"""

from __future__ import annotations


_CSS = """
.gd{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;font-size:14px;
 color:#1f2328;line-height:1.45;margin:0 0 1.2em 0;max-width:100%;box-sizing:border-box}
.gd *{box-sizing:border-box}
.gd h2{font-size:18px;color:#1f2328;margin:.2em 0 .5em 0;border-bottom:1px solid #d0d7de;padding-bottom:.2em}
.gd h3{font-size:15px;color:#1f2328;margin:.8em 0 .3em 0}
.gd p{color:#1f2328;margin:.3em 0}
.gd code,.gd pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12.5px}
.gd pre{background:#f6f8fa;border:1px solid #d0d7de;padding:.5em;max-height:24em;overflow:auto;
 white-space:pre-wrap;word-break:break-word;margin:.3em 0}
.gd table{border-collapse:collapse;margin:.3em 0}
.gd th,.gd td{border:1px solid #d0d7de;padding:.25em .5em;text-align:left;vertical-align:top}
.gd thead th{background:#f6f8fa}
.gd .gd-kv th{background:#f6f8fa;font-weight:600;white-space:nowrap}
.gd .gd-num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.gd .gd-hash{word-break:break-all}
.gd .gd-muted{color:#656d76}
.gd-verdict{border-radius:8px;padding:18px 24px;color:#fff}
.gd-verdict p{color:#fff}
.gd-verdict--passed{background:#1a7f37}
.gd-verdict--failed{background:#cf222e}
.gd-verdict--error{background:#9a6700}
.gd-verdict--migration_failed{background:#8250df}
.gd-verdict--partial{background:#0550ae}
.gd-verdict__scope{font-size:17px;margin-top:.4em;font-weight:700}
.gd-verdict__word{font-size:56px;font-weight:800;letter-spacing:.06em;line-height:1.1}
.gd-verdict__meta{font-size:16px;margin-top:.3em}
.gd-verdict__error{font-size:15px;margin-top:.5em;font-weight:600}
.gd-verdict ul{margin:.5em 0 0 1.2em;padding:0}
.gd-verdict code{color:#fff}
.gd-simulated{border:4px solid #bf3989;border-radius:8px;padding:14px 20px;color:#1f2328;
 background:repeating-linear-gradient(135deg,#fff0f7 0 14px,#ffd8eb 14px 28px)}
.gd-simulated__word{font-size:28px;font-weight:800;color:#99286e;letter-spacing:.04em}
.gd-badge{display:inline-block;border-radius:4px;padding:0 .45em;font-weight:700;font-size:12px;
 color:#fff;background:#6e7781;white-space:nowrap}
.gd-badge--passed,.gd-badge--ok{background:#1a7f37}
.gd-badge--failed{background:#cf222e}
.gd-badge--error{background:#9a6700}
.gd-badge--skipped{background:#6e7781}
.gd-badge--off{background:#8c959f}
.gd-badge--simulated{background:#bf3989}
.gd-row--simulated td{background:#fff0f7}
.gd-row--diff td{background:#fff8c5}
.gd .gd-diff{background:#ffd8d3;color:#82071e;font-weight:700}
.gd-marker{font-weight:800;font-size:15px}
.gd-marker--diff{color:#cf222e}
.gd-marker--same{color:#1a7f37}
.gd-check--failed td,.gd-check--error td{background:#fff5f5}
.gd-timeline{width:100%}
.gd-timeline td.gd-track-cell{width:45%;min-width:120px}
.gd-track{position:relative;height:16px;background:#f6f8fa;border:1px solid #d0d7de;border-radius:3px}
.gd-bar{position:absolute;top:0;bottom:0;min-width:2px;background:#0969da;border-radius:2px}
.gd-bar--failed{background:#cf222e}
.gd-bar--skipped{background:#afb8c1}
.gd-bar--off{background:#d0d7de}
.gd-rto{font-size:16px}
.gd-trend svg{max-width:100%;height:auto;background:#fff;border:1px solid #d0d7de;border-radius:4px}
.gd-legend span{margin-right:1em;white-space:nowrap}
.gd-dot{display:inline-block;width:.8em;height:.8em;border-radius:50%;vertical-align:middle;margin-right:.25em}
.gd-footer{color:#656d76;font-size:12px}
"""


def styles() -> str:
    """The ``<style>`` block every fragment relies on; include it once per page."""
    return f"<style>{_CSS}</style>"
