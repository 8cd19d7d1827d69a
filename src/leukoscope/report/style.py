"""The report's stylesheet (inlined: the page loads nothing from anywhere)."""

from __future__ import annotations

CSS = """
:root { --ink:#1f2933; --muted:#616e7c; --line:#d9e2ec; --bg:#f5f7fa; --navy:#1f3a5f;
  --alert:#c0392b; --alert-bg:#fdecea; --warn:#b9770e; --warn-bg:#fff5e0; --ok:#1e7e46;
  --ok-bg:#e8f6ee; --flag:#e67e22; }
* { box-sizing:border-box; }
body { margin:0; background:var(--bg); color:var(--ink);
  font:14px/1.45 "Helvetica Neue", Helvetica, Arial, "Liberation Sans", sans-serif; }
header.masthead { background:var(--navy); color:#fff; padding:14px 28px; display:flex;
  align-items:center; gap:18px; }
header .brand { font-weight:700; letter-spacing:.08em; text-transform:uppercase; font-size:12px;
  opacity:.8; }
header h1 { margin:0; font-size:20px; font-weight:600; flex:1; }
header .sample { font-size:20px; font-weight:700; font-family:Menlo, Consolas, monospace; }
.status { border-radius:3px; padding:3px 10px; font-size:12px; font-weight:700;
  text-transform:uppercase; letter-spacing:.05em; }
.status-complete { background:var(--ok-bg); color:var(--ok); }
.status-incomplete { background:var(--alert-bg); color:var(--alert); }
.status-running { background:var(--warn-bg); color:var(--warn); }
main { max-width:1240px; margin:0 auto; padding:18px 28px 28px; }
section { background:#fff; border:1px solid var(--line); border-radius:4px; padding:14px 18px;
  margin-bottom:16px; }
h2 { font-size:15px; margin:0 0 10px; text-transform:uppercase; letter-spacing:.06em;
  color:var(--navy); }
h3 { font-size:14px; margin:18px 0 8px; }
.muted { color:var(--muted); font-weight:400; }
dl.meta { display:grid; grid-template-columns:repeat(4, minmax(0, 1fr)); gap:8px 22px; margin:0; }
dl.meta div { min-width:0; }
dl.meta dt { font-size:11px; text-transform:uppercase; letter-spacing:.05em; color:var(--muted); }
dl.meta dd { margin:1px 0 0; font-weight:600; overflow-wrap:anywhere; }
.mono { font-family:Menlo, Consolas, monospace; font-size:12.5px; }
ul.flags { list-style:none; margin:0; padding:0; }
ul.flags li { padding:8px 12px; margin-bottom:6px; border-left:4px solid; border-radius:2px; }
ul.flags li.alert { background:var(--alert-bg); border-color:var(--alert); }
ul.flags li.warning { background:var(--warn-bg); border-color:var(--warn); }
ul.flags li b { text-transform:uppercase; font-size:11px; letter-spacing:.05em; margin-right:8px; }
p.ok { background:var(--ok-bg); border-left:4px solid var(--ok); padding:8px 12px; margin:0; }
.diff { display:flex; flex-wrap:wrap; gap:18px; align-items:flex-start; }
.diff > div:first-child { flex:0 1 auto; max-width:100%; overflow-x:auto; }
.diff > div:last-child { flex:1 1 380px; max-width:760px; }
table.differential { border-collapse:collapse; width:100%; }
table.differential th, table.differential td { padding:7px 8px; border-bottom:1px solid var(--line);
  text-align:right; white-space:nowrap; }
table.differential th { font-size:11px; text-transform:uppercase; letter-spacing:.04em;
  color:var(--muted); border-bottom:2px solid var(--line); }
table.differential th:first-child, table.differential td:first-child { text-align:left; }
table.differential tfoot td { font-weight:600; border-bottom:none; }
td.flag-above, td.flag-below { color:var(--alert); font-weight:700; }
table.differential td[class^="flag-"] { white-space:normal; min-width:8em; max-width:15em;
  text-align:left; }
td.flag-within { color:var(--ok); }
.chart svg { width:100%; height:auto; }
p.empty { background:var(--bg); border:1px dashed var(--line); padding:18px; text-align:center;
  color:var(--muted); margin:0; font-size:15px; }
.legend-pictures { font-size:11px; color:var(--muted); margin:2px 0 6px; }
nav.jump { display:flex; flex-wrap:wrap; gap:6px; margin:8px 0 4px; font-size:13px; }
nav.jump a { border:1px solid var(--line); border-radius:3px; padding:3px 8px;
  text-decoration:none; color:inherit; background:#fff; }
nav.jump a .flagged-count { color:#8a4b08; }
.gallery { display:flex; flex-wrap:wrap; gap:8px; }
figure.cell { margin:0; border:1px solid var(--line); border-radius:3px; padding:5px;
  background:#fff; }
figure.cell.flagged { border:2px solid var(--flag); padding:4px; }
figure.cell .pics { display:flex; gap:3px; }
figure.cell img { display:block; background:#000; image-rendering:auto; }
figure.cell .noimage { width:96px; height:64px; background:#000; color:#fff; font-size:11px;
  text-align:center; line-height:64px; }
figure.cell .crop-note { font-size:10.5px; color:var(--muted); }
figure.cell figcaption { font-size:11.5px; margin-top:4px; color:var(--muted); max-width:196px; }
figure.cell .badge { background:var(--flag); color:#fff; font-weight:700; font-size:10px;
  padding:1px 5px; border-radius:2px; margin-right:4px; }
figure.cell .reason { font-size:11px; color:#8a4b08; }
footer { color:var(--muted); font-size:12px; max-width:1240px; margin:0 auto; padding:0 28px 28px; }
@page { size:A4; margin:12mm; }
@media print {
  body { background:#fff; font-size:11px; print-color-adjust:exact; -webkit-print-color-adjust:exact; }
  header.masthead { padding:8px 12px; flex-wrap:wrap; }
  header h1, header .sample { font-size:16px; }
  main, footer { max-width:none; padding:8px 0; }
  section { padding:8px 10px; margin-bottom:8px; }
  section.keep, .diff, table.differential tr, figure.cell, ul.flags li { break-inside:avoid; }
  h2 { break-after:avoid; }
  .diff > div:last-child { flex-basis:100%; max-width:150mm; }
  dl.meta { grid-template-columns:repeat(3, minmax(0, 1fr)); }
  nav.jump { display:none; }
}
"""
