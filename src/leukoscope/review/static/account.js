// leukoscope review: log in (the /login form) and log out (the button on every page).
"use strict";
(() => {
  const body = document.body;
  const csrf = body.dataset.csrf;
  const $ = (id) => document.getElementById(id);
  const say = (text) => { const m = $("message"); if (m) m.textContent = text; };
  for (const t of document.querySelectorAll("time[data-s]")) { // UTC on the server, local here
    if (!Number.isFinite(Number(t.dataset.s))) continue;
    const when = new Date(Number(t.dataset.s) * 1000);
    t.dateTime = when.toISOString();
    t.textContent = when.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
  }

  async function post(path, payload) {
    const response = await fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(payload),
      credentials: "same-origin",
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(data.error || `HTTP ${response.status}`);
    return data;
  }

  const form = $("login");
  if (form) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      $("login-submit").disabled = true;
      say("");
      try {
        await post("/api/login", { user: $("login-user").value, password: $("login-password").value });
        location.assign(body.dataset.next || "/");
      } catch (error) {
        $("login-password").value = "";
        say(error.message);
      } finally {
        $("login-submit").disabled = false;
      }
    });
  }

  const logout = $("logout");
  if (logout) {
    logout.addEventListener("click", async () => {
      try { await post("/api/logout", {}); } catch (error) { /* already logged out */ }
      location.assign("/login");
    });
  }
})();
