// leukoscope review page: keyboard-first reclassification and sign-off (docs/review.md).
"use strict";
(() => {
  const body = document.body;
  const run = body.dataset.run;
  const sample = body.dataset.sample;
  const csrf = body.dataset.csrf;
  const base = `/api/sample/${encodeURIComponent(run)}/${encodeURIComponent(sample)}`;
  const img = (c, view) =>
    `/img/${encodeURIComponent(run)}/${encodeURIComponent(sample)}/${c.fov}/${c.cell_index}/${view}.png`;
  const KEYS = { n: "NEU", l: "LYM", m: "MO", e: "EOS", b: "BAS", a: "ARTEFACT", s: "SMUDGE" };
  const CLASSES = ["NEU", "LYM", "MO", "EOS", "BAS"];
  const VIEWS = ["composite", "color1", "color2", "color3", "fluorescence"];
  const $ = (id) => document.getElementById(id);
  let state = null;
  let order = []; // cell ids in gallery order
  let current = 0;
  let busy = false;

  const id = (c) => `cell-${c.fov}-${c.cell_index}`;
  const say = (text) => { $("message").textContent = text; };
  const toLogin = () => location.assign(`/login?next=${encodeURIComponent(location.pathname)}`);

  async function call(path, payload) {
    const response = await fetch(base + path, payload === undefined ? {} : {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(payload),
    });
    const data = await response.json();
    if (response.status === 401) toLogin(); // the session ended: log in again
    if (!response.ok) throw new Error(data.error || `HTTP ${response.status}`);
    return data;
  }

  const pct = (v) => v.toFixed(1);
  function renderDifferential() {
    const rows = state.reviewed.map((r, i) => {
      const o = state.original[i];
      const changed = r.count !== o.count ? " changed" : "";
      return `<tr data-class="${r.cell_class}" class="${changed}"><th>${r.cell_class}</th>` +
        `<td class="count">${r.count}</td><td class="percent">${pct(r.percent)}</td>` +
        `<td class="ci">${pct(r.ci_low_percent)} – ${pct(r.ci_high_percent)}</td>` +
        `<td class="original">${o.count}</td><td>${pct(o.percent)}</td></tr>`;
    });
    $("differential").tBodies[0].innerHTML = rows.join("");
    $("counts").textContent = `${state.counted_reviewed} cells counted after review ` +
      `(original ${state.counted_original}); artefacts ${state.artefacts}, smudges ${state.smudges}` +
      (state.unidentified ? `; ${state.unidentified} unidentified, in no class until reviewed` : "");
    const released = state.state === "released";
    $("state").textContent = released
      ? `Released by ${state.reviewer} at ${new Date(state.released_s * 1000).toISOString()}: locked`
      : `Open for review (status ${state.status}); version ${state.version}`;
    if (released && state.release_kind === "partial") {
      $("state").textContent += ` (partial: ${state.release_reason})`;
    }
    if (!released && state.submitted_by) {
      $("state").textContent = `Submitted by ${state.submitted_by} for verification: a second ` +
        `person releases it; version ${state.version}`;
    }
    if (state.releases > 1 || (state.releases === 1 && !released)) {
      $("state").textContent += `; released ${state.releases} time(s): a new release corrects the last`;
    }
    body.classList.toggle("released", released);
    $("release").disabled = released; // the server decides; its refusal is shown as a message
    $("partial-box").hidden = released;
    $("reopen-box").hidden = !released;
    renderEvidence();
  }

  function renderEvidence() {
    $("simulated-banner").hidden = !state.simulated;
    const e = state.evidence;
    const sha = e.model_sha256 ? e.model_sha256.slice(0, 12) : "unknown";
    if (e.validation) {
      const v = e.validation;
      const when = new Date(v.created_s * 1000).toISOString().slice(0, 10);
      $("model-evidence").textContent = `Model ${sha}: validated on this rig ${when} by ` +
        `${v.validated_by} (${v.samples} samples, accuracy ${(100 * v.accuracy).toFixed(1)} %, ` +
        `largest bias ${v.largest_bias_pp.toFixed(1)} pp ${v.largest_bias_class})`;
      $("model-evidence").className = "ok";
    } else {
      $("model-evidence").textContent = `Model ${sha}: not releasable: ${e.why_not}`;
      $("model-evidence").className = "warn";
    }
    const failed = state.fields_failed.map((f) => `field ${f.fov}: ${f.reason}`);
    const parts = [`${state.fields_done} field(s) analysed, target ${state.target_cells} cells`];
    parts.push(failed.length ? `failed: ${failed.join("; ")}` : "no failed field");
    if (state.flagged_fields.length) {
      parts.push(`flagged cells in field(s) ${state.flagged_fields.join(", ")}`);
    }
    for (const f of state.focus_flagged_fields) parts.push(`field ${f.fov}: ${f.failed ? "out of focus, failed" : "focus low, cells counted"}`);
    $("fields-note").textContent = parts.join(" · ");
    $("fields-note").className = failed.length ? "warn" : "";
  }

  function buildGalleries() {
    const GROUPS = ["UNIDENTIFIED", ...CLASSES]; // cells in no class first: they need a person
    const byClass = Object.fromEntries(GROUPS.map((c) => [c, []]));
    const unidentified = (c) => c.flag_reason.startsWith("unidentified");
    for (const c of state.cells) byClass[unidentified(c) ? "UNIDENTIFIED" : c.original].push(c);
    const parts = [];
    for (const cls of GROUPS) {
      const cells = byClass[cls];
      if (!cells.length) continue;
      const figures = cells.map((c) =>
        `<figure class="cell" id="${id(c)}" tabindex="-1">` +
        `<img loading="lazy" alt="" width="96" height="96" src="${img(c, "composite")}">` +
        `<img loading="lazy" alt="" width="96" height="96" src="${img(c, "fluorescence")}">` +
        `<figcaption><b class="label"></b> <span class="meta">f${c.fov} #${c.cell_index} ` +
        `p ${c.probability.toFixed(2)}</span></figcaption></figure>`);
      const title = cls === "UNIDENTIFIED"
        ? `Unidentified: unlike every class the model knows (${cells.length}); give each a class`
        : `${cls} (classifier: ${cells.length})`;
      parts.push(`<h2 id="gallery-${cls}">${title}</h2>` +
        `<div class="gallery" data-class="${cls}">${figures.join("")}</div>`);
    }
    $("galleries").innerHTML = parts.join("");
    for (const c of state.cells) $(id(c)).addEventListener("click", () => { select(id(c)); zoom(true); });
  }

  function updateCells() {
    const only = $("flagged-only").checked;
    for (const c of state.cells) {
      const el = $(id(c));
      el.dataset.label = c.label;
      el.classList.toggle("flagged", c.flagged);
      el.classList.toggle("changed", c.label !== c.original);
      el.classList.toggle("removed", c.label === "ARTEFACT" || c.label === "SMUDGE");
      el.hidden = only && !c.flagged;
      el.title = c.flag_reason;
      el.querySelector(".label").textContent = c.label === c.original ? c.label : `${c.original} → ${c.label}`;
    }
    const shown = [...document.querySelectorAll("figure.cell")].filter((el) => !el.hidden);
    order = shown.map((el) => el.id);
    if (current >= order.length) current = Math.max(0, order.length - 1);
    highlight();
  }

  function highlight() {
    document.querySelectorAll("figure.cell.current").forEach((el) => el.classList.remove("current"));
    const el = $(order[current]);
    if (el) { el.classList.add("current"); el.scrollIntoView({ block: "nearest" }); }
    if (!$("zoom").hidden) zoom(true);
  }

  function select(cellId) { const i = order.indexOf(cellId); if (i >= 0) { current = i; highlight(); } }
  const cellOf = (cellId) => state.cells.find((c) => id(c) === cellId);

  function zoom(open) {
    const box = $("zoom");
    const c = cellOf(order[current]);
    if (!open || !c) { box.hidden = true; return; }
    $("zoom-images").innerHTML = VIEWS.map((v) =>
      `<figure><img alt="${v}" src="${img(c, v)}"><figcaption>${v}</figcaption></figure>`).join("");
    $("zoom-caption").textContent = `field ${c.fov}, cell ${c.cell_index}: ${c.label}` +
      (c.flag_reason ? ` (flagged: ${c.flag_reason})` : "");
    box.hidden = false;
  }

  function apply(data) { state = data; renderDifferential(); updateCells(); }

  async function reclassify(label) {
    const c = cellOf(order[current]);
    if (!c || busy) return;
    busy = true;
    try {
      apply(await call(`/cell/${c.fov}/${c.cell_index}`, { label, version: c.version }));
      say(`field ${c.fov} cell ${c.cell_index}: ${label}`);
      if (current < order.length - 1) { current += 1; highlight(); }
    } catch (error) { say(error.message); } finally { busy = false; }
  }

  async function signOff() {
    const partial = $("partial").checked;
    const payload = { version: state.version, partial, reason: partial ? $("partial-reason").value : "" };
    try {
      apply(await call("/release", payload));
      say(state.state === "released" ? (partial ? "Released as partial." : "Released.")
        : "Submitted: a second person must verify and release it.");
    } catch (error) { say(error.message); }
  }

  async function reopen() {
    try {
      apply(await call("/reopen", { reason: $("reopen-reason").value, version: state.version }));
      say("Reopened.");
    } catch (error) { say(error.message); }
  }

  document.addEventListener("keydown", (event) => {
    if (event.target instanceof HTMLInputElement && event.target.type !== "checkbox") return;
    if (event.ctrlKey || event.metaKey || event.altKey || !state) return;
    const key = event.key.toLowerCase();
    if (KEYS[key]) reclassify(KEYS[key]);
    else if (key === "arrowright" || key === "j") { current = Math.min(order.length - 1, current + 1); highlight(); }
    else if (key === "arrowleft" || key === "k") { current = Math.max(0, current - 1); highlight(); }
    else if (key === "f") { $("flagged-only").checked = !$("flagged-only").checked; updateCells(); }
    else if (key === "enter" || key === "z") zoom($("zoom").hidden);
    else if (key === "escape") zoom(false);
    else return;
    event.preventDefault();
  });
  $("flagged-only").addEventListener("change", updateCells);
  $("release").addEventListener("click", signOff);
  $("reopen").addEventListener("click", reopen);
  $("zoom").addEventListener("click", () => zoom(false));

  const embedded = $("initial-state");
  (embedded ? Promise.resolve(JSON.parse(embedded.textContent)) : call("")).then((data) => { state = data; buildGalleries(); apply(data); body.dataset.ready = "1"; })
    .catch((error) => say(error.message));
})();
