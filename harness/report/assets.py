"""The page's stylesheet and script (inline: the report works offline from one file).

The script draws each ``div.plot`` from its JSON spec when it comes near the viewport
(or its ``<details>`` opens), re-fits drawn charts when a ``<details>`` opens, and
drives the expand/collapse and status-filter controls.

Self-check: opened with ``?selfcheck`` (or ``#selfcheck``), the page opens every
``<details>``, draws every chart, then appends::

    <div id="report-selfcheck" data-errors="N" data-empty-charts="M" data-charts="K" ...>

where N counts script errors, rejected promises, ``console.error`` calls and blocked
(non-local) requests, and M the charts whose traces hold no finite point or that drew
no trace. The browser test reads it from Chromium's ``--dump-dom``.
"""

#: Nothing may be fetched: a request to the network is blocked and counted as an error.
CSP = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data: blob:; font-src data:"

CSS = """
:root{--fg:#1d2329;--muted:#66707a;--line:#d9dee3;--bg:#f5f7f9;--pass:#2e7d32;--fail:#c62828;--skip:#757575;
--error:#ef6c00;--warn:#8a6d00;--warnbg:#fff8e1}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
header{background:#20262d;color:#fff;padding:14px 24px}
header h1{margin:0;font-size:20px}
header p{margin:2px 0 0;color:#c9d1d9}
nav{position:sticky;top:0;z-index:10;background:#fff;border-bottom:1px solid var(--line);padding:6px 24px;
display:flex;flex-wrap:wrap;gap:6px 14px;align-items:center;font-size:13px}
nav a{color:#0b5cad;text-decoration:none}
nav .sep{color:var(--line)}
nav button{font:inherit;padding:2px 8px;border:1px solid var(--line);\
background:#f3f5f7;border-radius:4px;cursor:pointer}
nav label{white-space:nowrap}
main{max-width:1280px;margin:0 auto;padding:8px 24px 40px}
section{background:#fff;border:1px solid var(--line);border-radius:8px;padding:4px 20px 16px;margin:16px 0}
h2{font-size:18px;margin:14px 0 8px}
h3{font-size:15px;margin:18px 0 6px;border-bottom:1px solid var(--line);padding-bottom:3px}
h4{font-size:13px;margin:14px 0 4px;text-transform:uppercase;letter-spacing:.04em;color:var(--muted)}
.muted{color:var(--muted)} .ok{color:var(--pass);font-weight:600} .bad{color:var(--fail);font-weight:600}
.warn{color:var(--warn);background:var(--warnbg);padding:4px 8px;border-radius:4px}
ul.warn{padding-left:26px}
.nodata{color:var(--muted);font-style:italic;border:1px dashed var(--line);padding:8px 12px;border-radius:6px}
.badge{display:inline-block;min-width:44px;text-align:center;padding:1px 7px;border-radius:10px;color:#fff;
font-size:12px;font-weight:600}
.st-pass{background:var(--pass)} .st-fail{background:var(--fail)} .st-skip{background:var(--skip)}
.st-error{background:var(--error)}
.reason{font-weight:600;white-space:pre-wrap;word-break:break-word}
.st-fail-text{color:var(--fail)} .st-error-text{color:var(--error)} .st-skip-text{color:var(--skip)}
.st-pass-text{color:var(--pass)}
details.card{border:1px solid var(--line);border-radius:6px;margin:6px 0;background:#fff}
details.card>summary{padding:7px 10px;cursor:pointer;display:flex;flex-wrap:wrap;gap:4px 10px;align-items:center}
details.card[open]>summary{border-bottom:1px solid var(--line);background:#fafbfc}
.seed{color:var(--muted);font-variant-numeric:tabular-nums}
.tid{font-family:ui-monospace,Menlo,Consolas,monospace;font-weight:600}
.kind{font-size:12px;color:var(--muted);border:1px solid var(--line);border-radius:4px;padding:0 5px}
.head{margin-left:auto;font-size:12px;color:#0b5cad}
.cardbody{padding:4px 14px 12px}
.lesson{background:#f7f9fb;border-left:3px solid #90a4ae;padding:4px 14px;margin:8px 0;font-size:13.5px;
max-width:980px}
.lesson p{margin:6px 0} .lesson ul,.lesson ol{margin:4px 0;padding-left:22px} .lesson li>p{margin:2px 0}
.lesson h5,.lesson h6{font-size:13.5px;margin:10px 0 4px}
.lesson code,.lesson .literal,code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12.5px;
background:#e9edf1;padding:0 3px;border-radius:3px}
.lesson pre{background:#eef1f4} .lesson blockquote{margin:4px 0 4px 16px}
.lesson dl dt{font-weight:600} .lesson dl dd{margin-left:18px}
.lesson table{margin:6px 0} pre.lesson-pre{white-space:pre-wrap}
.head-holds{color:var(--pass)} .head-fails{color:var(--fail)} .head-not-measured,.head-none{color:var(--muted)}
.mutant{display:inline-block;font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px;padding:0 6px;
border-radius:4px;margin:1px 2px;color:#fff}
.mutant.caught{background:var(--pass)} .mutant.survived{background:var(--fail)}
tr.unmeasuredrow td{color:var(--muted)}
.pics{display:flex;flex-wrap:wrap;gap:12px;align-items:flex-start;margin:6px 0}
figure.pic{margin:0;max-width:100%}
figure.pic img{display:block;max-width:100%;height:auto;border:1px solid var(--line);background:#fff}
img.pixelated{image-rendering:pixelated}
figure.pic figcaption,.heatmap .caption{font-size:12.5px;color:var(--fg);max-width:420px;margin:3px 0}
.heatmap{max-width:720px}
.facts{color:var(--muted);font-size:13px}
.tablewrap{overflow-x:auto;margin:6px 0}
table{border-collapse:collapse;font-size:12.5px}
th,td{border:1px solid var(--line);padding:3px 8px;text-align:left;vertical-align:top}
thead th{background:#eef1f4}
td.num{text-align:right;font-variant-numeric:tabular-nums;font-family:ui-monospace,Menlo,Consolas,monospace}
tbody tr:nth-child(even){background:#fafbfc}
table.kv th{background:#f3f5f7;font-weight:500;white-space:nowrap}
tr.failrow td,tr.ch-slower td{background:#fdecea} tr.ch-faster td{background:#e8f5e9}
tr.noisyrow td{background:#fff8e1} tr.statusrow td{background:#fff3e0}
tr.contendedrow td,tr.ch-contended td{background:#ffe0b2;font-style:italic}
.plot{width:100%;min-height:300px;margin:6px 0}
pre{white-space:pre-wrap;word-break:break-word;background:#f3f5f7;padding:8px;border-radius:4px;font-size:12px}
pre.tb{max-height:360px;overflow:auto}
details>summary{cursor:pointer}
footer{color:var(--muted);font-size:12px;text-align:center;margin:12px}
"""

#: In <head>, before plotly.js and the body: collects errors from the first line on.
ERRORS_JS = r"""
window.reportErrors = [];
(function (errors) {
  window.addEventListener("error", function (e) { errors.push("error: " + (e.message || e.type)); });
  window.addEventListener("unhandledrejection", function (e) { errors.push("rejection: " + e.reason); });
  document.addEventListener("securitypolicyviolation", function (e) { errors.push("blocked: " + e.blockedURI); });
  var consoleError = console.error;
  console.error = function () {
    errors.push("console: " + Array.prototype.join.call(arguments, " "));
    return consoleError.apply(console, arguments);
  };
})(window.reportErrors);
"""

JS = r"""
(function () {
  "use strict";
  var errors = window.reportErrors || [];

  var CONFIG = {responsive: true, displaylogo: false, modeBarButtonsToRemove: ["lasso2d", "select2d"]};
  var plots = Array.prototype.slice.call(document.querySelectorAll("div.plot"));

  function draw(div) {
    if (div.getAttribute("data-drawn")) { return Promise.resolve(); }
    div.setAttribute("data-drawn", "1");
    if (typeof Plotly === "undefined") { errors.push("plotly.js is missing"); return Promise.resolve(); }
    var spec = JSON.parse(document.getElementById(div.id + "-spec").textContent);
    return Plotly.newPlot(div, spec.data, spec.layout, CONFIG);
  }

  if ("IntersectionObserver" in window) {
    var io = new IntersectionObserver(function (entries) {
      entries.forEach(function (en) {
        if (en.isIntersecting) { io.unobserve(en.target); draw(en.target); }
      });
    }, {rootMargin: "400px 0px"});
    plots.forEach(function (d) { io.observe(d); });
  } else {
    plots.forEach(draw);
  }

  // plotly measures its div when drawing; one drawn while its <details> was closed,
  // or before the window changed, is re-fitted when the <details> opens.
  document.addEventListener("toggle", function (e) {
    if (!e.target.open || typeof Plotly === "undefined") { return; }
    e.target.querySelectorAll("div.plot[data-drawn]").forEach(function (d) { Plotly.Plots.resize(d); });
  }, true);

  function setOpen(open) {
    document.querySelectorAll("details.card").forEach(function (d) { d.open = open; });
  }
  var ex = document.getElementById("expand-all"), co = document.getElementById("collapse-all");
  if (ex) { ex.addEventListener("click", function () { setOpen(true); }); }
  if (co) { co.addEventListener("click", function () { setOpen(false); }); }
  document.querySelectorAll("input.status-filter").forEach(function (box) {
    box.addEventListener("change", function () {
      document.querySelectorAll('details.card[data-status="' + box.value + '"]').forEach(function (c) {
        c.hidden = !box.checked;
      });
    });
  });

  function points(gd) {
    var n = 0;
    (gd._fullData || []).forEach(function (t) {
      if (t.visible === false) { return; }
      if (t.type === "heatmap") {
        (t.z || []).forEach(function (row) {
          (row || []).forEach(function (c) { if (c !== null && isFinite(c)) { n++; } });
        });
        return;
      }
      var v = t.orientation === "h" ? t.x : t.y;
      if (!v) { return; }
      for (var i = 0; i < v.length; i++) {
        if (v[i] !== null && v[i] !== "" && isFinite(v[i])) { n++; }
      }
    });
    return n;
  }

  function selfcheck() {
    document.querySelectorAll("details").forEach(function (d) { d.open = true; });
    var chain = Promise.resolve();
    plots.forEach(function (d) {
      chain = chain.then(function () { return draw(d); })
                   .catch(function (e) { errors.push("draw " + d.id + ": " + e); });
    });
    chain.then(function () {
      var empty = plots.filter(function (d) {
        return !d.getAttribute("data-drawn") || points(d) === 0 || d.querySelectorAll("g.trace, g.hm").length === 0;
      });
      var m = document.createElement("div");
      m.id = "report-selfcheck";
      m.setAttribute("data-errors", String(errors.length));
      m.setAttribute("data-empty-charts", String(empty.length));
      m.setAttribute("data-charts", String(plots.length));
      m.setAttribute("data-empty-ids", empty.map(function (d) { return d.id; }).join(" "));
      m.setAttribute("data-error-text", errors.join(" | ").slice(0, 4000));
      document.body.appendChild(m);
    });
  }
  if (/selfcheck/.test(location.search + location.hash)) {
    if (document.readyState === "complete") { selfcheck(); } else { window.addEventListener("load", selfcheck); }
  }
})();
"""
