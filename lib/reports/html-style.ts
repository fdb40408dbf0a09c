/** The report's stylesheet, inlined so the HTML needs nothing but itself. */
export const REPORT_CSS = `
:root { color-scheme: light; --ink: #1d2330; --muted: #5b6475; --line: #dfe3ea; --bg: #f6f7f9; --card: #fff;
  --accent: #1f77b4; --bad: #b42318; --bad-bg: #fef3f2; --good: #067647; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink);
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", Arial, sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 20px 48px; }
header h1 { font-size: 26px; margin: 0 0 4px; line-height: 1.25; overflow-wrap: anywhere; }
.meta { color: var(--muted); margin: 0; }
nav { margin: 14px 0 8px; display: flex; flex-wrap: wrap; gap: 6px 14px; }
nav a { color: var(--accent); text-decoration: none; font-weight: 500; }
nav a:hover { text-decoration: underline; }
section { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 18px 20px; margin-top: 18px; }
h2 { font-size: 20px; margin: 0 0 12px; }
h3 { font-size: 17px; margin: 22px 0 8px; overflow-wrap: anywhere; }
h4 { font-size: 15px; margin: 16px 0 6px; color: var(--muted); }
.headline { font-size: 16px; margin: 0 0 12px; }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; margin: 4px 0 8px; }
th, td { padding: 6px 9px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
th { font-weight: 600; background: #fafbfc; white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td .sub { color: var(--muted); font-size: 12px; }
tr.failed td { background: var(--bad-bg); }
/* Long labels wrap between words; a single huge token scrolls the table instead of squeezing it. */
tbody th { white-space: normal; overflow-wrap: break-word; min-width: 6em; max-width: 12em; }
/* Header words may wrap, so the results table fits a laptop screen without scrolling. */
thead th, thead th.num { white-space: normal; vertical-align: bottom; }
.badge { display: inline-block; padding: 0 7px; border-radius: 999px; font-size: 12px; font-weight: 600; }
.badge.ok { background: #ecfdf3; color: var(--good); }
.badge.failed { background: var(--bad-bg); color: var(--bad); border: 1px solid #fecdca; }
.error { background: var(--bad-bg); border: 1px solid #fecdca; color: var(--bad); border-radius: 8px; padding: 10px 12px;
  white-space: pre-wrap; overflow-wrap: anywhere; font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 13px; }
/* One chart per row: at half width the axis labels become too small to read. */
.charts { display: grid; grid-template-columns: 1fr; gap: 16px; justify-items: start; }
figure { margin: 0; }
figure.chart svg, figure.chart img { display: block; max-width: 100%; height: auto; }
pre { background: #f3f4f7; border: 1px solid var(--line); border-radius: 8px; padding: 10px 12px; overflow-x: auto;
  font: 12.5px/1.4 ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; margin: 0 0 8px; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; font-variant-numeric: tabular-nums; overflow-wrap: anywhere; }
.confusion td.cell { text-align: right; font-variant-numeric: tabular-nums; min-width: 72px; }
.gallery { display: grid; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr)); gap: 12px; }
.gallery figure { border: 1px solid var(--line); border-radius: 8px; overflow: hidden; background: #fafbfc; }
.gallery img, .gallery .noimg { display: block; width: 100%; aspect-ratio: 1; object-fit: cover; background: #e9ecf1; }
.gallery .noimg { display: flex; align-items: center; justify-content: center; color: var(--muted); font-size: 12px; }
.gallery figcaption { padding: 6px 8px; font-size: 12px; line-height: 1.35; overflow-wrap: anywhere; }
/* File names wrap only after a path separator (<wbr>); a name too long for the card ends in an ellipsis (full name in its title). */
.gallery .key { font-family: ui-monospace, "DejaVu Sans Mono", monospace; color: var(--muted);
  overflow-wrap: normal; word-break: normal; overflow: hidden; text-overflow: ellipsis; }
.wrong { color: var(--bad); font-weight: 600; }
.right { color: var(--good); font-weight: 600; }
.gallery-pair { display: grid; grid-template-columns: repeat(auto-fit, minmax(320px, 1fr)); gap: 20px; align-items: start; }
.gallery .with-map { display: grid; grid-template-columns: 1fr 1fr; }
code { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, monospace; font-size: 13px; overflow-wrap: anywhere; }
.muted { color: var(--muted); }
footer { color: var(--muted); font-size: 13px; margin-top: 20px; text-align: center; }
@media print { body { background: #fff; } section { break-inside: avoid; border: none; padding: 0; } nav { display: none; } }
`;
