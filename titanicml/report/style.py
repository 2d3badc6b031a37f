"""The report's styles, on top of the page shell's (:data:`titanicml._utils.htmlpage.CSS`)."""

from __future__ import annotations

__all__ = ["REPORT_CSS"]

REPORT_CSS = """
body{background:#f5f6f8;max-width:70rem}
h1{font-size:1.9rem;margin-top:0}
nav.toc{position:sticky;top:0;z-index:1;background:#f5f6f8;padding:.5rem 0;font-size:.9rem;
border-bottom:1px solid #e3e6ea}
nav.toc a{color:#1f5fa6;margin-right:1rem;text-decoration:none}
section{background:#fff;border:1px solid #e3e6ea;border-radius:.6rem;padding:1rem 1.4rem;
margin:1.2rem 0}
section h2{margin-top:.2rem;border:0;font-size:1.35rem}
section h3{font-size:1rem;margin:.4rem 0}
p.lead{color:#52606d;margin-top:-.4rem}
p.note{color:#52606d;background:#eef0f3;border-radius:.4rem;padding:.5rem .8rem}
table{width:100%}
.scorecard tr.pass td{background:#e6f4ea}
.scorecard tr.pass td:last-child{color:#1b7f4b;font-weight:700}
.scorecard tr.fail td{background:#fdecea}
.scorecard tr.fail td:last-child{color:#b42318;font-weight:700}
.scorecard tr.fail td:first-child{border-left:3px solid #c62828}
.scorecard tr.warn td{background:#fff6e5}tr.warn td:first-child{border-left:3px solid #d08700}
.summary{display:flex;flex-wrap:wrap;gap:.8rem;margin:.4rem 0 1rem}
.summary div{background:#f8f9fb;border:1px solid #e3e6ea;border-radius:.5rem;
padding:.5rem 1rem;min-width:9rem}
.summary b{display:block;font-size:1.4rem}.summary span{color:#616e7c;font-size:.8rem}
.summary div.pass{border-color:#1b7f4b;background:#e6f4ea}
.summary div.fail{border-color:#c62828;background:#fdecea}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(20rem,1fr));gap:1.2rem}
.plot.wide{grid-column:1/-1}.plot.wide figure{max-width:46rem}
.plot figure{margin:0}.plot svg,.plot img{max-width:100%;height:auto;display:block}
figcaption{margin-top:.3rem}
"""
