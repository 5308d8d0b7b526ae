# The live board's page (--board): HTML, style and script in one, served as it is.
# It asks for /board.json every second and draws a row per receiver, or for a mesh
# (--mesh, four times a second) a matrix per kind of probe; names are set as text
# only, so a name from the network cannot run as code.
BOARD_PAGE = r"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>multicast board</title>
<style>
  /* As large as the rows allow: up to 30 fit on one screen, more scroll. */
  body { margin: 0; padding: 1.2vw 2vw; background: #10151c; color: #e8edf2;
         font: clamp(1vw, calc(80vh / (var(--rows, 1) + 3) / 1.55), 2.1vw)/1.3 system-ui,
               sans-serif; }
  header { display: flex; flex-wrap: wrap; gap: 0 2.5vw; align-items: baseline; }
  h1 { font-size: 1.25em; margin: 0 1vw 0 0; }
  .figure b { font-size: 1.25em; }
  #banner { display: none; margin: .6vw 0; padding: .4vw 1vw; background: #8a2b2b;
            font-weight: bold; }
  body.stopped #banner { display: block; }
  body.stopped table { opacity: .45; }
  table { width: 100%; border-collapse: collapse; margin-top: .4em; table-layout: fixed; }
  th { text-align: left; color: #9fb0c0; font-weight: normal; font-size: .7em; }
  td, th { padding: .12em .6vw; white-space: nowrap; overflow: hidden;
           text-overflow: ellipsis; }
  td.num, th.num { text-align: right; }
  tr.answering td.state { color: #5fd38a; }
  tr.silent td { color: #f0c05a; }
  tr.gone td { color: #6b7785; }
  tr.lossy td.loss { color: #ff6b6b; font-weight: bold; }
  tr.answering td:first-child { border-left: .5vw solid #5fd38a; }
  tr.silent td:first-child { border-left: .5vw solid #f0c05a; }
  tr.gone td:first-child { border-left: .5vw solid #3a4552; }
  tr.never td { color: #ff6b6b; }
  body.compact { font-size: 1vw; }  /* beyond 30 rows: small, and the page scrolls */
  td.unnamed { font-style: italic; color: #9fb0c0; }
  /* A mesh: a matrix per kind, side by side, rows sending, columns receiving; each
     cell's colour its loss, its numbers on hover. 30 peers fit a 1920 x 1080 screen. */
  body.mesh { font-size: 1.3vw; }
  #matrices { display: none; gap: 2vw; }
  body.mesh #matrices { display: flex; }
  body.mesh #receivers { display: none; }
  .matrix { flex: 1; min-width: 0; }
  .matrix h2 { font-size: 1em; margin: .3em 0; color: #9fb0c0; font-weight: normal; }
  .matrix table { table-layout: fixed; width: 100%; }
  .matrix td, .matrix th { padding: 0; text-align: center; border: 1px solid #10151c;
    height: calc(min(70vh, 42vw) / var(--n, 1));
    font-size: clamp(6px, calc(min(70vh, 42vw) / var(--n, 1) / 2.6), 1.4vw); }
  .matrix th.corner { width: 6vw; }
  .matrix th.row { text-align: right; padding-right: .4vw; color: #e8edf2; }
  .matrix th.col { color: #e8edf2; writing-mode: vertical-rl; transform: rotate(180deg);
                   height: 4.5em; vertical-align: bottom; text-align: left; }
  .matrix td.none { background: #1c2530; color: #6b7785; }
  .matrix td.clean { background: #1f7a45; }
  .matrix td.light { background: #9a9a2a; }
  .matrix td.heavy { background: #b8661f; }
  .matrix td.lost { background: #a02b2b; font-weight: bold; }
  .matrix td.self { background: #10151c; }
  .matrix .gone { opacity: .35; filter: grayscale(1); }
  body.dense .matrix td { color: transparent; }  /* beyond 40 peers: colours only */
</style></head>
<body>
<header><h1>multicast board</h1>
  <span class="figure">group <b id="group">-</b></span>
  <span class="figure">ttl <b id="ttl">-</b></span>
  <span class="figure">sent <b id="sent">-</b></span>
  <span class="figure"><span id="answering-label">answering</span> <b id="answering">-</b>
  </span></header>
<div id="banner">sender stopped</div>
<div id="matrices"></div>
<table id="receivers">
<colgroup><col style="width:17%"><col style="width:20%"><col style="width:17%">
<col style="width:8%"><col style="width:9%"><col style="width:13%"><col style="width:7%">
<col style="width:9%"></colgroup>
<thead><tr><th>receiver</th><th>address</th><th>state</th><th class="num">acks</th>
<th class="num">loss</th><th class="num">rtt p50</th><th class="num">hops</th>
<th class="num">heard</th></tr></thead><tbody id="rows"></tbody></table>
<script>
"use strict";
// Names come from the network: they are only ever set as text, never as markup.
function cell(row, text, kind) {
  const td = document.createElement("td");
  td.textContent = text;
  if (kind) td.className = kind;
  row.appendChild(td);
}
function stateText(r, mode) {
  if (r.state !== "silent") return r.state;
  return "silent " + r.silent + (mode === "rounds" ? " round" + (r.silent === 1 ? "" : "s")
                                                   : " s");
}
function show(s) {
  document.body.classList.toggle("stopped", s.stopped);
  document.getElementById("banner").textContent =
    s.stopped ? "sender stopped: its run is over" : "sender stopped";
  document.getElementById("group").textContent = s.group + ":" + s.port;
  document.getElementById("ttl").textContent = s.ttl;
  document.getElementById("sent").textContent = s.sent;
  document.getElementById("answering").textContent =
    s.answering + (s.expected === null ? "" : " / " + s.expected);
  const rows = document.createDocumentFragment();
  for (const r of s.receivers) {
    const tr = document.createElement("tr");
    tr.className = r.state + (r.loss_pct ? " lossy" : "");
    cell(tr, r.name || "(no name)", r.name ? "" : "unnamed");
    cell(tr, r.address);
    cell(tr, stateText(r, s.mode), "state");
    cell(tr, r.acks, "num");
    cell(tr, r.loss_pct === null ? "-" : Math.round(r.loss_pct * 10) / 10 + "%", "num loss");
    cell(tr, r.rtt_p50_ms === null ? "-" : r.rtt_p50_ms + " ms", "num");
    cell(tr, r.hops === null ? "-" : r.hops, "num");
    cell(tr, r.last_heard_s === null ? "-" : r.last_heard_s + " s", "num");
    rows.appendChild(tr);
  }
  for (const name of s.never_heard) {
    const tr = document.createElement("tr");
    tr.className = "never";
    cell(tr, name); cell(tr, "-"); cell(tr, "never heard", "state");
    for (let i = 0; i < 5; i++) cell(tr, "-", "num");
    rows.appendChild(tr);
  }
  if (s.not_shown) {
    const tr = document.createElement("tr");
    tr.className = "never";
    cell(tr, "and " + s.not_shown + " more receivers, not shown");
    rows.appendChild(tr);
  }
  const count = s.receivers.length + s.never_heard.length;
  document.body.style.setProperty("--rows", count);
  document.body.classList.toggle("compact", count > 30);
  document.getElementById("rows").replaceChildren(rows);
}
function lossClass(value) {
  if (value === null) return "none";
  if (value[0] === 0) return "clean";
  return value[0] < 1 ? "light" : value[0] < 10 ? "heavy" : "lost";
}
function showMesh(s) {
  document.body.classList.add("mesh");
  document.body.classList.toggle("stopped", s.stopped);
  document.getElementById("banner").textContent = "this peer stopped: its run is over";
  document.getElementById("group").textContent = s.group + ":" + s.port;
  document.getElementById("ttl").textContent = s.ttl;
  document.getElementById("sent").textContent = s.rounds + " rounds";
  const heard = s.peers.filter(p => p.state === "heard" || p.state === "me").length;
  document.getElementById("answering-label").textContent = "heard";
  document.getElementById("answering").textContent = heard + " / " + s.peers.length + " peers";
  const n = s.peers.length, away = s.peers.map(p => p.state !== "heard" && p.state !== "me");
  document.body.style.setProperty("--n", n + 1);
  document.body.classList.toggle("dense", n > 40);
  const all = document.createDocumentFragment();
  for (const kind of ["multicast", "unicast"]) {
    const box = document.createElement("div"), title = document.createElement("h2");
    box.className = "matrix";
    title.textContent = kind + " loss %: rows send, columns receive";
    const table = document.createElement("table"), head = document.createElement("tr");
    const corner = document.createElement("th");
    corner.className = "corner";
    head.appendChild(corner);
    s.peers.forEach((p, j) => {
      const th = document.createElement("th");
      th.className = "col" + (away[j] ? " gone" : "");
      th.textContent = (p.name || p.address).slice(0, 10);
      th.title = p.name + " (" + p.address + "): " + p.state;
      head.appendChild(th);
    });
    table.appendChild(head);
    s.matrix[kind].forEach((row, i) => {
      const tr = document.createElement("tr"), th = document.createElement("th");
      th.className = "row" + (away[i] ? " gone" : "");
      th.textContent = (s.peers[i].name || s.peers[i].address).slice(0, 10);
      th.title = s.peers[i].address + ": " + s.peers[i].state;
      tr.appendChild(th);
      row.forEach((value, j) => {
        const td = document.createElement("td");
        if (i === j) { td.className = "self"; tr.appendChild(td); return; }
        td.className = lossClass(value) + (away[i] || away[j] ? " gone" : "");
        td.textContent = value === null ? "?" : Math.round(value[0] * 10) / 10;
        td.title = s.peers[i].name + " to " + s.peers[j].name + ", " + kind + ": " +
          (value === null ? "not told yet" : value[1] + " received, " + value[2] +
           " lost (" + value[0] + "%)" + (value[3] === null ? "" : ", rtt p50 " + value[3] +
           " ms") + (value[4] === null ? "" : ", " + value[4] + " hops"));
        tr.appendChild(td);
      });
      table.appendChild(tr);
    });
    box.append(title, table);
    all.appendChild(box);
  }
  document.getElementById("matrices").replaceChildren(all);
}
async function update() {
  try {
    const answer = await fetch("board.json", {cache: "no-store"});
    if (!answer.ok) throw new Error(answer.status);
    const state = await answer.json();
    if (state.mesh) showMesh(state); else show(state);
  } catch (error) {
    document.body.classList.add("stopped");  // no sender: say so, keep the old rows dim
    document.getElementById("banner").textContent = "sender stopped";
  }
  setTimeout(update, document.body.classList.contains("mesh") ? 250 : 1000);
}
update();
</script></body></html>
""".encode("utf-8")
