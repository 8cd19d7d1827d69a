// leukoscope review page: keyboard-first reclassification, comments and sign-off (docs/review.md).
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
  const FURTHER_KEYS = { i: "IG", x: "NRBC", t: "BLAST", r: "RL" }; // when the run's model names them
  let CLASSES = ["NEU", "LYM", "MO", "EOS", "BAS"]; // the run's model's white-cell classes
  const VIEWS = ["composite", "color1", "color2", "color3", "fluorescence"];
  const NAMES = { composite: "bright field", color1: "light 1", color2: "light 2", color3: "light 3", fluorescence: "fluorescence" };
  const SCALE_UM = 10;
  const $ = (id) => document.getElementById(id);
  let state = null;
  let order = []; // cell ids in the order shown
  let current = 0;
  let busy = false;
  let zoomScale = 2.5; // enlarged picture side = native side x zoomScale
  let brightness = 1;

  const id = (c) => `cell-${c.fov}-${c.cell_index}`;
  const say = (text) => { $("message").textContent = text; };
  const toLogin = () => location.assign(`/login?next=${encodeURIComponent(location.pathname)}`);
  const local = (s) => new Date(s * 1000).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
  const esc = (t) => String(t).replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
  const unidentified = (c) => c.flag_reason.startsWith("unidentified");

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
    const of = (list, name) => list.find((x) => x.cell_class === name) ||
      { cell_class: name, count: 0, percent: 0, ci_low_percent: 0, ci_high_percent: 100 };
    const names = [...new Set([...state.reviewed, ...state.original].map((x) => x.cell_class))];
    const rows = names.map((name) => { // a further class may be in one reading only
      const r = of(state.reviewed, name), o = of(state.original, name);
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
    $("state").textContent = statusLine();
    const released = state.state === "released";
    body.classList.toggle("sample-released", released);
    $("release").disabled = released; // the server decides; its refusal is shown as a message
    $("partial-box").hidden = released;
    $("reopen-box").hidden = !released;
    renderEvidence();
    renderComments();
  }

  function statusLine() {
    const released = state.state === "released";
    let line;
    if (released) {
      line = `Released by ${state.reviewer} on ${local(state.released_s)}: locked (reopen it, with a reason, to change it)`;
      if (state.release_kind === "partial") line += `; released as partial: ${state.release_reason}`;
    } else if (state.submitted_by) {
      line = `Submitted by ${state.submitted_by} for verification: a second person releases it`;
    } else {
      line = state.version ? "In review: changes are saved as you make them" : "Not reviewed yet: the classifier's cells";
    }
    if (state.status !== "complete") line += `; the analysis is ${state.status}${state.status_reason ? ` (${state.status_reason})` : ""}`;
    if (released && state.releases > 1) line += `; release ${state.releases}, a correction of release ${state.releases - 1}`;
    if (!released && state.releases) {
      line += `; released ${state.releases === 1 ? "once" : `${state.releases} times`} before: the next release corrects the last`;
    }
    return line;
  }

  function renderEvidence() {
    $("simulated-banner").hidden = !state.simulated;
    const e = state.evidence;
    const sha = e.model_sha256 ? e.model_sha256.slice(0, 12) : "unknown";
    if (e.validation) {
      const v = e.validation;
      const when = new Date(v.created_s * 1000).toLocaleDateString(undefined, { dateStyle: "medium" });
      $("model-evidence").textContent = `Model ${sha}: validated on this rig on ${when} by ` +
        `${v.validated_by} (${v.samples} samples, accuracy ${(100 * v.accuracy).toFixed(1)} %, ` +
        `largest bias ${v.largest_bias_pp.toFixed(1)} percentage points, ${v.largest_bias_class})`;
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

  const commentLine = (k) => `<li><b>${esc(k.reviewer)}</b>, ${esc(local(k.time_s))}: ${esc(k.text)}</li>`;
  const cellComments = (c) => state.comments.filter((k) => k.fov === c.fov && k.cell_index === c.cell_index);
  function renderComments() {
    const own = state.comments.filter((k) => k.fov === null);
    $("sample-comments").innerHTML = own.map(commentLine).join("");
  }

  function buildGalleries() { // every figure once; arrange() moves them between galleries
    const figures = state.cells.map((c) =>
      `<figure class="cell" id="${id(c)}" tabindex="-1">` +
      `<img loading="lazy" alt="" width="96" height="96" src="${img(c, "composite")}">` +
      `<img loading="lazy" alt="" width="96" height="96" src="${img(c, "fluorescence")}">` +
      `<figcaption><b class="label"></b> <span class="meta">field ${c.fov} #${c.cell_index} ` +
      `p ${c.probability.toFixed(2)}</span><span class="note"></span></figcaption></figure>`);
    $("pool").innerHTML = figures.join("");
    for (const c of state.cells) $(id(c)).addEventListener("click", () => { select(id(c)); zoom(true); });
  }

  const SORTS = {
    review: null, // the server's order: flagged first, then the least confident
    "p-low": (a, b) => a.probability - b.probability,
    "p-high": (a, b) => b.probability - a.probability,
    field: (a, b) => a.fov - b.fov || a.cell_index - b.cell_index,
  };

  function arrange() {
    const byReview = $("by-review").checked;
    const groups = byReview ? ["UNIDENTIFIED", ...CLASSES, "ARTEFACT", "SMUDGE"] : ["UNIDENTIFIED", ...CLASSES];
    const groupOf = (c) => byReview ? c.label : (unidentified(c) ? "UNIDENTIFIED" : c.original);
    const sort = SORTS[$("sort").value];
    const cells = sort ? [...state.cells].sort(sort) : state.cells;
    const box = $("galleries");
    const only = $("flagged-only").checked;
    $("pool").append(...state.cells.map((c) => $(id(c)))); // out of every gallery, still in the page
    box.replaceChildren();
    for (const cls of groups) {
      const members = cells.filter((c) => groupOf(c) === cls);
      const shown = members.filter((c) => !only || c.flagged).length;
      if (!shown) continue; // no empty heading, in the flagged-only view too
      const h = document.createElement("h2");
      h.id = `gallery-${cls}`;
      const what = byReview ? "reviewed" : "classifier";
      h.textContent = cls === "UNIDENTIFIED"
        ? `Unidentified: unlike every class the model knows (${members.length}); give each a class`
        : `${cls} (${what}: ${members.length}${only ? `, ${shown} flagged` : ""})`;
      const gallery = document.createElement("div");
      gallery.className = "gallery";
      gallery.dataset.class = cls;
      for (const c of members) gallery.append($(id(c)));
      box.append(h, gallery);
    }
  }

  function updateCells(keep) {
    const only = $("flagged-only").checked;
    arrange();
    for (const c of state.cells) {
      const el = $(id(c));
      el.dataset.label = c.label;
      el.classList.toggle("flagged", c.flagged);
      el.classList.toggle("changed", c.label !== c.original);
      el.classList.toggle("removed", c.label === "ARTEFACT" || c.label === "SMUDGE");
      el.hidden = only && !c.flagged;
      el.title = c.flag_reason;
      el.querySelector(".label").textContent = c.label === c.original ? c.label : `${c.original} → ${c.label}`;
      const notes = cellComments(c).length;
      el.classList.toggle("commented", notes > 0);
      el.querySelector(".note").textContent = notes ? ` · ${notes} comment${notes > 1 ? "s" : ""}` : "";
    }
    order = [...document.querySelectorAll("#galleries figure.cell")].filter((el) => !el.hidden).map((el) => el.id);
    const i = keep ? order.indexOf(keep) : -1;
    if (i >= 0) current = i;
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
    const shown = box.dataset.cell === id(c) && !box.hidden;
    if (!shown) {
      $("zoom-images").innerHTML = VIEWS.map((v) =>
        `<figure><img alt="${v}" src="${img(c, v)}"><figcaption>${NAMES[v]}</figcaption></figure>`).join("");
      $("zoom-images").querySelectorAll("img").forEach((i) => i.addEventListener("load", drawScale));
      box.dataset.cell = id(c);
    }
    $("zoom-caption").textContent = `field ${c.fov}, cell ${c.cell_index}: ${c.label}` +
      (c.flag_reason ? ` (flagged: ${c.flag_reason})` : "");
    $("cell-comments").innerHTML = cellComments(c).map(commentLine).join("");
    box.hidden = false;
    drawScale();
  }

  function drawScale() { // the enlarged pictures' size, brightness and a 10 um bar
    const first = $("zoom-images").querySelector("img");
    const side = first && first.naturalWidth ? first.naturalWidth : 96;
    const px = Math.round(side * zoomScale);
    $("zoom-images").querySelectorAll("img").forEach((i) => {
      i.style.width = `${px}px`; i.style.height = `${px}px`; i.style.filter = `brightness(${brightness})`;
    });
    $("scale-bar").style.width = `${Math.round((px * SCALE_UM) / state.crop_um)}px`;
    $("scale-label").textContent = `${SCALE_UM} µm`;
    $("zoom-level").value = String(zoomScale);
    $("brightness").value = String(brightness);
    $("zoom-settings").textContent = `${zoomScale.toFixed(1)}×, brightness ${Math.round(brightness * 100)} %`;
  }
  const setZoom = (v) => { zoomScale = Math.min(6, Math.max(1, v)); drawScale(); };
  const setBrightness = (v) => { brightness = Math.min(3, Math.max(0.5, v)); drawScale(); };

  const useClasses = (data) => { if (Array.isArray(data.classes) && data.classes.length) CLASSES = data.classes; };
  function apply(data, keep) {
    state = data;
    useClasses(data);
    renderDifferential();
    updateCells(keep);
  }

  async function reclassify(label) {
    const c = cellOf(order[current]);
    if (!c || busy) return;
    busy = true;
    const next = order[current + 1] || order[current]; // where to go on, wherever the cell moves
    try {
      apply(await call(`/cell/${c.fov}/${c.cell_index}`, { label, version: c.version }), next);
      say(`field ${c.fov} cell ${c.cell_index}: ${label}`);
    } catch (error) { say(error.message); } finally { busy = false; }
  }

  async function comment(text, cell) {
    const payload = cell ? { text, fov: cell.fov, cell_index: cell.cell_index } : { text };
    try {
      apply(await call("/comment", payload), order[current]);
      say(cell ? `comment on field ${cell.fov} cell ${cell.cell_index} saved` : "comment on the sample saved");
      return true;
    } catch (error) { say(error.message); return false; }
  }

  async function signOff() {
    const partial = $("partial").checked;
    const payload = { version: state.version, partial, reason: partial ? $("partial-reason").value : "" };
    try {
      apply(await call("/release", payload), order[current]);
      say(state.state === "released" ? (partial ? "Released as partial." : "Released.")
        : "Submitted: a second person must verify and release it.");
    } catch (error) { say(error.message); }
  }

  async function reopen() {
    try {
      apply(await call("/reopen", { reason: $("reopen-reason").value, version: state.version }), order[current]);
      say("Reopened.");
    } catch (error) { say(error.message); }
  }

  const typing = (t) => t instanceof HTMLTextAreaElement || t instanceof HTMLSelectElement ||
    (t instanceof HTMLInputElement && t.type !== "checkbox");
  document.addEventListener("keydown", (event) => {
    if (typing(event.target)) return;
    if (event.ctrlKey || event.metaKey || event.altKey || !state) return;
    const key = event.key.length === 1 ? event.key.toLowerCase() : event.key.toLowerCase();
    const zoomed = !$("zoom").hidden;
    if (key === "?") $("help").hidden = !$("help").hidden;
    else if (key === "escape" && !$("help").hidden) $("help").hidden = true;
    else if (KEYS[key]) reclassify(KEYS[key]);
    else if (FURTHER_KEYS[key] && CLASSES.includes(FURTHER_KEYS[key])) reclassify(FURTHER_KEYS[key]);
    else if (key === "arrowright" || key === "j") { current = Math.min(order.length - 1, current + 1); highlight(); }
    else if (key === "arrowleft" || key === "k") { current = Math.max(0, current - 1); highlight(); }
    else if (key === "f") { $("flagged-only").checked = !$("flagged-only").checked; updateCells(order[current]); }
    else if (key === "g") { $("by-review").checked = !$("by-review").checked; updateCells(order[current]); }
    else if (key === "c") { if (zoomed) $("cell-comment").focus(); else $("sample-comment").focus(); }
    else if (key === "enter" || key === "z") zoom($("zoom").hidden);
    else if (key === "escape") zoom(false);
    else if (zoomed && (key === "+" || key === "=")) setZoom(zoomScale + 0.5);
    else if (zoomed && key === "-") setZoom(zoomScale - 0.5);
    else if (zoomed && key === "]") setBrightness(brightness + 0.25);
    else if (zoomed && key === "[") setBrightness(brightness - 0.25);
    else return;
    event.preventDefault();
  });
  const submitOnEnter = (input, send) => input.addEventListener("keydown", async (event) => {
    if (event.key === "Escape") { input.blur(); event.preventDefault(); return; }
    if (event.key !== "Enter") return;
    event.preventDefault();
    if (await send(input.value)) input.value = "";
  });
  submitOnEnter($("sample-comment"), (text) => comment(text, null));
  submitOnEnter($("cell-comment"), (text) => comment(text, cellOf(order[current])));
  $("add-sample-comment").addEventListener("click", async () => { if (await comment($("sample-comment").value, null)) $("sample-comment").value = ""; });
  $("add-cell-comment").addEventListener("click", async () => { if (await comment($("cell-comment").value, cellOf(order[current]))) $("cell-comment").value = ""; });
  $("flagged-only").addEventListener("change", () => updateCells(order[current]));
  $("by-review").addEventListener("change", () => updateCells(order[current]));
  $("sort").addEventListener("change", () => updateCells(order[current]));
  $("release").addEventListener("click", signOff);
  $("reopen").addEventListener("click", reopen);
  $("zoom").addEventListener("click", (event) => { if (event.target === $("zoom")) zoom(false); });
  $("zoom-close").addEventListener("click", () => zoom(false));
  $("zoom-level").addEventListener("input", () => setZoom(Number($("zoom-level").value)));
  $("brightness").addEventListener("input", () => setBrightness(Number($("brightness").value)));
  $("help-button").addEventListener("click", () => { $("help").hidden = !$("help").hidden; });
  $("help").addEventListener("click", () => { $("help").hidden = true; });

  const embedded = $("initial-state");
  (embedded ? Promise.resolve(JSON.parse(embedded.textContent)) : call("")).then((data) => { state = data; useClasses(data); buildGalleries(); apply(data); body.dataset.ready = "1"; })
    .catch((error) => say(error.message));
})();
