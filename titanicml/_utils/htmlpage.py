"""Self-contained HTML pages: one file, inline CSS and figures, no JavaScript, no network.

The monitor's page and the Responsible AI report are built with these helpers, so a
page opens offline, from an e-mail or a CI artifact, and stays small (a matplotlib
figure is inline SVG with its text kept as text, or a PNG as a ``data:`` URI)::

    body = section("Drifted features", figure_html(fig)) + section("Signals", table)
    Path("page.html").write_text(html_page("Monitoring", body), encoding="utf-8")

Every text given is escaped here (:func:`escape`); HTML fragments made by these
functions are passed through as they are.
"""

from __future__ import annotations

import base64
import html
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "CSS",
    "escape",
    "figure_html",
    "html_page",
    "png_figure_html",
    "section",
    "table_html",
]

#: The style of every page: readable type, compact tables, alert and ok colours.
CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;
max-width:72rem;padding:0 1rem;color:#1b1b1b;line-height:1.4}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2rem;
border-bottom:1px solid #ddd;padding-bottom:.2rem}
p.subtitle{color:#555;margin-top:0}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}
th,td{padding:.2rem .6rem;border-bottom:1px solid #eee;text-align:left;vertical-align:top}
th{background:#f6f6f6}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.alert td{background:#fdecea}tr.alert td:first-child{border-left:3px solid #c62828}
tr.muted td{color:#888}
.figures{display:flex;flex-wrap:wrap;gap:1rem}.figures figure{margin:0}
figcaption{font-size:.85rem;color:#444}
.badge{display:inline-block;padding:.1rem .5rem;border-radius:.6rem;font-size:.8rem;
font-weight:600}.badge.alert{background:#c62828;color:#fff}.badge.ok{background:#2e7d32;
color:#fff}
"""
_SVG_START = re.compile(r"<svg\b", re.IGNORECASE)


def escape(text: Any) -> str:
    """Return ``text`` (any value) as HTML text, quotes escaped."""
    return html.escape("" if text is None else str(text), quote=True)


def html_page(
    title: str, body: str | Iterable[str], subtitle: str | None = None, css: str = CSS
) -> str:
    """Return a whole HTML document: ``title`` as heading, ``body`` (HTML) below it.

    Parameters
    ----------
    title : str
        The page's title and first heading (escaped).
    body : str or iterable of str
        HTML fragments (sections, tables, figures), joined in order.
    subtitle : str, optional
        A line under the heading (escaped).
    css : str
        The inline style sheet (default :data:`CSS`).
    """
    content = body if isinstance(body, str) else "\n".join(body)
    lead = f'<p class="subtitle">{escape(subtitle)}</p>\n' if subtitle else ""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}</title>\n<style>{css}</style>\n</head>\n<body>\n"
        f"<h1>{escape(title)}</h1>\n{lead}{content}\n</body>\n</html>\n"
    )


def section(heading: str, content: str | Iterable[str]) -> str:
    """Return a ``<section>`` with an ``<h2>`` heading (escaped) and HTML content."""
    inner = content if isinstance(content, str) else "\n".join(content)
    return f"<section>\n<h2>{escape(heading)}</h2>\n{inner}\n</section>"


def figure_html(figure: Figure, fmt: str = "svg", caption: str | None = None) -> str:
    """Return a matplotlib figure as an inline ``<figure>``: SVG markup, or a PNG ``<img>``.

    SVG keeps text as text (``svg.fonttype: none``) and drops the metadata block, so a
    histogram is a few kilobytes; PNG (``fmt="png"``) suits figures of many points.
    """
    from matplotlib import rc_context

    buffer = io.BytesIO()
    if fmt == "svg":
        with rc_context({"svg.fonttype": "none", "svg.hashsalt": "titanicml"}):
            figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
        text = buffer.getvalue().decode("utf-8")
        start = _SVG_START.search(text)
        markup = text[start.start() :] if start else text
        markup = re.sub(r"<metadata>.*?</metadata>", "", markup, flags=re.DOTALL)
    elif fmt == "png":
        figure.savefig(buffer, format="png", dpi=100)
        data = base64.b64encode(buffer.getvalue()).decode("ascii")
        markup = f'<img alt="{escape(caption or "figure")}" src="data:image/png;base64,{data}">'
    else:
        raise ValueError(f"fmt must be 'svg' or 'png', got {fmt!r}")
    label = f"<figcaption>{escape(caption)}</figcaption>" if caption else ""
    return f"<figure>{markup}{label}</figure>"


def table_html(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str] | None = None,
    row_class: str | None = None,
    numbers: str = "{:.4g}",
) -> str:
    """Return rows (mappings) as an HTML table; floats formatted with ``numbers``.

    ``row_class`` names a key whose value is the row's CSS class (``alert``,
    ``muted``); it is not shown as a column.
    """
    names = list(columns) if columns is not None else list(rows[0]) if rows else []
    names = [n for n in names if n != row_class]
    head = "".join(f"<th>{escape(n)}</th>" for n in names)
    lines = []
    for row in rows:
        cls = row.get(row_class) if row_class else None
        cells = "".join(_cell(row.get(n), numbers) for n in names)
        attr = f' class="{escape(cls)}"' if cls else ""
        lines.append(f"<tr{attr}>{cells}</tr>")
    return (
        f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n"
        + "\n".join(lines)
        + ("\n</tbody>\n</table>")
    )


def _cell(value: Any, numbers: str) -> str:
    if isinstance(value, bool) or value is None:
        return f"<td>{'' if value is None else escape(value)}</td>"
    if isinstance(value, float):
        text = "" if value != value else numbers.format(value)  # NaN: blank
        return f'<td class="num">{text}</td>'
    if isinstance(value, int):
        return f'<td class="num">{value}</td>'
    return f"<td>{escape(value)}</td>"


def png_figure_html(png: bytes, caption: str | None = None) -> str:
    """Return PNG bytes already rendered as an inline ``<figure>`` (a ``data:`` URI).

    For a figure that is also saved as a file: it is drawn once, not twice.
    """
    data = base64.b64encode(png).decode("ascii")
    markup = f'<img alt="{escape(caption or "figure")}" src="data:image/png;base64,{data}">'
    label = f"<figcaption>{escape(caption)}</figcaption>" if caption else ""
    return f"<figure>{markup}{label}</figure>"
