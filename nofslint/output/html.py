"""The triage report: one self-contained HTML file for a maintainer going through a run.

Everything is inline (CSS, one SVG diagram per finding drawn here, a small filter
script): the file opens offline and fetches nothing. Every text from the run (paths,
messages, names from the tree) is escaped; the output depends only on the run.
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Mapping
from urllib.parse import quote

from nofslint import __version__
from nofslint.api.rule import Rule
from nofslint.model.findings import Finding
from nofslint.output import chains
from nofslint.output.report import kconfigs, kernel_version
from nofslint.output.runinfo import RunInfo
from nofslint.run.results import RunResult

UNMAINTAINED = "(unmaintained)"
NO_MAINTAINERS = "(no MAINTAINERS)"
_WIDTH = 760
_BOX_H = 40
_GAP = 30
_SINK_H = 30
_MAX_LABEL = 96  # characters of a name drawn in a box; the full text is its <title>
_KIND_FILL = {"ops": "#e8f0fe", "queue": "#fef7e0", "work": "#fef7e0", "kthread": "#fef7e0",
              "function": "#ffffff"}
_KIND_STROKE = {"ops": "#1a73e8", "queue": "#e37400", "work": "#e37400", "kthread": "#e37400",
                "function": "#5f6368"}
_HOP_COLOUR = {"ops": "#1a73e8", "queue": "#e37400", "work": "#e37400", "kthread": "#e37400",
               "call": "#5f6368", "pointer": "#1a73e8", "same": "#9aa0a6"}
_ENTRY = {"ops": "ops table ", "queue": "queued ", "work": "", "kthread": ""}

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#202124;
background:#f8f9fa}
header{background:#202124;color:#fff;padding:14px 24px}
header h1{margin:0;font-size:20px}
main{padding:16px 24px;max-width:1100px}
table{border-collapse:collapse;margin:6px 0 14px;background:#fff}
th,td{border:1px solid #dadce0;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f1f3f4}
td.n{text-align:right}
.meta td:first-child{color:#5f6368;white-space:nowrap}
.top{display:grid;grid-template-columns:minmax(0,1.2fr) minmax(0,1fr);gap:24px}
@media (max-width:900px){.top{grid-template-columns:1fr}}
.scroll{max-height:520px;overflow:auto;border-bottom:1px solid #dadce0}
h2{font-size:17px;margin:12px 0 4px}h3{font-size:15px;margin:10px 0 2px}
.filters{position:sticky;top:0;background:#f8f9fa;padding:8px 0;border-bottom:1px solid #dadce0;
z-index:1}
.filters label{margin-right:14px}
.filters select{max-width:300px}
.finding{background:#fff;border:1px solid #dadce0;border-left:6px solid #5f6368;
border-radius:4px;margin:14px 0;padding:10px 14px}
.finding.error{border-left-color:#d93025}
.finding.warning{border-left-color:#f29900}
.finding.info{border-left-color:#1a73e8}
.sev{font-weight:600;text-transform:uppercase;font-size:12px;padding:1px 6px;border-radius:3px;
color:#fff;background:#5f6368}
.sev.error{background:#d93025}.sev.warning{background:#e37400}.sev.info{background:#1a73e8}
.rule{font-family:monospace;font-weight:600}
.loc,.fn{font-family:monospace}
.msg{margin:6px 0}
.owner{color:#5f6368;font-size:13px}
svg.chain{display:block;margin:8px 0;max-width:100%;height:auto}
pre.diff{background:#f6f8fa;border:1px solid #dadce0;padding:6px 8px;overflow-x:auto;
font-size:12.5px;margin:6px 0}
.diff .add{color:#116329;background:#dafbe1}
.diff .del{color:#82071e;background:#ffebe9}
.diff .hunk{color:#0550ae}
.diff .file{color:#57606a;font-weight:600}
a{color:#1a0dab}
.hidden{display:none}
tr[data-filter]{cursor:pointer}tr[data-filter]:hover td{background:#e8f0fe}
"""

_SCRIPT = """
(function(){
  var sel=document.querySelectorAll('.filters select');
  function apply(){
    var want={}, hash=[];
    sel.forEach(function(s){
      want[s.name]=s.value;
      if(s.value)hash.push(s.name+'='+encodeURIComponent(s.value));
    });
    var shown=0;
    document.querySelectorAll('.finding').forEach(function(f){
      var ok=Object.keys(want).every(function(k){
        return !want[k]||f.getAttribute('data-'+k)===want[k];});
      f.classList.toggle('hidden',!ok);
      if(ok)shown++;
    });
    document.getElementById('shown').textContent=shown;
    history.replaceState(null,'',hash.length?'#'+hash.join('&'):location.pathname);
  }
  function set(name,value){
    sel.forEach(function(s){if(s.name===name)s.value=value;});
  }
  sel.forEach(function(s){s.addEventListener('change',apply);});
  document.querySelectorAll('tr[data-filter]').forEach(function(r){
    r.addEventListener('click',function(){
      set(r.getAttribute('data-filter'),r.getAttribute('data-value'));apply();});
  });
  location.hash.slice(1).split('&').forEach(function(kv){
    var i=kv.indexOf('=');
    if(i>0)set(kv.slice(0,i),decodeURIComponent(kv.slice(i+1)));
  });
  if(location.hash.length>1)apply();
})();
"""


def render(result: RunResult, info: RunInfo, rules: Mapping[str, type[Rule]],
           source_url: str | None = None) -> str:
    """The report. ``source_url``: a template with ``{path}`` and ``{line}`` that turns
    locations into links (e.g. Elixir); None: locations are plain text."""
    link = _Linker(source_url)
    sections = [_section_of(info, i) for i in range(len(result.findings))]
    tree = _tree(result)
    title = f"nofslint: {len(result.findings)} finding" \
            f"{'s' if len(result.findings) != 1 else ''} in {tree}"
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f"<title>{_e(title)}</title>", f"<style>{_CSS}</style></head><body>",
           f"<header><h1>{_e(title)}</h1></header><main>",
           '<div class="top"><div>', _metadata(result, info, tree),
           _by_rule(result, rules), "</div><div>", _by_section(sections), "</div></div>",
           _filters(result, sections),
           f'<p>Showing <span id="shown">{len(result.findings)}</span> of '
           f"{len(result.findings)} findings.</p>"]
    for i, f in enumerate(result.findings):
        out.append(_finding(i, f, info, sections[i], link))
    if result.errors:
        out.append("<h2>Files that could not be analysed</h2><ul>")
        out += [f"<li><span class=loc>{_e(e.path)}</span>: {_e(e.reason)}</li>"
                for e in result.errors]
        out.append("</ul>")
    out.append(f"</main><script>{_SCRIPT}</script></body></html>")
    return "\n".join(out) + "\n"


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _tree(result: RunResult) -> str:
    roots = sorted({str(t.root) for t in result.trees if t.root is not None})
    version = kernel_version(result)
    where = ", ".join(roots) if roots else "loose files"
    return f"{where} (v{version})" if version else where


def _section_of(info: RunInfo, index: int) -> str:
    if not info.routed:
        return NO_MAINTAINERS
    owner = info.owner(index)
    return owner.section if owner is not None and owner.section else UNMAINTAINED


def _metadata(result: RunResult, info: RunInfo, tree: str) -> str:
    rows = [("Tree", tree), ("Kernel version", kernel_version(result) or "several or none"),
            ("Kernel config", ", ".join(f"{c['path']} (sha256 {c['sha256']})"
                                        for c in kconfigs(result))
             or "none: every #if alternative and every file"),
            ("nofslint config", info.config or "none"), ("nofslint", __version__),
            ("Rules", ", ".join(info.rules) if info.rules
             else ", ".join(sorted({f.rule for f in result.findings})) + " (with findings)"),
            ("Files analysed", str(result.files) if info.files_recorded
             else "not recorded in this report"),
            ("MAINTAINERS", info.maintainers_file or "not read")]
    if info.command:
        rows.append(("Command", " ".join(info.command)))
    body = "".join(f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in rows)
    return f'<h2>Run</h2><table class="meta">{body}</table>'


def _by_rule(result: RunResult, rules: Mapping[str, type[Rule]]) -> str:
    by_rule = Counter(f.rule for f in result.findings)
    severity = {f.rule: f.severity for f in result.findings}
    rows = "".join(
        f'<tr data-filter="rule" data-value="{_e(r)}"><td class=rule>{_e(r)}</td>'
        f"<td>{_e(severity[r])}</td><td class=n>{n}</td>"
        f"<td>{_e(rules[r].summary() if r in rules else '')}</td></tr>"
        for r, n in sorted(by_rule.items(), key=lambda x: (-x[1], x[0])))
    return ("<h2>By rule</h2><table><tr><th>rule</th><th>severity</th><th>findings</th>"
            f"<th>what</th></tr>{rows}</table>")


def _by_section(sections: list[str]) -> str:
    by_section = Counter(sections)
    rows = "".join(f'<tr data-filter="section" data-value="{_e(s)}"><td>{_e(s)}</td>'
                   f"<td class=n>{n}</td></tr>"
                   for s, n in sorted(by_section.items(), key=lambda x: (-x[1], x[0])))
    return (f"<h2>By subsystem ({len(by_section)})</h2><div class=scroll><table><tr>"
            f"<th>MAINTAINERS section</th><th>findings</th></tr>{rows}</table></div>")


def _filters(result: RunResult, sections: list[str]) -> str:
    def select(name: str, label: str, values: list[str]) -> str:
        options = "".join(f'<option value="{_e(v)}">{_e(v)}</option>' for v in values)
        return (f'<label>{label} <select name="{name}"><option value="">all</option>'
                f"{options}</select></label>")
    return ('<div class="filters">'
            + select("rule", "Rule", sorted({f.rule for f in result.findings}))
            + select("severity", "Severity", [s for s in ("error", "warning", "info")
                                              if any(f.severity == s
                                                     for f in result.findings)])
            + select("section", "Subsystem", sorted(set(sections))) + "</div>")


class _Linker:
    def __init__(self, template: str | None) -> None:
        self.template = template

    def url(self, path: str, line: int) -> str | None:
        if not self.template:
            return None
        return (self.template.replace("{path}", quote(path, errors="surrogateescape"))
                .replace("{line}", str(line)))

    def html(self, path: str, line: int) -> str:
        text = f"<span class=loc>{_e(path)}:{line}</span>"
        url = self.url(path, line)
        return f'<a href="{_e(url)}">{text}</a>' if url else text


def _finding(i: int, f: Finding, info: RunInfo, section: str, link: _Linker) -> str:
    owner = info.owner(i)
    who = ""
    if info.routed:
        who = f"Owner: {_e(section)}"
        if owner is not None and owner.chain:
            who += f"; the chain also runs through: {_e(', '.join(owner.chain))}"
        who = f'<div class="owner">{who}</div>'
    fix = f'<pre class="diff">{_diff(f.fix)}</pre>' if f.fix else ""
    function = f" in <span class=fn>{_e(f.function)}()</span>" if f.function else ""
    svg = chain_svg(f, link, f"f{i + 1}", owner.steps if owner is not None else None)
    return (f'<section class="finding {_e(f.severity)}" id="f{i + 1}" '
            f'data-rule="{_e(f.rule)}" data-severity="{_e(f.severity)}" '
            f'data-section="{_e(section)}">'
            f'<div><span class="sev {_e(f.severity)}">{_e(f.severity)}</span> '
            f'<span class=rule>{_e(f.rule)}</span> {link.html(f.path, f.line)}{function}</div>'
            f'<div class="msg">{_e(f.brief or f.message)}</div>{who}{svg}{fix}</section>')


def _diff(text: str) -> str:
    out = []
    for line in text.rstrip("\n").split("\n"):
        kind = ("file" if line.startswith(("--- ", "+++ ")) else "hunk" if line.startswith("@@")
                else "add" if line.startswith("+") else "del" if line.startswith("-") else "")
        out.append(f'<span class="{kind}">{_e(line)}</span>' if kind else _e(line))
    return "\n".join(out)


def _clip(text: str, limit: int = _MAX_LABEL) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def chain_svg(f: Finding, link: _Linker | None = None, ident: str = "c",
              owners: list[str | None] | None = None) -> str:
    """The chain top to bottom: one box per step (name, path:line), each hop an arrow
    with its label, and the sink (allocation, flush, IO) in red below the last step.
    ``ident`` keeps the arrow marker's id unique in the page; ``owners`` (the MAINTAINERS
    section of each step) labels the steps where the chain enters another section."""
    link = link or _Linker(None)
    chain = chains.steps(f)
    hops = chains.hops(chain)
    height = len(chain) * (_BOX_H + _GAP) - _GAP + _SINK_H + 8
    x, w = 2, _WIDTH - 4
    parts = [f'<svg class="chain" xmlns="http://www.w3.org/2000/svg" role="img" '
             f'width="{_WIDTH}" height="{height}" viewBox="0 0 {_WIDTH} {height}" '
             f'data-steps="{len(chain)}" data-hops="{len(hops)}" '
             f'font-family="monospace" font-size="12">',
             f"<title>{_e(f.rule)}: chain of {len(chain)} step"
             f"{'s' if len(chain) != 1 else ''}</title>",
             f'<defs><marker id="{ident}-arrow" viewBox="0 0 10 10" refX="9" refY="5" '
             'markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
             '<path d="M0,0L10,5L0,10z" fill="#5f6368"/></marker></defs>']
    for n, step in enumerate(chain):
        y = 2 + n * (_BOX_H + _GAP)
        where = f"{step.path}:{step.line}"
        url = link.url(step.path, step.line)
        where_svg = f'<text x="{x + 10}" y="{y + 32}" fill="#5f6368">{_e(_clip(where))}</text>'
        if url:
            where_svg = f'<a href="{_e(url)}">{where_svg}</a>'
        entry = _ENTRY.get(step.kind, "")
        owner = owners[n] if owners and n < len(owners) else None
        if owner and (n == 0 or owners[n - 1] != owner):
            where_svg += (f'<text x="{x + w - 8}" y="{y + 32}" text-anchor="end" '
                          f'fill="#8430ce">{_e(_clip(owner, 48))}</text>')
        parts.append(
            f'<g class="step" data-kind="{step.kind}"><title>{_e(step.label)} '
            f"({_e(where)})</title>"
            f'<rect x="{x}" y="{y}" width="{w}" height="{_BOX_H}" rx="5" '
            f'fill="{_KIND_FILL[step.kind]}" stroke="{_KIND_STROKE[step.kind]}"/>'
            f'<text x="{x + 10}" y="{y + 16}" font-weight="bold">'
            f"{_e(_clip(entry + step.label))}</text>{where_svg}</g>")
        if n < len(hops):
            hop = hops[n]
            top, bottom = y + _BOX_H, y + _BOX_H + _GAP
            colour = _HOP_COLOUR[hop.kind]
            parts.append(
                f'<g class="hop" data-kind="{hop.kind}">'
                f'<line x1="40" y1="{top}" x2="40" y2="{bottom - 1}" stroke="{colour}" '
                f'stroke-width="2" marker-end="url(#{ident}-arrow)"/>'
                f'<text x="52" y="{top + _GAP / 2 + 4:.0f}" fill="{colour}">'
                f"{_e(_clip(hop.note or hop.label))}</text></g>")
    y = 2 + len(chain) * (_BOX_H + _GAP) - _GAP
    parts.append(f'<g class="sink"><line x1="40" y1="{y}" x2="40" y2="{y + 8}" '
                 f'stroke="#d93025" stroke-width="2"/>'
                 f'<rect x="{x}" y="{y + 8}" width="{w}" height="{_SINK_H - 6}" rx="5" '
                 f'fill="#fce8e6" stroke="#d93025"/>'
                 f'<text x="{x + 10}" y="{y + 25}" fill="#a50e0e" font-weight="bold">'
                 f"{_e(_clip(chains.sink(f)))}</text></g>")
    parts.append("</svg>")
    return "".join(parts)
