#include "http_status_page.h"

namespace detflow::service {

const std::string& status_page_html() {
  static const std::string page = R"HTML(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>detflow</title>
<style>
  body { margin: 0; font: 14px/1.4 system-ui, sans-serif; background: #14171c; color: #e6e6e6; }
  header { padding: 10px 16px; background: #1e232b; display: flex; gap: 16px; align-items: baseline; }
  header h1 { font-size: 18px; margin: 0; }
  #state { font-weight: bold; padding: 2px 8px; border-radius: 4px; }
  .up { background: #1f7a3a; } .down { background: #a12b2b; } .connecting { background: #a07a12; }
  main { display: flex; flex-wrap: wrap; gap: 16px; padding: 16px; }
  #preview { max-width: 100%; width: 640px; background: #000; min-height: 120px; }
  table { border-collapse: collapse; min-width: 320px; }
  td, th { padding: 3px 10px; text-align: right; border-bottom: 1px solid #2c323c; }
  td:first-child, th:first-child { text-align: left; }
  #reason { color: #f0a040; }
</style>
</head>
<body>
<header><h1>detflow</h1><span id="state" class="connecting">source: ?</span>
  <span id="ready">readiness: ?</span><span id="reason"></span></header>
<main>
  <div><img id="preview" alt="latest annotated frame"><div id="source"></div></div>
  <div>
    <table id="counters"><tbody></tbody></table><br>
    <table id="latency"><thead><tr><th>latency (ms)</th><th>p50</th><th>p95</th><th>p99</th><th>max</th></tr></thead>
      <tbody></tbody></table>
  </div>
</main>
<script>
"use strict";
const token = new URLSearchParams(location.search).get("token");
const withToken = (path, extra) => {
  const query = new URLSearchParams(extra || {});
  if (token) query.set("token", token);
  const text = query.toString();
  return text ? path + "?" + text : path;
};
const fixed = (value, digits) => (typeof value === "number" ? value.toFixed(digits) : "-");
let previous = null;

function rows(table, entries) {
  const body = document.querySelector(table + " tbody");
  body.innerHTML = "";
  for (const cells of entries) {
    const row = body.insertRow();
    for (const cell of cells) row.insertCell().textContent = cell;
  }
}

async function refreshStatus() {
  try {
    const response = await fetch(withToken("status.json"), { cache: "no-store" });
    const status = await response.json();
    const now = performance.now();
    let fps = 0;
    if (previous) fps = (status.frames.processed - previous.processed) / ((now - previous.time) / 1000);
    previous = { processed: status.frames.processed, time: now };
    const state = document.getElementById("state");
    state.textContent = "source: " + status.source.state;
    state.className = status.source.state;
    document.getElementById("ready").textContent = "readiness: " + (status.ready ? "ready" : "not ready");
    document.getElementById("reason").textContent = status.reason;
    document.getElementById("source").textContent = status.source.description;
    rows("#counters", [
      ["frames/s (now)", fixed(fps, 1)], ["frames/s (run)", fixed(status.fps, 1)],
      ["processed", status.frames.processed], ["dropped", status.frames.dropped],
      ["failed", status.frames.failed], ["in flight", status.frames.in_flight],
      ["detections", status.detections], ["reconnects", status.source.reconnects],
      ["stalls", status.source.stalls], ["memory (MiB)", fixed(status.resident_memory_bytes / 1048576, 1)],
      ["preview streams", status.preview_clients], ["lines lost", status.output_lines_lost]]);
    const latency = [["capture to output", status.latency_ms.capture_to_output]];
    for (const [stage, summary] of Object.entries(status.latency_ms.stages)) latency.push([stage, summary]);
    rows("#latency", latency.map(([name, s]) => [name, fixed(s.p50, 1), fixed(s.p95, 1), fixed(s.p99, 1), fixed(s.max, 1)]));
  } catch (error) {
    document.getElementById("reason").textContent = "detflow not reachable";
  }
}

const preview = document.getElementById("preview");
let frameNumber = 0;
function nextFrame() { preview.src = withToken("snapshot.jpg", { n: ++frameNumber }); }
preview.onload = () => setTimeout(nextFrame, 100);
preview.onerror = () => setTimeout(nextFrame, 1000);
nextFrame();
refreshStatus();
setInterval(refreshStatus, 1000);
</script>
</body>
</html>
)HTML";
  return page;
}

}  // namespace detflow::service
