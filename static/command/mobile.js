/* CityOps phone pages (/m/): the report form with its offline outbox, my tasks, one task.
 *
 * A report is saved on the phone (IndexedDB, with its photos) the moment 上报 is tapped, under
 * a fresh Idempotency-Key, and then sent. Whatever happens to the network, the same entry is
 * sent again with the same key — on the `online` event, on a timer with backoff, when a page
 * opens — until the server answers: 201 (or the replay of a first answer the phone never got)
 * → the entry leaves the queue and shows its case number; a 4xx → the entry shows the error
 * and is not retried; no answer, 5xx or 409 (the first request is still being worked on) → it
 * stays pending. The server keeps one answer per key, so a report is stored exactly once.
 *
 * No build step, no framework: one classic script, server-translated strings (#m-strings), the
 * page's settings in #m-config.
 */
(function () {
  "use strict";

  const config = JSON.parse(document.getElementById("m-config").textContent);
  const T = JSON.parse(document.getElementById("m-strings").textContent);
  const userId = config.user.id;

  function fmt(template, values) {
    return template.replace(/%\((\w+)\)[sd]/g, (_, name) => String(values[name]));
  }

  function $(id) {
    return document.getElementById(id);
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "text") node.textContent = value;
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else if (name === "dataset") Object.assign(node.dataset, value);
      else node.setAttribute(name, value === true ? "" : value);
    }
    for (const child of children) {
      if (child !== null && child !== undefined) node.append(child);
    }
    return node;
  }

  function uuid() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  /** HH:mm in the server's time zone (T.timeZone), as the server writes the times around it. */
  function timeOfDay(date) {
    const options = { hour: "2-digit", minute: "2-digit", hourCycle: "h23" };
    try {
      return date.toLocaleTimeString([], { ...options, timeZone: T.timeZone });
    } catch {
      return date.toLocaleTimeString([], options); // an unknown zone: the phone's own
    }
  }

  // --- network and session ---------------------------------------------------------------------

  const netBadge = $("m-net");

  function showNetwork() {
    const online = navigator.onLine;
    netBadge.dataset.state = online ? "online" : "offline";
    netBadge.textContent = online ? T.online : T.offline;
  }

  function cookie(name) {
    for (const part of document.cookie.split(";")) {
      const [key, ...rest] = part.trim().split("=");
      if (key === name) return decodeURIComponent(rest.join("="));
    }
    return "";
  }

  let csrfToken = (document.querySelector("input[name=csrfmiddlewaretoken]") || {}).value || "";

  function csrf() {
    return cookie(config.csrfCookie) || csrfToken;
  }

  /** One request; never throws. {status: 0} means no answer (offline, timeout, reset). */
  // `background`: the page asks by itself, not for something the user did, so the request does
  // not keep the session from ending after its idle limit (accounts.sessions).
  async function request(
    url,
    { method = "GET", body, headers = {}, timeoutMs = 45000, background = false } = {},
  ) {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    const own = background ? { "X-CityOps-Background": "1" } : {};
    try {
      const response = await fetch(url, {
        method,
        body,
        headers: { Accept: "application/json", "X-CSRFToken": csrf(), ...own, ...headers },
        credentials: "same-origin",
        cache: "no-store",
        signal: controller.signal,
      });
      let data = null;
      const type = response.headers.get("Content-Type") || "";
      if (type.includes("json")) {
        try {
          data = await response.json();
        } catch (error) {
          data = null;
        }
      } else {
        data = await response.text();
      }
      return {
        status: response.status,
        data,
        redirected: response.redirected,
        replayed: response.headers.get("Idempotent-Replayed") === "true",
      };
    } catch (error) {
      return { status: 0, error };
    } finally {
      clearTimeout(timer);
    }
  }

  /** Who this browser is signed in as now (null: nobody, or no answer). */
  async function currentSession() {
    const answer = await request(config.sessionUrl, { timeoutMs: 15000, background: true });
    if (answer.status !== 200 || !answer.data) return { answered: answer.status !== 0, user: null };
    if (answer.data.csrfToken) csrfToken = answer.data.csrfToken;
    return { answered: true, user: answer.data.user };
  }

  const FIELD_LABELS = T.fields;

  /** How `form` itself labels its field `name` (without the 必填 mark); else the API field's
   * usual name. */
  function fieldLabel(name, form) {
    const input = form && form.querySelector(`[name="${name}"]`);
    const label = input && input.id && form.querySelector(`label[for="${input.id}"]`);
    if (label) {
      const copy = label.cloneNode(true);
      copy.querySelectorAll(".m-required").forEach((mark) => mark.remove());
      const text = copy.textContent.trim();
      if (text) return text;
    }
    return FIELD_LABELS[name] || name;
  }

  /** The API's errors ({"field": ["reason"]} or {"detail": …}) as one line for a person; each
   * reason is a sentence of its own. */
  function describeErrors(data, status, form) {
    if (!data || typeof data !== "object") return `${T.error} ${status}`;
    const parts = [];
    const seen = new Set();
    for (const [field, value] of Object.entries(data)) {
      if (field === "distance_m" || field === "allowed_actions" || field === "status") continue;
      const reasons = Array.isArray(value) ? value.join(" ") : String(value);
      const line =
        field === "detail"
          ? reasons
          : fmt(T.labelled, { label: fieldLabel(field, form), value: reasons });
      if (!seen.has(line)) parts.push(line);
      seen.add(line);
    }
    return parts.join(" ") || `${T.error} ${status}`;
  }

  /** Whether the bytes begin as a JPEG, PNG or WebP does: the formats the server takes (it
   * judges by content too, so a renamed file is refused here, not after the upload). */
  function photoFormat(data) {
    const b = new Uint8Array(data, 0, Math.min(12, data.byteLength));
    const ascii = (from, to) => String.fromCharCode(...b.subarray(from, to));
    if (b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return "jpeg";
    if (b[0] === 0x89 && ascii(1, 4) === "PNG") return "png";
    if (ascii(0, 4) === "RIFF" && ascii(8, 12) === "WEBP") return "webp";
    return "";
  }

  /** Why a picked file cannot be sent (the server would refuse it), or "". */
  function photoRefusal(file, data) {
    if (config.maxPhotoBytes && file.size > config.maxPhotoBytes) {
      const mb = (bytes) => (bytes / 1048576).toFixed(1);
      return fmt(T.photoTooLarge, { size: mb(file.size), max: mb(config.maxPhotoBytes) });
    }
    return photoFormat(data) ? "" : T.photoNotImage;
  }

  // --- the outbox: IndexedDB ------------------------------------------------------------------

  const DB_NAME = "cityops-mobile";
  const OUTBOX = "outbox";
  const DELIVERED = "delivered";
  const DELIVERED_KEEP = 10;
  let dbPromise = null;

  function openDb() {
    return new Promise((resolve, reject) => {
      const opening = indexedDB.open(DB_NAME, 1);
      opening.onupgradeneeded = () => {
        const db = opening.result;
        if (!db.objectStoreNames.contains(OUTBOX)) db.createObjectStore(OUTBOX, { keyPath: "key" });
        if (!db.objectStoreNames.contains(DELIVERED)) {
          db.createObjectStore(DELIVERED, { keyPath: "key" });
        }
      };
      opening.onsuccess = () => resolve(opening.result);
      opening.onerror = () => reject(opening.error);
    });
  }

  function db() {
    if (!dbPromise) dbPromise = openDb();
    return dbPromise;
  }

  /** Run `work(stores)` in one transaction; resolves with what its last request returned. */
  async function transact(names, mode, work) {
    const database = await db();
    return new Promise((resolve, reject) => {
      const tx = database.transaction(names, mode);
      const stores = Object.fromEntries(names.map((name) => [name, tx.objectStore(name)]));
      let result;
      const last = work(stores);
      if (last) last.onsuccess = () => (result = last.result);
      tx.oncomplete = () => resolve(result);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error);
    });
  }

  const store = {
    all: (name) => transact([name], "readonly", (s) => s[name].getAll()),
    put: (name, value) => transact([name], "readwrite", (s) => s[name].put(value)),
    remove: (name, key) => transact([name], "readwrite", (s) => s[name].delete(key)),
    /** The server confirmed: out of the queue and into the recent deliveries, atomically. */
    deliver: (entry) =>
      transact([OUTBOX, DELIVERED], "readwrite", (s) => {
        s[OUTBOX].delete(entry.key);
        return s[DELIVERED].put({
          key: entry.key,
          user: entry.user,
          number: entry.number,
          label: entry.label,
          createdAt: entry.createdAt,
          deliveredAt: new Date().toISOString(),
        });
      }),
  };

  async function myEntries(name) {
    const entries = await store.all(name);
    return entries.filter((entry) => entry.user === userId);
  }

  // --- sending ---------------------------------------------------------------------------------

  const BACKOFF_BASE_MS = 5000;
  const BACKOFF_MAX_MS = 5 * 60 * 1000;
  const RETRY_CHECK_MS = 30000;

  function backoff(attempts) {
    const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** Math.max(0, attempts - 1));
    return Math.round(delay * (0.8 + Math.random() * 0.4));
  }

  /** The request of an entry, identical on every retry: JSON, or multipart with its photos. */
  function reportBody(entry) {
    if (!entry.photos.length) {
      return { body: JSON.stringify(entry.fields), headers: { "Content-Type": "application/json" } };
    }
    const form = new FormData();
    for (const [name, value] of Object.entries(entry.fields)) form.append(name, String(value));
    for (const photo of entry.photos) {
      form.append("photos", new Blob([photo.data], { type: photo.type }), photo.name);
    }
    return { body: form, headers: {} };
  }

  function transient(status, data) {
    if (status === 0 || status >= 500 || status === 408 || status === 429) return true;
    // 409 without allowed_actions: the first request with this key is still being worked on.
    return status === 409 && !(data && data.allowed_actions);
  }

  /** Send one entry once; update it in the store. Returns its new state. */
  async function deliver(entry) {
    entry.state = "sending";
    await store.put(OUTBOX, entry);
    renderOutbox();
    const { body, headers } = reportBody(entry);
    const timeoutMs = entry.photos.length ? 180000 : 45000;
    const answer = await request(config.reportUrl, {
      method: "POST",
      body,
      headers: { ...headers, "Idempotency-Key": entry.key },
      timeoutMs,
    });
    entry.attempts += 1;
    entry.lastTriedAt = new Date().toISOString();
    entry.status = answer.status;
    if (answer.status >= 200 && answer.status < 300 && answer.data && answer.data.number) {
      entry.state = "delivered";
      entry.number = answer.data.number;
      await store.deliver(entry);
      renderOutbox();
      return entry;
    }
    if (transient(answer.status, answer.data)) {
      entry.state = "pending";
      entry.nextAt = Date.now() + backoff(entry.attempts);
      entry.error = answer.status ? fmt(T.serverError, { status: answer.status }) : "";
    } else if (answer.status === 401 || answer.status === 403) {
      const session = await currentSession();
      if (!session.answered) {
        entry.state = "pending";
        entry.nextAt = Date.now() + backoff(entry.attempts);
      } else if (!session.user || session.user.id !== entry.user) {
        entry.state = "auth"; // kept: sent after the same user signs in again
        entry.error = T.authNeeded;
      } else if (/csrf/i.test(describeErrors(answer.data, 403)) && !entry.csrfRetried) {
        entry.state = "pending"; // a stale CSRF token: retry at once with the fresh one
        entry.csrfRetried = true;
        entry.nextAt = 0;
      } else {
        entry.state = "failed";
        entry.error = describeErrors(answer.data, answer.status);
      }
    } else {
      entry.state = "failed"; // the server refused it (and keeps that answer for the key)
      entry.error = describeErrors(answer.data, answer.status);
      entry.fieldErrors = answer.data && typeof answer.data === "object" ? answer.data : null;
    }
    await store.put(OUTBOX, entry);
    renderOutbox();
    return entry;
  }

  let flushing = null;
  let flushTimer = null;

  async function flushOnce(force) {
    if (!navigator.onLine) return;
    const entries = (await myEntries(OUTBOX)).sort((a, b) => (a.createdAt < b.createdAt ? -1 : 1));
    for (const entry of entries) {
      if (entry.state === "failed" || entry.state === "auth") continue;
      if (!force && entry.nextAt && entry.nextAt > Date.now()) continue;
      if (!navigator.onLine) break;
      const sent = await deliver(entry);
      if (sent.state === "pending" && sent.status === 0) break; // no network: wait, in order
    }
  }

  /** Send what is due. One flush at a time per page, and per browser where Web Locks exist. */
  function flush(force = false) {
    if (flushing) return flushing.then(() => (force ? flush(force) : undefined));
    const run = () => flushOnce(force);
    flushing = (navigator.locks ? navigator.locks.request("cityops-outbox", run) : run())
      .catch((error) => console.error("outbox", error))
      .finally(() => {
        flushing = null;
        scheduleFlush();
      });
    return flushing;
  }

  async function scheduleFlush() {
    clearTimeout(flushTimer);
    const pending = (await myEntries(OUTBOX)).filter((e) => e.state === "pending");
    if (!pending.length) return;
    const next = Math.min(...pending.map((e) => e.nextAt || 0));
    const wait = Math.max(1000, Math.min(RETRY_CHECK_MS, next - Date.now()));
    flushTimer = setTimeout(() => flush(), wait);
  }

  async function resumeOutbox() {
    // Entries left "sending" by a closed page, or waiting for a sign-in that has now happened
    // (this page was served to a signed-in user), go back to pending — with the same key.
    for (const entry of await myEntries(OUTBOX)) {
      if (entry.state === "sending" || entry.state === "auth") {
        entry.state = "pending";
        entry.nextAt = 0;
        await store.put(OUTBOX, entry);
      }
    }
    await renderOutbox();
    flush();
  }

  // --- the outbox on the page ------------------------------------------------------------------

  const outboxCard = $("outbox");
  const outboxList = $("outbox-list");
  const deliveredCard = $("delivered");
  const deliveredList = $("delivered-list");
  const badge = $("m-outbox-badge");

  function stateLabel(entry) {
    if (entry.state === "sending") return T.sendingState;
    if (entry.state === "failed") return T.failed;
    if (entry.state === "auth") return T.failed;
    return T.pending;
  }

  function entryMeta(entry) {
    const bits = [timeOfDay(new Date(entry.createdAt))];
    bits.push(entry.photos.length ? fmt(T.photoCount, { n: entry.photos.length }) : T.noPhoto);
    if (entry.label.grid) bits.push(entry.label.grid);
    if (entry.attempts) bits.push(fmt(T.attempts, { n: entry.attempts }));
    if (entry.state === "pending") {
      if (!navigator.onLine) bits.push(T.waitingNetwork);
      else if (entry.nextAt > Date.now()) {
        bits.push(fmt(T.nextTry, { time: timeOfDay(new Date(entry.nextAt)) }));
      }
    }
    return bits.join(" · ");
  }

  function renderEntry(entry) {
    const actions = el("div", { class: "m-entry-actions" });
    if (entry.state === "pending" && navigator.onLine) {
      actions.append(
        el("button", {
          type: "button",
          class: "m-button m-secondary",
          text: T.retryNow,
          onclick: async () => {
            entry.nextAt = 0;
            await store.put(OUTBOX, entry);
            flush(true);
          },
        }),
      );
    }
    if (entry.state === "auth") {
      actions.append(el("a", { class: "m-button m-secondary", href: config.loginUrl, text: T.signIn }));
    }
    if (entry.state === "failed" || entry.state === "auth") {
      if (entry.state === "failed" && reportForm) {
        actions.append(
          el("button", {
            type: "button",
            class: "m-button m-secondary",
            text: T.edit,
            onclick: () => editEntry(entry),
          }),
        );
      }
      actions.append(
        el("button", {
          type: "button",
          class: "m-button m-secondary",
          text: T.remove,
          onclick: async () => {
            if (!window.confirm(T.confirmRemove)) return;
            await store.remove(OUTBOX, entry.key);
            renderOutbox();
          },
        }),
      );
    }
    return el(
      "li",
      { class: "m-entry", dataset: { key: entry.key, state: entry.state } },
      el(
        "div",
        { class: "m-entry-head" },
        el("strong", { text: entry.label.category }),
        el("span", { class: "m-state", dataset: { state: entry.state }, text: stateLabel(entry) }),
      ),
      entry.fields.description
        ? el("span", { class: "m-entry-desc", text: entry.fields.description.slice(0, 80) })
        : null,
      el("span", { class: "m-entry-meta", text: entryMeta(entry) }),
      entry.error ? el("span", { class: "m-entry-error", text: entry.error }) : null,
      actions.childNodes.length ? actions : null,
    );
  }

  let rendering = Promise.resolve();

  function renderOutbox() {
    rendering = rendering.then(drawOutbox).catch((error) => console.error("outbox view", error));
    return rendering;
  }

  async function drawOutbox() {
    const entries = (await myEntries(OUTBOX)).sort((a, b) => (a.createdAt < b.createdAt ? -1 : 1));
    const others = (await store.all(OUTBOX)).filter((entry) => entry.user !== userId);
    const waiting = entries.filter((entry) => entry.state !== "failed").length;
    if (badge) {
      badge.hidden = !entries.length;
      badge.textContent = String(entries.length);
    }
    if (!outboxList) return;
    outboxList.replaceChildren(...entries.map(renderEntry));
    for (const entry of others) {
      outboxList.append(
        el(
          "li",
          { class: "m-entry", dataset: { state: "other" } },
          el("strong", { text: entry.label.category }),
          el("span", { class: "m-entry-meta", text: fmt(T.otherUser, { user: entry.username }) }),
        ),
      );
    }
    outboxCard.hidden = !(entries.length || others.length);
    $("outbox-count").textContent = waiting ? `(${waiting})` : "";
    const delivered = (await myEntries(DELIVERED)).sort((a, b) =>
      a.deliveredAt < b.deliveredAt ? 1 : -1,
    );
    for (const old of delivered.slice(DELIVERED_KEEP)) await store.remove(DELIVERED, old.key);
    const recent = delivered.slice(0, DELIVERED_KEEP);
    deliveredCard.hidden = !recent.length;
    deliveredList.replaceChildren(
      ...recent.map((item) =>
        el(
          "li",
          { class: "m-entry", dataset: { key: item.key, state: "delivered", number: item.number } },
          el(
            "div",
            { class: "m-entry-head" },
            el("strong", { text: item.label.category }),
            el("span", { class: "m-state", dataset: { state: "delivered" }, text: T.deliveredState }),
          ),
          el(
            "span",
            { class: "m-entry-meta" },
            `${timeOfDay(new Date(item.deliveredAt))} · `,
            el("a", {
              href: config.taskUrl.replace("NUMBER", item.number),
              text: item.number,
              class: "m-case-number",
            }),
          ),
        ),
      ),
    );
  }

  // --- the report form -------------------------------------------------------------------------

  const reportForm = $("report-form");
  const MAX_PHOTOS = 3;
  const RECENT_KEEP = 6;
  const recentKey = `cityops-m-recent-${userId}`;

  function recentCodes() {
    try {
      return JSON.parse(localStorage.getItem(recentKey) || "[]");
    } catch (error) {
      return [];
    }
  }

  function rememberCategory(code) {
    const codes = [code, ...recentCodes().filter((c) => c !== code)].slice(0, RECENT_KEEP);
    try {
      localStorage.setItem(recentKey, JSON.stringify(codes));
    } catch (error) {
      /* private mode: no memory of recent choices */
    }
  }

  function setupReport() {
    const picker = JSON.parse($("m-picker").textContent);
    for (const category of picker.categories) {
      const major = picker.majors[category.major];
      category.majorName = major.name;
      category.majorZh = major.zh || "";
      category.kind = major.kind;
    }
    const byCode = new Map(picker.categories.map((c) => [c.code, c]));
    const message = $("report-message");
    const submit = $("report-submit");
    const state = { category: null, position: null, location: null, photos: [] };

    function say(text, kind = "error", link = null) {
      message.hidden = !text;
      message.dataset.kind = kind;
      message.replaceChildren(text || "");
      if (link) message.append(" ", link);
      if (text) message.scrollIntoView({ block: "nearest" });
    }

    // Category picker: recent and common first, then every class; search over name and code
    // (on an English page over the Chinese names too: `zh`).
    const sheet = $("picker");
    const search = $("picker-search");
    const list = $("picker-list");
    const chosen = $("category-chosen");
    const button = $("category-button");
    const severityField = $("severity-field");
    const severityInput = $("severity-input");

    function option(category, showClass) {
      return el(
        "button",
        {
          type: "button",
          class: "m-option",
          "aria-pressed": state.category && state.category.code === category.code ? "true" : "false",
          dataset: { code: category.code },
          onclick: () => choose(category),
        },
        el("small", { text: category.code }),
        el("span", { text: category.name }),
        showClass ? el("span", { class: "m-option-class", text: category.majorName }) : null,
      );
    }

    function matches(category, terms) {
      const text = [
        category.code,
        category.name,
        category.majorName,
        category.zh || "",
        category.majorZh,
      ].join(" ");
      return terms.every((term) => text.toLowerCase().includes(term));
    }

    function drawPicker() {
      const query = search.value.trim().toLowerCase();
      if (query) {
        const terms = query.split(/\s+/);
        const found = picker.categories.filter((c) => matches(c, terms));
        list.replaceChildren(
          found.length
            ? el("div", { class: "m-group" }, ...found.slice(0, 80).map((c) => option(c, true)))
            : el("p", { class: "m-empty", text: T.noResults }),
        );
        return;
      }
      const groups = [];
      const recent = recentCodes().filter((code) => byCode.has(code));
      if (recent.length) {
        groups.push(
          el(
            "div",
            { class: "m-group", dataset: { group: "recent" } },
            el("h3", { text: T.recent }),
            ...recent.map((code) => option(byCode.get(code), true)),
          ),
        );
      }
      const common = picker.common.filter((code) => byCode.has(code) && !recent.includes(code));
      if (common.length) {
        groups.push(
          el(
            "div",
            { class: "m-group", dataset: { group: "common" } },
            el("h3", { text: T.common }),
            ...common.map((code) => option(byCode.get(code), true)),
          ),
        );
      }
      const classes = new Map();
      for (const category of picker.categories) {
        if (!classes.has(category.major)) classes.set(category.major, []);
        classes.get(category.major).push(category);
      }
      for (const [major, members] of classes) {
        const first = members[0];
        groups.push(
          el(
            "details",
            { class: "m-group", dataset: { group: major } },
            el(
              "summary",
              {},
              `${picker.kinds[first.kind] || ""} · ${first.majorName}`,
              el("span", { class: "m-count", text: `(${members.length})` }),
            ),
            ...members.map((c) => option(c, false)),
          ),
        );
      }
      list.replaceChildren(...groups);
    }

    function openPicker() {
      sheet.hidden = false;
      document.body.style.overflow = "hidden";
      drawPicker();
      history.pushState({ picker: true }, "");
      search.focus();
    }

    function closePicker(fromHistory) {
      if (sheet.hidden) return;
      sheet.hidden = true;
      document.body.style.overflow = "";
      if (!fromHistory && history.state && history.state.picker) history.back();
      button.focus();
    }

    function choose(category) {
      state.category = category;
      $("category-input").value = category.code;
      chosen.textContent = fmt(T.categoryChosen, category);
      button.dataset.empty = "false";
      rememberCategory(category.code);
      severityField.hidden = category.kind !== "emergency";
      if (category.kind === "emergency") {
        severityInput.replaceChildren(
          ...picker.severities.map((s) =>
            el("option", { value: s.value, selected: s.value === category.severity, text: s.label }),
          ),
        );
      }
      closePicker(false);
    }

    button.addEventListener("click", openPicker);
    $("picker-close").addEventListener("click", () => closePicker(false));
    search.addEventListener("input", drawPicker);
    window.addEventListener("popstate", () => closePicker(true));
    sheet.addEventListener("keydown", (event) => {
      if (event.key === "Escape") closePicker(false);
    });

    // Position: the browser's GPS (WGS-84), its accuracy, and the grid cell it falls in.
    const geo = $("geo");
    const geoStatus = $("geo-status");
    const geoCoords = $("geo-coords");
    const geoGrid = $("geo-grid");
    const geoButton = $("geo-button");

    function showGrid(text, kind) {
      geoGrid.hidden = !text;
      geoGrid.textContent = text || "";
      geoGrid.dataset.kind = kind || "";
    }

    async function lookUpGrid(position) {
      if (!navigator.onLine) {
        showGrid(T.gridOffline, "warn");
        return;
      }
      showGrid(T.lookingUpGrid, "");
      const query = new URLSearchParams({ lon: position.lon, lat: position.lat, crs: "wgs84" });
      const answer = await request(`${config.locateUrl}?${query}`, { timeoutMs: 20000 });
      if (state.position !== position) return; // a newer fix arrived meanwhile
      if (answer.status === 200 && answer.data && answer.data.grid) {
        const found = answer.data;
        state.location = found;
        const lines = [
          `${found.grid.name}（${found.grid.code}）· ${found.community.name} · ${found.street.name}`,
        ];
        let kind = "";
        if (found.resolution === "nearest") {
          lines.push(T.nearest);
          kind = "warn";
        }
        if (config.place && !found.grid.code.startsWith(config.place)) {
          lines.push(fmt(T.notMyPlace, { place: config.place }));
          kind = "warn";
        }
        showGrid(lines.join(" "), kind);
      } else if (answer.status === 404 && answer.data && answer.data.distance_m !== undefined) {
        state.location = null;
        showGrid(fmt(T.gridOutside, { metres: Math.round(answer.data.distance_m) }), "bad");
      } else if (answer.status === 0) {
        showGrid(T.gridOffline, "warn");
      } else {
        showGrid(T.gridFailed, "warn");
      }
    }

    function locate() {
      if (!("geolocation" in navigator)) {
        geo.dataset.state = "error";
        geoStatus.textContent = T.geoUnsupported;
        return;
      }
      geo.dataset.state = "busy";
      geoStatus.textContent = T.locating;
      geoButton.disabled = true;
      navigator.geolocation.getCurrentPosition(
        (fix) => {
          geoButton.disabled = false;
          geoButton.textContent = T.relocate;
          const position = {
            lon: Number(fix.coords.longitude.toFixed(7)),
            lat: Number(fix.coords.latitude.toFixed(7)),
            accuracy: fix.coords.accuracy,
          };
          state.position = position;
          state.location = null;
          geo.dataset.state = "ok";
          const metres = Math.round(position.accuracy);
          geoStatus.textContent = `${T.located} · ${fmt(T.accuracy, { metres })}${
            metres > 100 ? ` ${T.lowAccuracy}` : ""
          }`;
          geoCoords.hidden = false;
          geoCoords.textContent = `${position.lon.toFixed(6)}, ${position.lat.toFixed(6)} (WGS-84)`;
          lookUpGrid(position);
        },
        (error) => {
          geoButton.disabled = false;
          geo.dataset.state = state.position ? "ok" : "error";
          const reasons = { 1: T.geoDenied, 2: T.geoUnavailable, 3: T.geoTimeout };
          geoStatus.textContent = reasons[error.code] || T.geoUnavailable;
        },
        { enableHighAccuracy: true, timeout: 20000, maximumAge: 0 },
      );
    }

    geoButton.addEventListener("click", locate);
    if (navigator.permissions && navigator.permissions.query) {
      navigator.permissions
        .query({ name: "geolocation" })
        .then((status) => {
          if (status.state === "granted") locate();
        })
        .catch(() => {});
    }

    // Photos from the camera: kept as bytes (they go into the outbox as they are).
    const photoInput = $("photo-input");
    const previews = $("photo-previews");
    const photoButton = $("photo-button");

    function drawPhotos() {
      for (const img of previews.querySelectorAll("img")) URL.revokeObjectURL(img.src);
      previews.replaceChildren(
        ...state.photos.map((photo, index) =>
          el(
            "li",
            {},
            el("img", {
              src: URL.createObjectURL(new Blob([photo.data], { type: photo.type })),
              alt: photo.name,
            }),
            el("button", {
              type: "button",
              "aria-label": `${T.remove} ${photo.name}`,
              text: "×",
              onclick: () => {
                state.photos.splice(index, 1);
                drawPhotos();
              },
            }),
          ),
        ),
      );
      photoButton.hidden = state.photos.length >= MAX_PHOTOS;
    }

    photoInput.addEventListener("change", async () => {
      for (const file of Array.from(photoInput.files || [])) {
        if (state.photos.length >= MAX_PHOTOS) break;
        const data =
          file.size > config.maxPhotoBytes ? new ArrayBuffer(0) : await file.arrayBuffer();
        const refusal = photoRefusal(file, data);
        if (refusal) {
          say(refusal);
          continue;
        }
        state.photos.push({
          name: file.name || "photo.jpg",
          type: file.type || "image/jpeg",
          size: file.size,
          data,
        });
      }
      photoInput.value = "";
      drawPhotos();
    });

    function resetForm() {
      reportForm.reset();
      state.category = null;
      state.photos = [];
      $("category-input").value = "";
      button.dataset.empty = "true";
      chosen.textContent = chosen.dataset.prompt;
      severityField.hidden = true;
      drawPhotos();
      // The position stays: the next report is most likely made on the same spot.
    }
    chosen.dataset.prompt = chosen.textContent;

    async function submitReport(event) {
      event.preventDefault();
      if (!state.category) {
        say(T.chooseCategory);
        return;
      }
      if (!state.position) {
        say(T.needLocation);
        return;
      }
      const fields = {
        category: state.category.code,
        description: $("description-input").value.trim(),
        lon: state.position.lon,
        lat: state.position.lat,
        crs: "wgs84",
        client_reported_at: new Date().toISOString(),
      };
      if (state.category.kind === "emergency" && severityInput.value) {
        fields.severity = severityInput.value;
      }
      const entry = {
        key: uuid(), // the Idempotency-Key of this report, the same on every retry
        user: userId,
        username: config.user.username,
        createdAt: new Date().toISOString(),
        fields,
        label: {
          category: fmt(T.categoryChosen, state.category),
          grid: state.location ? state.location.grid.name : "",
        },
        photos: state.photos.slice(),
        state: "pending",
        attempts: 0,
        nextAt: 0,
        error: "",
      };
      const draft = { category: state.category, description: fields.description };
      submit.disabled = true;
      try {
        await store.put(OUTBOX, entry); // saved before anything is sent
        resetForm();
        if (!navigator.onLine) {
          say(T.saved, "info");
          await renderOutbox();
          return;
        }
        say(T.sending, "info");
        await flush(true);
        const after = (await myEntries(OUTBOX)).find((e) => e.key === entry.key);
        if (!after) {
          const sent = (await myEntries(DELIVERED)).find((e) => e.key === entry.key);
          const number = sent ? sent.number : "";
          const link = el("a", { href: config.taskUrl.replace("NUMBER", number), text: number });
          say(T.delivered, "ok", link);
        } else if (after.state === "failed") {
          // Refused at once: the form is still in front of the user, so the fix happens
          // there. This entry's key has its answer; the corrected report gets a new one.
          await store.remove(OUTBOX, entry.key);
          restore(after, draft);
          say(after.error);
        } else if (after.state === "auth") {
          say(T.authNeeded, "error", el("a", { href: config.loginUrl, text: T.signIn }));
        } else {
          say(T.saved, "info");
        }
      } finally {
        submit.disabled = false;
        renderOutbox();
      }
    }

    function restore(entry, draft) {
      const category = byCode.get(entry.fields.category) || draft.category;
      if (category) choose(category);
      $("description-input").value = entry.fields.description || "";
      state.photos = entry.photos.slice();
      drawPhotos();
    }

    editEntry = async (entry) => {
      await store.remove(OUTBOX, entry.key);
      restore(entry, {});
      if (!state.position) {
        state.position = { lon: entry.fields.lon, lat: entry.fields.lat, accuracy: 0 };
        geo.dataset.state = "ok";
        geoCoords.hidden = false;
        geoCoords.textContent = `${entry.fields.lon}, ${entry.fields.lat} (WGS-84)`;
      }
      say(entry.error);
      renderOutbox();
      reportForm.scrollIntoView({ block: "start" });
    };

    reportForm.addEventListener("submit", submitReport);
  }

  let editEntry = () => {};

  // --- clocks (countdowns to a stage deadline) --------------------------------------------------

  function span(seconds) {
    const minutes = Math.floor(Math.abs(seconds) / 60);
    const days = Math.floor(minutes / 1440);
    const hours = Math.floor((minutes % 1440) / 60);
    const mins = minutes % 60;
    if (days) return fmt(T.days, { days, hours });
    if (hours) return fmt(T.hours, { hours, minutes: mins });
    return fmt(T.minutes, { minutes: mins });
  }

  function tickClocks() {
    for (const clock of document.querySelectorAll(".m-clock[data-deadline]")) {
      const seconds = Math.round((Date.parse(clock.dataset.deadline) - Date.now()) / 1000);
      if (Number.isNaN(seconds)) continue;
      clock.textContent = fmt(seconds >= 0 ? T.remaining : T.overdue, { span: span(seconds) });
      clock.dataset.state = seconds < 0 ? "overdue" : seconds < 7200 ? "soon" : "ok";
    }
  }

  // --- my tasks: the list, refreshed when the live feed reports a change ------------------------

  function setupTasks() {
    const holder = $("task-list-holder");
    const live = $("m-live");
    let refreshing = null;
    let again = false;
    let timer = null;

    function readSeqs(root) {
      const node = root.querySelector("#task-seqs");
      return node ? JSON.parse(node.textContent) : {};
    }

    async function refresh() {
      if (refreshing) {
        again = true;
        return refreshing;
      }
      refreshing = (async () => {
        const before = new Set(
          Array.from(holder.querySelectorAll(".m-task"), (task) => task.dataset.number),
        );
        const answer = await request(holder.dataset.fragmentUrl, {
          headers: { Accept: "text/html" },
          timeoutMs: 30000,
          background: true,
        });
        if (answer.status !== 200 || answer.redirected || typeof answer.data !== "string") {
          return null;
        }
        const template = document.createElement("template");
        template.innerHTML = answer.data;
        const fresh = template.content.querySelector("#task-list");
        if (!fresh) return null;
        for (const task of fresh.querySelectorAll(".m-task")) {
          if (!before.has(task.dataset.number)) task.dataset.fresh = "true";
        }
        holder.replaceChildren(fresh);
        tickClocks();
        return readSeqs(holder);
      })();
      try {
        return await refreshing;
      } finally {
        refreshing = null;
        if (again) {
          again = false;
          refresh();
        }
      }
    }

    function soon() {
      clearTimeout(timer);
      timer = setTimeout(refresh, 300);
    }

    const labels = {
      connecting: T.liveConnecting,
      live: T.liveOn,
      interrupted: T.liveInterrupted,
      resyncing: T.liveResyncing,
      signedout: T.liveSignedOut,
    };

    if (!window.CityOpsLive) {
      live.dataset.state = "interrupted";
      live.textContent = T.liveInterrupted;
      return;
    }
    const feed = window.CityOpsLive.connect({
      storageKey: `m-tasks-${userId}`,
      onEvents(events) {
        if (events.length) soon();
      },
      onStatus(status) {
        live.dataset.state = status;
        live.textContent = labels[status] || status;
      },
      onSignedOut() {
        // The session ended (idle past its limit, or signed out elsewhere): sign in again.
        live.append(" ", el("a", { href: config.loginUrl, text: T.signIn }));
      },
      async onResyncRequired() {
        const seqs = await refresh();
        if (seqs) feed.snapshotLoaded(seqs);
      },
    });
    feed.snapshotLoaded(readSeqs(holder));
    window.cityopsTasksFeed = feed;
  }

  // --- one task: its action forms -----------------------------------------------------------

  // Action requests of the task page on their way (their answer reloads the page itself).
  let caseActionsInFlight = 0;

  // The task page follows the live feed: when this case changes (another user acted, the
  // clock escalated it), the page reloads itself — or, if the user has started filling in a
  // form, says so and offers the reload instead of throwing their input away.
  function followCase() {
    const card = document.querySelector(".m-case");
    const number = card.dataset.number;
    const live = $("m-live");
    const changed = $("m-changed");
    const seqsNode = $("task-seqs");
    let dirty = false;
    for (const form of document.querySelectorAll(".m-action-form")) {
      form.addEventListener("input", () => { dirty = true; });
      form.addEventListener("change", () => { dirty = true; });
    }
    changed.querySelector("[data-role=reload]").addEventListener("click", () => location.reload());

    function caseChanged(what) {
      if (caseActionsInFlight) return; // this user's own step: its answer moves the page on
      if (!dirty) {
        location.reload();
        return;
      }
      changed.querySelector("[data-role=text]").textContent = fmt(T.caseChanged, {
        what: what || T.caseChangedSomething,
      });
      changed.hidden = false;
    }

    const labels = {
      connecting: T.liveConnecting,
      live: T.liveOn,
      interrupted: T.liveInterrupted,
      resyncing: T.liveResyncing,
      signedout: T.liveSignedOut,
    };
    if (!window.CityOpsLive || !seqsNode) {
      live.dataset.state = "interrupted";
      live.textContent = T.liveInterrupted;
      return;
    }
    const feed = window.CityOpsLive.connect({
      storageKey: `m-task-${userId}`,
      onEvents(events) {
        for (const event of events) {
          const incident = (event.payload || {}).incident || {};
          if (incident.number !== number) continue;
          const status = incident.status && incident.status !== card.dataset.status
            ? T.statusLabels[incident.status]
            : "";
          caseChanged(status);
          return;
        }
      },
      onStatus(status) {
        live.dataset.state = status;
        live.textContent = labels[status] || status;
      },
      onSignedOut() {
        // The session ended (idle past its limit, or signed out elsewhere): sign in again.
        live.append(" ", el("a", { href: config.loginUrl, text: T.signIn }));
      },
      onResyncRequired() {
        // Too much was missed to tell whether this case changed: look again.
        caseChanged("");
      },
    });
    feed.snapshotLoaded(JSON.parse(seqsNode.textContent));
    window.cityopsTaskFeed = feed;
  }

  function setupTask() {
    const flash = sessionStorage.getItem("cityops-m-flash");
    if (flash) {
      sessionStorage.removeItem("cityops-m-flash");
      $("m-flash").textContent = flash;
      $("m-flash").hidden = false;
    }
    followCase();
    for (const form of document.querySelectorAll(".m-action-form")) {
      const message = form.querySelector(".m-message");
      const button = form.querySelector("button[type=submit]");
      const photos = [];
      const photoInput = form.querySelector("[data-role=photo]");
      const previews = form.querySelector("[data-role=previews]");
      // 派遣: the select names a department by its short name (a closed select cannot wrap);
      // the chosen one's full name and code (the option's title) are written under it.
      const department = form.querySelector("[data-role=department]");
      const departmentName = form.querySelector("[data-role=department-name]");

      if (department && departmentName) {
        department.addEventListener("change", () => {
          const option = department.selectedOptions[0];
          departmentName.textContent = option && option.value ? option.title : "";
        });
      }

      function say(text, kind = "error") {
        message.hidden = !text;
        message.dataset.kind = kind;
        message.textContent = text || "";
      }

      if (photoInput) {
        photoInput.addEventListener("change", async () => {
          for (const file of Array.from(photoInput.files || [])) {
            if (photos.length >= 3) break;
            const data =
              file.size > config.maxPhotoBytes ? new ArrayBuffer(0) : await file.arrayBuffer();
            const refusal = photoRefusal(file, data);
            if (refusal) {
              say(refusal);
              continue;
            }
            photos.push({
              name: file.name || "photo.jpg",
              type: file.type || "image/jpeg",
              data,
            });
          }
          photoInput.value = "";
          previews.replaceChildren(
            ...photos.map((p) =>
              el(
                "li",
                {},
                el("img", {
                  src: URL.createObjectURL(new Blob([p.data], { type: p.type })),
                  alt: p.name,
                }),
              ),
            ),
          );
          form.dataset.key = ""; // another body: another key
        });
      }

      form.addEventListener("submit", async (event) => {
        event.preventDefault();
        const fields = {};
        const empty = [];
        for (const input of form.querySelectorAll("input, textarea, select")) {
          if (!input.name || input.type === "file") continue;
          if (input.type === "radio" && !input.checked) continue;
          let value = input.value.trim();
          if (input.required && !value) {
            empty.push(input);
            continue;
          }
          if (input.type === "datetime-local") {
            if (!value) continue;
            value = new Date(value).toISOString();
          }
          fields[input.name] = input.name === "satisfaction" ? Number(value) : value;
        }
        if (empty.length) {
          // Every empty required field at once: the server would name only the first.
          const named = (input) =>
            fmt(T.labelled, { label: fieldLabel(input.name, form), value: T.required });
          say(empty.map(named).join(" "));
          empty[0].focus();
          return;
        }
        let body;
        let headers;
        if (photos.length) {
          body = new FormData();
          for (const [name, value] of Object.entries(fields)) body.append(name, String(value));
          for (const p of photos) body.append("photos", new Blob([p.data], { type: p.type }), p.name);
          headers = {};
        } else {
          body = JSON.stringify(fields);
          headers = { "Content-Type": "application/json" };
        }
        // One key per request; a retry after no answer sends the same body with the same key.
        const signature = JSON.stringify([fields, photos.length]);
        if (!form.dataset.key || form.dataset.signature !== signature) {
          form.dataset.key = uuid();
          form.dataset.signature = signature;
        }
        button.disabled = true;
        say(T.acting, "info");
        caseActionsInFlight += 1;
        let answer;
        try {
          answer = await request(form.dataset.url, {
            method: "POST",
            body,
            headers: { ...headers, "Idempotency-Key": form.dataset.key },
            timeoutMs: photos.length ? 180000 : 45000,
          });
        } finally {
          caseActionsInFlight -= 1;
        }
        button.disabled = false;
        if (answer.status >= 200 && answer.status < 300) {
          form.dataset.key = "";
          const done = fmt(T.actionDone, { action: form.dataset.label });
          sessionStorage.setItem("cityops-m-flash", done);
          // The page again, as the server now sees the case and what is left for this user.
          window.location.assign(window.location.pathname);
          return;
        }
        if (transient(answer.status, answer.data)) {
          say(answer.status ? fmt(T.serverError, { status: answer.status }) : T.networkError);
          button.textContent = T.retry;
          return;
        }
        form.dataset.key = ""; // answered: a corrected request is a new one
        say(describeErrors(answer.data, answer.status, form));
      });
    }
  }

  // --- sharing my position (grid workers, department handlers) ---------------------------------
  //
  // While the switch is on (remembered per user in localStorage, so every /m/ page resumes it),
  // the browser watches the position and the phone PUTs it to the server at most once a minute,
  // or sooner when it moved more than 50 m. Positions are ephemeral: offline, nothing is sent and
  // nothing is queued; the next fix after the network is back is sent. Switching off DELETEs the
  // position (retried when the network is back if that request got no answer) and stops watching.

  const SHARE_EVERY_MS = 60000;
  const SHARE_MOVED_M = 50;

  function metresBetween(a, b) {
    // Haversine on the WGS-84 mean radius: only to decide whether the phone moved 50 m.
    const rad = Math.PI / 180;
    const dLat = (b.lat - a.lat) * rad;
    const dLon = (b.lon - a.lon) * rad;
    const h =
      Math.sin(dLat / 2) ** 2 +
      Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dLon / 2) ** 2;
    return 2 * 6371008.8 * Math.asin(Math.sqrt(h));
  }

  function setupShare() {
    const box = $("m-share");
    const toggle = $("m-share-switch");
    const status = $("m-share-status");
    const onKey = `cityops-share-${userId}`;
    const clearKey = `cityops-share-clear-${userId}`;
    let watchId = null;
    let timer = null;
    let latest = null; // the newest fix from the browser
    let sent = null; // the last position the server accepted, and when
    let attemptAt = 0;
    let sending = null; // the PUT on its way, if any

    function show(state, text) {
      box.dataset.state = state;
      status.textContent = text;
    }

    function sharedText() {
      const time = timeOfDay(new Date(sent.at));
      if (sent.accuracy !== null) {
        return fmt(T.shareOnAccuracy, { time, metres: Math.round(sent.accuracy) });
      }
      return fmt(T.shareOn, { time });
    }

    function offlineText() {
      return sent ? fmt(T.shareOffline, { time: timeOfDay(new Date(sent.at)) }) : T.shareOfflineNever;
    }

    async function send(force = false) {
      if (watchId === null || !latest || sending) return;
      if (!navigator.onLine) {
        show("offline", offlineText());
        return;
      }
      const moved = !sent || metresBetween(sent, latest) > SHARE_MOVED_M;
      if (!force && !moved && Date.now() - attemptAt < SHARE_EVERY_MS) return;
      const fix = latest;
      let done;
      sending = new Promise((resolve) => (done = resolve));
      attemptAt = Date.now();
      if (!sent) show("sending", T.shareSending);
      const body = JSON.stringify({ lon: fix.lon, lat: fix.lat, accuracy_m: fix.accuracy });
      const put = () =>
        request(config.positionUrl, {
          method: "PUT",
          body,
          headers: { "Content-Type": "application/json" },
          timeoutMs: 20000,
          background: true,
        });
      let answer = await put();
      let signedOut = false;
      if (answer.status === 403) {
        const session = await currentSession(); // also a fresh CSRF token
        signedOut = session.answered && !session.user;
        if (session.user && /csrf/i.test(describeErrors(answer.data, 403))) answer = await put();
      }
      sending = null;
      done();
      if (watchId === null) return; // switched off meanwhile: the DELETE decides
      if (signedOut) {
        show("error", fmt(T.shareRefused, { reason: T.authNeeded }));
      } else if (answer.status === 200) {
        sent = { lon: fix.lon, lat: fix.lat, accuracy: fix.accuracy, at: Date.now() };
        show("on", sharedText());
      } else if (answer.status === 400 && answer.data && (answer.data.lon || answer.data.lat)) {
        // A point beyond the district comes with its distance (the reason is in words).
        const outside = typeof answer.data.distance_m === "number";
        show("error", outside ? T.shareOutside : describeErrors(answer.data, 400));
      } else if (answer.status >= 400 && answer.status < 500) {
        show("error", fmt(T.shareRefused, { reason: describeErrors(answer.data, answer.status) }));
      } else if (!navigator.onLine) {
        show("offline", offlineText());
      } else {
        const reason = answer.status ? `${T.error} ${answer.status}` : T.waitingNetwork;
        show("error", fmt(T.shareRetry, { reason }));
      }
    }

    function onFix(position) {
      const c = position.coords;
      latest = {
        lon: Math.round(c.longitude * 1e6) / 1e6,
        lat: Math.round(c.latitude * 1e6) / 1e6,
        accuracy: Number.isFinite(c.accuracy) ? Math.round(c.accuracy * 10) / 10 : null,
      };
      send();
    }

    function onGeoError(error) {
      if (error.code === 1) {
        // No permission: sharing cannot work; the switch goes off and says why.
        stopWatching();
        toggle.checked = false;
        localStorage.removeItem(onKey);
        show("error", T.geoDenied);
        return;
      }
      if (!sent) show("error", error.code === 3 ? T.geoTimeout : T.geoUnavailable);
    }

    function startWatching() {
      if (!("geolocation" in navigator)) {
        toggle.checked = false;
        show("error", T.geoUnsupported);
        return;
      }
      if (watchId !== null) return;
      show("starting", T.shareStarting);
      watchId = navigator.geolocation.watchPosition(onFix, onGeoError, {
        enableHighAccuracy: true,
        maximumAge: 15000,
        timeout: 60000,
      });
      // A phone standing still gets no new fix; the last one is sent again each minute so the
      // position does not age out on the wall.
      timer = setInterval(() => send(), 15000);
    }

    function stopWatching() {
      if (watchId !== null) navigator.geolocation.clearWatch(watchId);
      clearInterval(timer);
      watchId = null;
      timer = null;
      latest = null;
      sent = null;
      attemptAt = 0;
    }

    async function clearOnServer() {
      show("stopping", T.shareStopping);
      // A PUT still on its way would store the position again after the DELETE: wait for it.
      if (sending) await sending;
      const answer = await request(config.positionUrl, { method: "DELETE", timeoutMs: 20000 });
      if (toggle.checked) return; // switched on again meanwhile
      if (answer.status === 204 || (answer.status >= 400 && answer.status < 500)) {
        localStorage.removeItem(clearKey);
        show("off", T.shareOff);
      } else {
        localStorage.setItem(clearKey, "1");
        show("error", fmt(T.shareStopFailed, { minutes: config.positionMaxAgeMinutes }));
      }
    }

    toggle.addEventListener("change", () => {
      if (toggle.checked) {
        localStorage.setItem(onKey, "on");
        localStorage.removeItem(clearKey);
        startWatching();
      } else {
        localStorage.removeItem(onKey);
        stopWatching();
        clearOnServer();
      }
    });
    window.addEventListener("online", () => {
      if (watchId !== null) send(true);
      else if (localStorage.getItem(clearKey)) clearOnServer();
    });
    window.addEventListener("offline", () => {
      if (watchId !== null) show("offline", offlineText());
    });

    if (localStorage.getItem(onKey) === "on") {
      toggle.checked = true;
      startWatching();
    } else if (localStorage.getItem(clearKey) && navigator.onLine) {
      clearOnServer();
    }

    // For the sign-out (sharing ends with the shift) and the tests.
    window.cityopsShare = {
      state: () => ({ on: watchId !== null, sent, latest, box: box.dataset.state }),
      async stop() {
        if (!toggle.checked && !localStorage.getItem(clearKey)) return;
        toggle.checked = false;
        localStorage.removeItem(onKey);
        stopWatching();
        await clearOnServer();
      },
    };
  }

  // --- the shell: service worker, stale page notice, sign-out -----------------------------------

  function setupShell() {
    showNetwork();
    window.addEventListener("online", () => {
      showNetwork();
      // Back online: everything pending is due now (same keys).
      myEntries(OUTBOX).then(async (entries) => {
        for (const entry of entries) {
          if (entry.state === "pending" && entry.nextAt) {
            entry.nextAt = 0;
            await store.put(OUTBOX, entry);
          }
        }
        flush(true);
      });
    });
    window.addEventListener("offline", () => {
      showNetwork();
      renderOutbox();
    });
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible") flush();
    });
    setInterval(() => {
      renderOutbox();
      flush();
    }, RETRY_CHECK_MS);

    const cached = document.querySelector("meta[name=m-cached-at]");
    if (cached) {
      const notice = $("m-stale");
      notice.textContent = fmt(T.staleShell, { time: timeOfDay(new Date(cached.content)) });
      notice.hidden = false;
    }

    if ("serviceWorker" in navigator) {
      navigator.serviceWorker
        .register(config.swUrl, { scope: config.swScope })
        .catch((error) => console.warn("service worker", error));
    }

    const logout = $("m-logout");
    logout.addEventListener("submit", async (event) => {
      event.preventDefault();
      const unsent = (await myEntries(OUTBOX)).length;
      if (unsent && !window.confirm(fmt(T.unsentOnLogout, { n: unsent }))) return;
      // Signing out ends the shift: the position is no longer shared.
      if (window.cityopsShare) await window.cityopsShare.stop();
      // The cached pages are this user's: they go with the session. The outbox stays.
      if (window.caches) {
        for (const name of await caches.keys()) {
          if (name.startsWith("cityops-m-")) await caches.delete(name);
        }
      }
      logout.submit();
    });
  }

  setupShell();
  if ($("m-share")) setupShare();
  if (reportForm) setupReport();
  if ($("task-list-holder")) setupTasks();
  if (document.querySelector(".m-case")) setupTask();
  tickClocks();
  setInterval(tickClocks, 30000);
  resumeOutbox();

  // For tests and the curious: the outbox as it stands.
  window.cityopsOutbox = {
    entries: () => myEntries(OUTBOX),
    delivered: () => myEntries(DELIVERED),
    flush: () => flush(true),
  };
})();
