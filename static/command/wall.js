/* CityOps district wall screen (/command/wall/).
 *
 * The page arrives with its first snapshot (#wall-snapshot: the district's open cases and those
 * that changed today, the day's case numbers per figure, and the server's figures), draws it,
 * then follows the district's live feed (static/realtime/live.js, scope district:<code>) and
 * applies every event to its model of the cases. All figures — KPI tiles, the streets table,
 * the charts, the overdue list — are recomputed from that model with the definitions of the
 * server's wall selectors (incidents.selectors.wall_*); after each snapshot the page checks that
 * its own figures equal the server's and records any difference in `mismatches`.
 *
 * Events are applied idempotently by case number: a case is replaced by the event's summary,
 * the day's figures are sets of case numbers, the ticker is keyed by (kind, number, time). The
 * snapshot's sequence number was read before its data, so an event may arrive that the snapshot
 * already contains; applying it again changes nothing. Whether a case closed today met all its
 * time limits (按期) needs its timeline, which only the server reads: a closure seen live counts
 * once the next snapshot (asked for a few seconds later) has judged it.
 *
 * Responders who share their position (grid workers, department handlers) are drawn from the
 * snapshot's `responders` and follow dispatch.responder_moved / responder_cleared, keyed by user id.
 *
 * window.cityopsWall exposes the state for the browser tests and the screenshot script.
 */
(function () {
  "use strict";

  function readJson(id) {
    return JSON.parse(document.getElementById(id).textContent);
  }

  var config = readJson("wall-config");
  var T = readJson("wall-strings");
  // Every category's name in the page's language, by code (command.views.wall): a case's
  // summary — the snapshot's and the live events' — names its category in Chinese whatever the
  // reader reads (one payload for every subscriber, docs/decisions/0016).
  var CATEGORY_NAMES = readJson("wall-category-names");
  // The response plans (name, and the level each starts from) and the departments' short
  // names, by code, in the page's language: the responses panel names them.
  var RESPONSE_NAMES = readJson("wall-response-names");
  var SCOPE = config.scope;

  var OPEN_EXCLUDED = { rejected: 1, closed: 1, evaluated: 1, merged: 1 };
  var CLOSED = { closed: 1, evaluated: 1 };
  var STATUS_GROUP = {
    reported: "reported",
    registered: "registered",
    returned: "registered",
    dispatched: "handling",
    accepted: "handling",
    handling: "handling",
    fed_back: "checking",
    verified: "checking",
    parked: "parked",
    closed: "closed",
    evaluated: "closed"
  };
  var ROMAN = { I: "Ⅰ", II: "Ⅱ", III: "Ⅲ", IV: "Ⅳ" };
  // Street fills on the dark map (in code order), the same in the streets table's swatches.
  var STREET_COLOURS = ["#3b82f6", "#14b8a6", "#eab308", "#a855f7", "#ec4899", "#22c55e",
    "#f97316", "#06b6d4"];
  var SOON_MS = 2 * 3600 * 1000; // the overdue list also shows clocks running out within 2 h
  var JUDGE_DELAY_MS = 4000; // a live closure is judged (按期?) by the snapshot after this delay
  var RECONCILE_MS = 10 * 60 * 1000; // and the snapshot is reloaded this often in any case
  var COLOURS = {
    reported: "#38bdf8",
    closed: "#4ade80",
    open: "#fbbf24",
    overdue: "#f87171",
    axis: "#8aa3bf",
    grid: "rgba(138, 163, 191, 0.18)",
    ink: "#e2ecf7"
  };

  var state = {
    ready: false,
    status: "connecting",
    cases: new Map(),
    today: null,
    judged: new Set(),
    onTime: new Set(),
    ticker: [],
    tickerKeys: new Set(),
    streets: [],
    communities: {},
    dayStart: 0,
    dayEnd: 0,
    offset: 0,
    lastSeq: 0,
    snapshotAt: null,
    snapshots: 0,
    applied: 0,
    mismatches: [],
    figures: null,
    interruptedAt: null,
    refused: false,
    boundaries: false,
    map: null,
    feed: null
  };
  window.cityopsWall = state;

  // ---------------------------------------------------------------------------------------------
  // Small helpers

  function $(id) {
    return document.getElementById(id);
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) {
      node.className = className;
    }
    if (text !== undefined && text !== null) {
      node.textContent = text;
    }
    return node;
  }

  function format(template, values) {
    return template.replace(/%\((\w+)\)s/g, function (match, key) {
      return Object.prototype.hasOwnProperty.call(values, key) ? String(values[key]) : match;
    });
  }

  function rem() {
    return parseFloat(getComputedStyle(document.documentElement).fontSize) || 16;
  }

  function parseTime(value) {
    if (value === null || value === undefined || value === "") {
      return null;
    }
    var ms = Date.parse(value);
    return isNaN(ms) ? null : ms;
  }

  // The server's clock: the kiosk's own clock may be off.
  function now() {
    return Date.now() + state.offset;
  }

  var locale = config.language === "en" ? "en-GB" : "zh-CN";
  var hourFormat = new Intl.DateTimeFormat("en-GB", {
    timeZone: config.timeZone, hour: "2-digit", hourCycle: "h23"
  });
  var timeFormat = new Intl.DateTimeFormat("en-GB", {
    timeZone: config.timeZone, hour: "2-digit", minute: "2-digit", second: "2-digit",
    hourCycle: "h23"
  });
  var dateFormat = new Intl.DateTimeFormat(locale, {
    timeZone: config.timeZone, year: "numeric", month: "long", day: "numeric", weekday: "long"
  });

  // The local hour of a moment, remembered per quarter of an hour (every time zone's offset is
  // a whole number of quarters): the figures ask it for every case reported or closed today,
  // every second, and Intl's formatting is the dear part.
  var hourCache = new Map();

  function localHour(ms) {
    var slot = Math.floor(ms / 900000);
    var hour = hourCache.get(slot);
    if (hour === undefined) {
      if (hourCache.size > 5000) {
        hourCache.clear();
      }
      hour = parseInt(hourFormat.format(new Date(ms)), 10) % 24;
      hourCache.set(slot, hour);
    }
    return hour;
  }

  function clockText(ms) {
    return timeFormat.format(new Date(ms));
  }

  // A countdown as the wall shows it: under a day, hours, minutes and seconds ("01:23:45"), the
  // seconds showing the clock runs; from a day on, days and hours only ("3天05时", "3d 05h"): read
  // from across the room, the seconds of a clock days past its limit say nothing, and the short
  // text leaves the row's room to where the case is. Hours are always two digits, so the text
  // keeps its width (the countdowns are monospaced) until it changes format.
  function duration(ms) {
    var total = Math.max(0, Math.floor(ms / 1000));
    var days = Math.floor(total / 86400);
    var h = Math.floor((total % 86400) / 3600);
    var m = Math.floor((total % 3600) / 60);
    var s = total % 60;
    var pad = function (n) {
      return (n < 10 ? "0" : "") + n;
    };
    if (days > 0) {
      return format(T.daysHours, { days: days, hours: pad(h) });
    }
    return pad(h) + ":" + pad(m) + ":" + pad(s);
  }

  function inToday(ms) {
    return ms !== null && ms >= state.dayStart && ms < state.dayEnd;
  }

  function isOpen(c) {
    return !OPEN_EXCLUDED[c.status];
  }

  function isOverdue(c, at) {
    return isOpen(c) && c.deadline !== null && c.deadline < at;
  }

  function streetName(code) {
    for (var i = 0; i < state.streets.length; i += 1) {
      if (state.streets[i].code === code) {
        return state.streets[i].name;
      }
    }
    return code;
  }

  // The name of a case's category (or of a row of the category chart) in the page's language;
  // the summary's own name for a code the page does not know (a category added since it loaded).
  function categoryName(category) {
    if (Object.prototype.hasOwnProperty.call(CATEGORY_NAMES, category.code)) {
      return CATEGORY_NAMES[category.code];
    }
    return category.name || category.code;
  }

  function streetColour(code) {
    for (var i = 0; i < state.streets.length; i += 1) {
      if (state.streets[i].code === code) {
        return STREET_COLOURS[i % STREET_COLOURS.length];
      }
    }
    return "#64748b";
  }

  // ---------------------------------------------------------------------------------------------
  // The model: cases by number, the day's numbers per figure, the ticker

  // A case as the wall keeps it, from a summary (the snapshot's, or a live event's at `at`).
  // A case with departments called out (协办) keeps when the first was called out: the
  // snapshot says (response_at); live, it is the moment of the event that first called one out.
  function caseFrom(summary, previous, at) {
    var status = summary.status;
    var closedAt = null;
    if (CLOSED[status]) {
      closedAt = summary.closed_at !== undefined ? parseTime(summary.closed_at)
        : (previous ? previous.closedAt : null);
    }
    var supports = summary.supports || [];
    var responseAt = null;
    if (supports.length) {
      responseAt = summary.response_at !== undefined ? parseTime(summary.response_at)
        : (previous && previous.responseAt) || at || null;
    }
    return {
      number: summary.number,
      status: status,
      category: summary.category || { code: "", name: "" },
      severity: summary.severity || null,
      location: summary.location,
      street: summary.street,
      community: summary.community,
      grid: summary.grid,
      triage: Boolean(summary.triage),
      owner: summary.owner || null,
      stage: summary.stage || null,
      deadline: parseTime(summary.stage_deadline),
      warned: Boolean(summary.stage_warned),
      escalations: summary.escalations || 0,
      createdAt: parseTime(summary.created_at),
      closedAt: closedAt,
      department: summary.department || null,
      supports: supports,
      arrived: summary.supports_arrived || [],
      plan: summary.plan || null,
      responseAt: responseAt
    };
  }

  // Newest first, as the server's wall_ticker orders them: by time; at the same time (a bulk
  // batch of alarms shares one), new reports before escalations, and the highest case number
  // (the latest reported) first — so a live batch shows its newest, as a reload would.
  var TICKER_KIND_ORDER = { reported: 0, escalated: 1 };

  function tickerOrder(a, b) {
    return b.at - a.at ||
      (TICKER_KIND_ORDER[a.kind] || 0) - (TICKER_KIND_ORDER[b.kind] || 0) ||
      (a.number < b.number ? 1 : a.number > b.number ? -1 : 0);
  }

  function tickerAdd(kind, number, at, extra, fresh) {
    var key = kind + "|" + number + "|" + at;
    if (state.tickerKeys.has(key)) {
      return false;
    }
    state.tickerKeys.add(key);
    state.ticker.push({ kind: kind, number: number, at: at, to: extra || null, fresh: fresh,
      key: key });
    state.ticker.sort(tickerOrder);
    if (state.ticker.length > config.tickerLimit) {
      state.ticker.length = config.tickerLimit;
    }
    return true;
  }

  // The open cases with a running clock, soonest deadline first: the overdue list and the
  // figures' next change (the next clock to run out) read it every second; it is sorted again
  // only after the cases changed (a snapshot, an event), not every second.
  var deadlineIndex = null;
  var responseIndex = null;
  var figuresDirty = true;

  function casesChanged() {
    deadlineIndex = null;
    responseIndex = null;
    figuresDirty = true;
  }

  function byDeadline() {
    if (deadlineIndex === null) {
      deadlineIndex = [];
      state.cases.forEach(function (c) {
        if (isOpen(c) && c.deadline !== null) {
          deadlineIndex.push(c);
        }
      });
      deadlineIndex.sort(function (a, b) {
        return a.deadline - b.deadline || (a.number < b.number ? -1 : a.number > b.number ? 1 : 0);
      });
    }
    return deadlineIndex;
  }

  // The first deadline at or after `at` (null if none): until then no open case becomes overdue.
  function nextDeadline(at) {
    var index = byDeadline();
    var low = 0;
    var high = index.length;
    while (low < high) {
      var mid = (low + high) >> 1;
      if (index[mid].deadline < at) {
        low = mid + 1;
      } else {
        high = mid;
      }
    }
    return low < index.length ? index[low].deadline : null;
  }

  // The server's clock against the kiosk's: the snapshot's generated_at was the server's time when
  // the answer left it, about when it arrived here (`receivedAt`, the kiosk's clock) — not when
  // it is applied: the page's first snapshot comes in its HTML, applied only once the map and
  // the scripts are up, seconds later, and every clock on the wall would run those seconds slow.
  function applySnapshot(data, receivedAt) {
    var received = receivedAt || Date.now();
    state.offset = (parseTime(data.generated_at) || received) - received;
    state.dayStart = parseTime(data.day.start);
    state.dayEnd = parseTime(data.day.end);
    state.streets = data.streets;
    state.communities = data.communities;
    state.cases = new Map();
    data.cases.forEach(function (summary) {
      state.cases.set(summary.number, caseFrom(summary, null));
    });
    casesChanged();
    state.today = {
      reported: new Set(data.today.reported),
      registered: new Set(data.today.registered),
      dispatched: new Set(data.today.dispatched),
      closed: new Set(data.today.closed),
      escalated: new Set(data.today.escalated)
    };
    state.judged = new Set(data.today.closed);
    state.onTime = new Set(data.today.on_time);
    state.ticker = [];
    state.tickerKeys = new Set();
    data.ticker.forEach(function (item) {
      tickerAdd(item.kind, item.number, parseTime(item.at), item.to, false);
    });
    state.lastSeq = (data.seqs && data.seqs[SCOPE]) || 0;
    state.snapshotAt = parseTime(data.generated_at);
    state.snapshots += 1;
    crossCheck(data);
    markersAll();
    if (Array.isArray(data.responders)) {
      respondersAll(data.responders);
    }
  }

  function eventSeq(event) {
    return event.seqs && typeof event.seqs[SCOPE] === "number" ? event.seqs[SCOPE] : null;
  }

  function applyEvent(event, live) {
    var seq = eventSeq(event);
    if (seq !== null) {
      if (seq <= state.lastSeq) {
        return false; // the snapshot (or an earlier copy of this event) has it already
      }
      state.lastSeq = seq;
    }
    if (event.event_type === "gridmap.generation_activated") {
      // New boundaries: the map and the street list change; start afresh.
      window.location.reload();
      return false;
    }
    var payload = event.payload || {};
    if (event.event_type === "dispatch.responder_moved") {
      return responderApply(payload.responder);
    }
    if (event.event_type === "dispatch.responder_cleared") {
      if (!payload.responder || !state.responders.has(payload.responder.id)) {
        return false;
      }
      responderClear(payload.responder.id);
      return true;
    }
    var summary = payload.incident;
    if (!summary || (summary.district && summary.district !== config.district)) {
      return false;
    }
    var number = summary.number;
    var previous = state.cases.get(number) || null;
    var step = payload.transition || null;
    var at = parseTime((step && step.at) || event.occurred_at) || now();
    var c = caseFrom(summary, previous, at);
    var type = event.event_type;
    if (type === "incidents.incident_reported") {
      if (inToday(c.createdAt)) {
        state.today.reported.add(number);
        tickerAdd("reported", number, c.createdAt, null, live);
      }
    } else if (type === "incidents.incident_escalated") {
      var supervision = payload.supervision || {};
      var when = parseTime(supervision.at) || at;
      if (inToday(when)) {
        state.today.escalated.add(number);
        tickerAdd("escalated", number, when, supervision.to ? supervision.to.level : null, live);
      }
    } else if (step) {
      if (step.action === "register" && inToday(at)) {
        state.today.registered.add(number);
      } else if (step.action === "dispatch" && inToday(at)) {
        state.today.dispatched.add(number);
      } else if (step.action === "close") {
        c.closedAt = at;
        if (inToday(at)) {
          state.today.closed.add(number);
          judgeSoon();
        }
      } else if (step.action === "reopen") {
        state.today.closed.delete(number);
        state.judged.delete(number);
        state.onTime.delete(number);
      }
    }
    if (!CLOSED[c.status]) {
      c.closedAt = null;
    }
    state.cases.set(number, c);
    casesChanged();
    state.applied += 1;
    markerUpdate(c, live && type === "incidents.incident_reported");
    return true;
  }

  // ---------------------------------------------------------------------------------------------
  // Figures (the definitions of incidents.selectors.wall_*)

  function computeFigures(at) {
    var today = state.today;
    var kpis = {
      reported: today.reported.size,
      registered: today.registered.size,
      dispatched: today.dispatched.size,
      closed: today.closed.size,
      escalated: today.escalated.size,
      overdue: 0,
      on_time: 0,
      on_time_rate: null
    };
    var openCount = 0;
    var judgedClosed = 0;
    today.closed.forEach(function (number) {
      if (state.judged.has(number)) {
        judgedClosed += 1;
        if (state.onTime.has(number)) {
          kpis.on_time += 1;
        }
      }
    });
    if (judgedClosed) {
      kpis.on_time_rate = Math.round((kpis.on_time / judgedClosed) * 10000) / 10000;
    }
    var streets = {};
    var categories = {};
    var hourly = { reported: [], closed: [] };
    for (var h = 0; h < 24; h += 1) {
      hourly.reported.push(0);
      hourly.closed.push(0);
    }
    function street(code) {
      if (!streets[code]) {
        streets[code] = { reported: 0, open: 0, overdue: 0, closed: 0 };
      }
      return streets[code];
    }
    state.cases.forEach(function (c) {
      var reportedToday = today.reported.has(c.number);
      var closedToday = today.closed.has(c.number);
      var open = isOpen(c);
      var late = isOverdue(c, at);
      if (!reportedToday && !closedToday && !open) {
        return;
      }
      var row = street(c.street);
      if (reportedToday) {
        row.reported += 1;
        var code = c.category.code;
        if (!categories[code]) {
          categories[code] = { code: code, name: c.category.name, count: 0 };
        }
        categories[code].count += 1;
        if (c.createdAt !== null) {
          hourly.reported[localHour(c.createdAt)] += 1;
        }
      }
      if (open) {
        row.open += 1;
        openCount += 1;
      }
      if (late) {
        row.overdue += 1;
        kpis.overdue += 1;
      }
      if (closedToday) {
        row.closed += 1;
        if (c.closedAt !== null) {
          hourly.closed[localHour(c.closedAt)] += 1;
        }
      }
    });
    var byCategory = Object.keys(categories).map(function (code) {
      return categories[code];
    }).sort(function (a, b) {
      return b.count - a.count || (a.code < b.code ? -1 : a.code > b.code ? 1 : 0);
    }).slice(0, config.topCategories);
    var known = {};
    var byStreet = state.streets.map(function (s) {
      known[s.code] = true;
      var row = streets[s.code] || { reported: 0, open: 0, overdue: 0, closed: 0 };
      return { code: s.code, reported: row.reported, open: row.open, overdue: row.overdue,
        closed: row.closed };
    });
    Object.keys(streets).sort().forEach(function (code) {
      if (!known[code]) {
        var row = streets[code];
        byStreet.push({ code: code, reported: row.reported, open: row.open,
          overdue: row.overdue, closed: row.closed });
      }
    });
    return { kpis: kpis, by_street: byStreet, by_category: byCategory, hourly: hourly,
      open: openCount };
  }

  // After a snapshot: do this page's figures, computed from the model, equal the server's?
  function crossCheck(data) {
    var mine = computeFigures(parseTime(data.generated_at));
    var theirs = {
      kpis: data.kpis,
      by_street: data.by_street,
      by_category: data.by_category,
      hourly: data.hourly
    };
    var found = [];
    Object.keys(theirs).forEach(function (key) {
      var a = JSON.stringify(normaliseForCheck(key, mine[key]));
      var b = JSON.stringify(normaliseForCheck(key, theirs[key]));
      if (a !== b) {
        found.push({ figure: key, page: a, server: b });
      }
    });
    state.mismatches = found;
    if (found.length && window.console) {
      window.console.warn("wall: figures differ from the server's", found);
    }
  }

  function normaliseForCheck(key, value) {
    if (key === "kpis") {
      return ["reported", "registered", "dispatched", "closed", "on_time", "on_time_rate",
        "overdue", "escalated"].map(function (k) {
        return [k, value[k]];
      });
    }
    if (key === "by_street") {
      return value.map(function (r) {
        return [r.code, r.reported, r.open, r.overdue, r.closed];
      });
    }
    if (key === "by_category") {
      return value.map(function (r) {
        return [r.code, r.name, r.count];
      });
    }
    return value;
  }

  // ---------------------------------------------------------------------------------------------
  // Rendering: KPI tiles, streets table, ticker, overdue list, charts

  var lastKpis = {};
  var lastRateKey = null;

  function renderKpis(figures) {
    var kpis = figures.kpis;
    var counted = ["reported", "registered", "dispatched", "closed", "escalated", "overdue"];
    counted.forEach(function (key) {
      var node = $("kpi-" + key);
      var text = String(kpis[key]);
      if (node.textContent !== text) {
        node.textContent = text;
        if (lastKpis[key] !== undefined && kpis[key] > lastKpis[key]) {
          node.classList.remove("is-bumped");
          void node.offsetWidth; // restart the animation
          node.classList.add("is-bumped");
        }
      }
      lastKpis[key] = kpis[key];
    });
    var rate = $("kpi-on_time_rate");
    var rateKey = kpis.on_time_rate + "|" + kpis.on_time + "|" + kpis.closed;
    if (rateKey === lastRateKey) {
      return;
    }
    lastRateKey = rateKey;
    rate.textContent = "";
    if (kpis.on_time_rate === null) {
      rate.textContent = "—";
      rate.title = T.noData;
    } else {
      var percent = kpis.on_time_rate * 100;
      rate.appendChild(document.createTextNode(percent >= 99.95 ? "100" : percent.toFixed(1)));
      rate.appendChild(el("small", null, "%"));
      rate.title = kpis.on_time + " / " + kpis.closed;
    }
  }

  var streetsKey = "";

  function renderStreets(figures) {
    var key = JSON.stringify(figures.by_street) + "|" + state.streets.length;
    if (key === streetsKey) {
      return;
    }
    streetsKey = key;
    var body = $("street-rows");
    body.textContent = "";
    figures.by_street.forEach(function (row) {
      var tr = el("tr");
      tr.dataset.street = row.code;
      var name = el("td");
      var label = el("span", "street-name");
      var swatch = el("span", "street-swatch");
      swatch.style.background = streetColour(row.code);
      label.appendChild(swatch);
      label.appendChild(el("span", null, streetName(row.code)));
      name.appendChild(label);
      tr.appendChild(name);
      [["reported", ""], ["open", ""], ["overdue", "is-overdue"], ["closed", "is-closed"]]
        .forEach(function (col) {
          var value = row[col[0]];
          var td = el("td", value === 0 ? "is-zero" : col[1], String(value));
          td.dataset.figure = col[0];
          tr.appendChild(td);
        });
      body.appendChild(tr);
    });
  }

  // --- lists that show what fits: the ticker and the overdue list ---
  //
  // A wall is never scrolled: a list shows as many rows as fit its panel, top down. Building a
  // row per case (thousands during a surge) and then removing the overflow one row at a time,
  // each removal measured (a layout per row), froze the wall for seconds every second. So a
  // list builds at most the rows that can fit (estimated from the height of the rows measured
  // last) plus one, finds the first row that overflows with a single layout, and removes it and
  // those after it in one go. Rows are kept by key: a row already shown is reused as it is (its
  // animation goes on) and only its changing text (a countdown) is refreshed in place; while the
  // rows to show are those shown, nothing is built, moved or measured.

  function fitList(list, keyOf, build, update) {
    var fit = {
      list: list,
      keyOf: keyOf,
      build: build,
      update: update,
      nodes: [],
      keys: [],
      spare: new Map(), // rows cut off last time (the next drawing may fit them)
      capacity: 0, // rows that fit, as last measured (0: not yet known)
      full: false, // the list was cut: rows were left out for want of room
      stale: true // the panel changed size: measure again
    };
    fits.push(fit);
    if (window.ResizeObserver) {
      new ResizeObserver(function () {
        fit.stale = true;
        fitsChanged();
      }).observe(list);
    }
    return fit;
  }

  var fits = [];
  var fitsTimer = null;

  // A panel changed size (the window, a font that arrived, a line shown under the list): draw
  // the lists again, once, after the current work.
  function fitsChanged() {
    fits.forEach(function (fit) {
      fit.stale = true;
    });
    if (fitsTimer === null && state.ready) {
      fitsTimer = window.setTimeout(function () {
        fitsTimer = null;
        renderResponses();
        renderTicker();
        renderOverdue();
      }, 0);
    }
  }

  // The first of `nodes` whose bottom is below the list's (-1: they all fit), and how many more
  // rows of the same height would fit after the last. Reads only: one layout at most.
  function fitMeasure(list, nodes) {
    var box = list.getBoundingClientRect();
    var bottom = box.bottom + 1;
    var top = box.top;
    var last = top;
    for (var i = 0; i < nodes.length; i += 1) {
      var rect = nodes[i].getBoundingClientRect();
      if (rect.bottom > bottom) {
        return { cut: i, room: 0 };
      }
      last = rect.bottom;
    }
    var rowHeight = nodes.length ? (last - top) / nodes.length : 0;
    var room = rowHeight > 0 ? Math.floor((bottom - last) / rowHeight) : 0;
    return { cut: -1, room: room };
  }

  // Show `items` (in order) in the list, as many as fit; returns how many are shown.
  function fitRender(fit, items) {
    var n = items.length;
    var keys = fit.keys;
    var i;
    var same = !fit.stale && (keys.length === n || (fit.full && keys.length < n));
    for (i = 0; same && i < keys.length; i += 1) {
      same = fit.keyOf(items[i]) === keys[i];
    }
    if (same) {
      for (i = 0; i < keys.length; i += 1) {
        fit.update(fit.nodes[i], items[i]);
      }
      return keys.length;
    }
    var list = fit.list;
    var old = new Map();
    for (i = 0; i < keys.length; i += 1) {
      old.set(keys[i], fit.nodes[i]);
    }
    var nodes = [];
    var newKeys = [];
    var placed = 0;
    var place = function (upto) {
      for (; placed < upto; placed += 1) {
        var key = fit.keyOf(items[placed]);
        var node = old.get(key);
        if (node) {
          old.delete(key);
        } else if (fit.spare.has(key)) {
          node = fit.spare.get(key);
          fit.spare.delete(key);
        } else {
          node = fit.build(items[placed]);
        }
        fit.update(node, items[placed]);
        nodes.push(node);
        newKeys.push(key);
      }
    };
    // Rows that can fit, and one more to see where the panel ends.
    place(Math.min(n, fit.capacity + 1));
    old.forEach(function (node) {
      if (node.parentNode === list) {
        list.removeChild(node);
      }
    });
    var arrange = function (from) {
      for (var j = from; j < nodes.length; j += 1) {
        var there = list.children[j] || null;
        if (there !== nodes[j]) {
          list.insertBefore(nodes[j], there);
        }
      }
      while (list.children.length > nodes.length) {
        list.removeChild(list.lastElementChild);
      }
    };
    arrange(0);
    var measured = n ? fitMeasure(list, nodes) : { cut: -1, room: 0 };
    // Every row fitted and rows are left: the estimate was short (the first drawing, a larger
    // panel); add as many as the measured rows say fit, and look again.
    while (measured.cut < 0 && placed < n) {
      var from = nodes.length;
      place(Math.min(n, placed + measured.room + 1));
      arrange(from);
      measured = fitMeasure(list, nodes);
    }
    fit.spare = new Map();
    if (measured.cut >= 0) {
      for (i = nodes.length - 1; i >= measured.cut; i -= 1) {
        list.removeChild(nodes[i]);
        fit.spare.set(newKeys[i], nodes[i]);
      }
      nodes.length = measured.cut;
      newKeys.length = measured.cut;
      fit.capacity = measured.cut;
    } else if (n) {
      fit.capacity = Math.max(fit.capacity, nodes.length + measured.room);
    }
    fit.nodes = nodes;
    fit.keys = newKeys;
    fit.full = nodes.length < n;
    fit.stale = false;
    return nodes.length;
  }

  // The line under a row's title: where the case is (its street, then its community, and what
  // `after` adds: where an escalation sent it), then its number. The number is what an operator
  // reads out on the radio and `after` is short, so neither is cut; the community says where to
  // send help, so when the line is too long the street gives way first (it ends in "…"), the
  // community only when the street has.
  function placeAndNumber(className, c, after) {
    var line = el("span", className);
    var community = state.communities[c.community] || c.community;
    if (c.street) {
      line.appendChild(el("span", "row-street", streetName(c.street)));
      line.appendChild(el("span", "row-sep", "·"));
    }
    if (community) {
      line.appendChild(el("span", "row-community", community));
    }
    if (after) {
      line.appendChild(el("span", "row-after", after));
    }
    if (community || after) {
      line.appendChild(el("span", "row-sep", "·"));
    }
    line.appendChild(el("span", "row-number", c.number));
    return line;
  }

  // --- the ticker ---

  var tickerFit = null;

  function tickerKey(item) {
    var c = state.cases.get(item.number);
    return item.key + "|" + (item.to || "") + "|" + categoryName(c.category) + "|" +
      (c.severity || "") + "|" + c.street + "|" + c.community;
  }

  function tickerRow(item) {
    var c = state.cases.get(item.number);
    var li = el("li", item.fresh ? "is-fresh" : "");
    li.dataset.number = item.number;
    li.dataset.kind = item.kind;
    li.appendChild(el("span", "ticker-time", clockText(item.at)));
    var badge;
    if (item.kind === "escalated") {
      badge = el("span", "badge badge-escalated", T.escalated);
    } else if (c.severity) {
      badge = el("span", "badge badge-emergency",
        T.emergency + " " + (ROMAN[c.severity] || c.severity));
    } else {
      badge = el("span", "badge badge-reported", T.reported);
    }
    li.appendChild(badge);
    li.appendChild(el("span", "ticker-what", categoryName(c.category)));
    var to = "";
    if (item.kind === "escalated" && item.to && T.ownerLevels[item.to]) {
      to = "→ " + T.ownerLevels[item.to];
    }
    li.appendChild(placeAndNumber("ticker-where", c, to));
    return li;
  }

  function renderTicker() {
    if (tickerFit === null) {
      tickerFit = fitList($("ticker-list"), tickerKey, tickerRow, function () {});
    }
    var items = state.ticker.filter(function (item) {
      return state.cases.has(item.number);
    });
    fitRender(tickerFit, items);
    items.forEach(function (item) {
      item.fresh = false; // it slides in once, when first shown
    });
    $("ticker-empty").hidden = items.length > 0;
    $("ticker-empty").textContent = T.noTicker;
  }

  // --- the overdue list: overdue cases first (the longest overdue on top), then the clocks
  // running out within SOON_MS (or warned, 预警), the soonest first ---

  var overdueFit = null;
  var overdueAt = 0;

  function overdueKey(c) {
    return c.number + "|" + (c.deadline < overdueAt ? "late" : "soon") + "|" + (c.stage || "") +
      "|" + categoryName(c.category) + "|" + (c.severity || "") + "|" + c.escalations + "|" +
      c.street + "|" + c.community;
  }

  function overdueRow(c) {
    var isLate = c.deadline < overdueAt;
    var li = el("li", isLate ? "is-late" : "is-soon");
    li.dataset.number = c.number;
    var countdown = el("span", "countdown");
    countdown.appendChild(el("span", "countdown-label",
      (T.stages[c.stage] || "") + " " + (isLate ? T.late : T.left)));
    var clock = document.createTextNode("");
    countdown.appendChild(clock);
    li.cityopsClock = clock;
    li.appendChild(countdown);
    var what = el("span", "overdue-what");
    what.appendChild(el("span", null, categoryName(c.category)));
    if (c.severity) {
      what.appendChild(el("span", "badge badge-emergency", ROMAN[c.severity] || c.severity));
    }
    if (c.escalations) {
      what.appendChild(el("span", "badge badge-escalated",
        format(T.escalations, { n: c.escalations })));
    }
    li.appendChild(what);
    li.appendChild(placeAndNumber("overdue-where", c));
    return li;
  }

  // The countdown, the only part of a row that changes by the second: its text, in place.
  function overdueTick(li, c) {
    var isLate = c.deadline < overdueAt;
    var text = (isLate ? "+" : "") + duration(Math.abs(c.deadline - overdueAt));
    if (li.cityopsClock.nodeValue !== text) {
      li.cityopsClock.nodeValue = text;
    }
  }

  function overdueRows(at) {
    var index = byDeadline();
    var rows = [];
    var late = 0;
    for (var i = 0; i < index.length; i += 1) {
      var c = index[i];
      if (c.deadline < at) {
        rows.push(c); // the index is by deadline: the overdue come first, longest overdue on top
        late += 1;
      } else if (c.deadline - at <= SOON_MS || c.warned) {
        rows.push(c);
      }
    }
    return { rows: rows, late: late, soon: rows.length - late };
  }

  var overdueCountsKey = "";

  function renderOverdue() {
    if (overdueFit === null) {
      overdueFit = fitList($("overdue-list"), overdueKey, overdueRow, overdueTick);
    }
    overdueAt = now();
    var found = overdueRows(overdueAt);
    var rows = found.rows;
    var countsKey = found.late + "|" + found.soon;
    if (countsKey !== overdueCountsKey) {
      overdueCountsKey = countsKey;
      var counts = $("overdue-counts");
      counts.textContent = "";
      counts.appendChild(el("span", "overdue-count-late",
        format(T.overdueCount, { n: found.late })));
      counts.appendChild(el("span", "overdue-count-soon",
        format(T.dueSoonCount, { n: found.soon })));
    }
    // "另有 N 件" keeps its line under the list even when there are no more (invisible then):
    // the list's room does not depend on what it shows.
    var more = $("overdue-more");
    more.hidden = false;
    var shown = fitRender(overdueFit, rows);
    var moreText = format(T.more, { n: rows.length - shown });
    if (more.textContent !== moreText) {
      more.textContent = moreText;
    }
    more.classList.toggle("is-none", shown === rows.length);
    $("overdue-empty").hidden = rows.length > 0;
    if ($("overdue-empty").textContent !== T.noOverdue) {
      $("overdue-empty").textContent = T.noOverdue;
    }
  }

  // --- the responses panel (应急响应): the open cases with departments called out beside the
  // one handling them (a response plan, or 增派协办 by hand), the gravest first, then the
  // longest running; for each, the plan, who leads, which of those called out have confirmed
  // they are on the scene (确认到场), and how long the response has run. The panel shows only
  // while there is a response: on a quiet day the ticker keeps the whole column. ---

  var responseFit = null;
  var responseTickAt = 0;

  function responseRows() {
    if (responseIndex === null) {
      responseIndex = [];
      state.cases.forEach(function (c) {
        if (inResponse(c)) {
          responseIndex.push(c);
        }
      });
      responseIndex.sort(function (a, b) {
        return (SEVERITY_RANK[a.severity] || 9) - (SEVERITY_RANK[b.severity] || 9) ||
          (a.responseAt || 0) - (b.responseAt || 0) ||
          (a.number < b.number ? -1 : a.number > b.number ? 1 : 0);
      });
    }
    return responseIndex;
  }

  function departmentName(code) {
    return RESPONSE_NAMES.departments[code] || code;
  }

  function responseTitle(c) {
    var plan = c.plan && RESPONSE_NAMES.plans[c.plan];
    if (plan) {
      return plan.name;
    }
    return categoryName(c.category) + " · " + T.responseByHand;
  }

  function responseKey(c) {
    return [c.number, c.plan || "", c.severity || "", c.department || "", c.supports.join(","),
      c.arrived.join(","), responseTitle(c), c.street, c.community].join("|");
  }

  function responseRow(c) {
    var li = el("li", "sev-" + (c.severity || "none"));
    li.dataset.number = c.number;
    var head = el("span", "response-head");
    if (c.severity) {
      head.appendChild(el("span", "response-level", ROMAN[c.severity] || c.severity));
    }
    head.appendChild(el("span", "response-title", responseTitle(c)));
    li.appendChild(head);
    var arrivedCount = c.supports.filter(function (code) {
      return c.arrived.indexOf(code) >= 0;
    }).length;
    var tally = el("span", "response-tally",
      format(T.responseArrived, { arrived: arrivedCount, called: c.supports.length }));
    tally.classList.toggle("is-all", arrivedCount === c.supports.length);
    li.appendChild(tally);
    var departments = el("span", "response-departments");
    if (c.department) {
      var lead = el("span", "dept dept-lead", departmentName(c.department));
      lead.appendChild(el("small", null, T.responseLead));
      departments.appendChild(lead);
    }
    c.supports.forEach(function (code) {
      var here = c.arrived.indexOf(code) >= 0;
      var chip = el("span", "dept " + (here ? "is-arrived" : "is-pending"), departmentName(code));
      chip.title = here ? T.responseArrivedTitle : T.responsePendingTitle;
      departments.appendChild(chip);
    });
    li.appendChild(departments);
    li.appendChild(placeAndNumber("response-where", c));
    var since = el("span", "response-since");
    since.appendChild(el("span", "response-since-label", T.responseSince));
    var clock = document.createTextNode("");
    since.appendChild(clock);
    li.cityopsClock = clock;
    li.appendChild(since);
    return li;
  }

  function responseTick(li, c) {
    var text = c.responseAt ? duration(responseTickAt - c.responseAt) : "";
    if (li.cityopsClock.nodeValue !== text) {
      li.cityopsClock.nodeValue = text;
    }
  }

  function renderResponses() {
    var rows = responseRows();
    var panel = $("panel-responses");
    if (panel.hidden !== (rows.length === 0)) {
      panel.hidden = rows.length === 0; // the ticker below is resized: its rows are fitted again
    }
    if (!rows.length) {
      return;
    }
    if (responseFit === null) {
      responseFit = fitList($("responses-list"), responseKey, responseRow, responseTick);
    }
    responseTickAt = now();
    var count = format(T.responseCount, { n: rows.length });
    if ($("responses-count").textContent !== count) {
      $("responses-count").textContent = count;
    }
    var shown = fitRender(responseFit, rows);
    var more = $("responses-more");
    more.hidden = shown === rows.length;
    more.textContent = format(T.responseMore, { n: rows.length - shown });
  }

  // --- charts (ECharts) ---

  var charts = {};

  function chartText(size) {
    return {
      color: COLOURS.ink,
      fontSize: Math.round(size * rem()),
      fontFamily: "Noto Sans CJK SC, sans-serif"
    };
  }

  function initCharts() {
    if (!window.echarts) {
      return;
    }
    ["category", "street", "hourly"].forEach(function (name) {
      var node = $("chart-" + name);
      charts[name] = window.echarts.init(node, null, { renderer: "canvas" });
    });
    if (window.ResizeObserver) {
      var observer = new ResizeObserver(function () {
        Object.keys(charts).forEach(function (name) {
          charts[name].resize();
        });
        renderCharts(state.figures, true);
      });
      Object.keys(charts).forEach(function (name) {
        observer.observe($("chart-" + name));
      });
    }
  }

  // A category's name beside its bar, whole (never cut short with "…"): on one line in the
  // chart's type when it fits CATEGORY_LABEL_REM, else on one line in a smaller type (down to
  // the smallest of LABEL_SIZES), else — a Chinese name longer than the catalogue's longest,
  // the longer English ones — on two lines in that type, split where the halves are most even,
  // outside brackets if it can be: a name in words (English) between two words, a Chinese one
  // never before a closing bracket or a pause mark.
  var CATEGORY_LABEL_REM = 12.5;
  var LABEL_SIZES = [["s1", 0.96], ["s2", 0.88]];
  var measureContext = null;

  function textWidth(text, size) {
    if (measureContext === null) {
      measureContext = document.createElement("canvas").getContext("2d");
    }
    var style = chartText(size);
    measureContext.font = style.fontSize + "px " + style.fontFamily;
    return measureContext.measureText(text).width;
  }

  function categoryLabel(name) {
    var room = CATEGORY_LABEL_REM * rem();
    if (/[{}|]/.test(name) || textWidth(name, 1.05) <= room) {
      return name;
    }
    for (var i = 0; i < LABEL_SIZES.length; i += 1) {
      if (textWidth(name, LABEL_SIZES[i][1]) <= room) {
        return "{" + LABEL_SIZES[i][0] + "|" + name + "}";
      }
    }
    var small = LABEL_SIZES[LABEL_SIZES.length - 1][1];
    var words = name.indexOf(" ") > 0;
    var best = -1;
    var bestCost = Infinity;
    var depth = 0;
    for (var k = 1; k < name.length; k += 1) {
      var before = name.charAt(k - 1);
      depth += "（(".indexOf(before) >= 0 ? 1 : "）)".indexOf(before) >= 0 ? -1 : 0;
      if (words ? before !== " " || name.charAt(k) === " "
        : "）)、，,。：:；;".indexOf(name.charAt(k)) >= 0 || "（(".indexOf(before) >= 0) {
        continue;
      }
      var cost = Math.abs(textWidth(name.slice(0, k).trim(), small) -
        textWidth(name.slice(k), small)) + (depth > 0 ? room : 0);
      if (cost < bestCost) {
        bestCost = cost;
        best = k;
      }
    }
    if (best < 0) {
      return "{" + LABEL_SIZES[LABEL_SIZES.length - 1][0] + "|" + name + "}";
    }
    return "{two|" + name.slice(0, best).trim() + "}\n{two|" + name.slice(best) + "}";
  }

  function categoryRich() {
    var rich = { two: Object.assign(chartText(LABEL_SIZES[LABEL_SIZES.length - 1][1]),
      { lineHeight: Math.round(0.95 * rem()) }) };
    LABEL_SIZES.forEach(function (size) {
      rich[size[0]] = chartText(size[1]);
    });
    return rich;
  }

  function axisLabel(size) {
    var text = chartText(size);
    text.color = COLOURS.axis;
    return text;
  }

  var chartsKey = "";

  function renderCharts(figures, rebuild) {
    if (!figures || !charts.category) {
      return;
    }
    var key = JSON.stringify([figures.by_category, figures.by_street, figures.hourly,
      localHour(now())]);
    if (!rebuild && key === chartsKey) {
      return; // nothing new to draw
    }
    chartsKey = key;
    var r = rem();
    var animation = !rebuild;
    // Updates merge into the drawn chart (bars grow, nothing flickers); a resize redraws.
    var replace = Boolean(rebuild);
    var cats = figures.by_category.slice().reverse();
    $("chart-category-empty").hidden = cats.length > 0;
    $("chart-category-empty").textContent = T.noData;
    charts.category.setOption({
      animation: animation,
      grid: { left: 0.4 * r, right: 3.2 * r, top: 0.2 * r, bottom: 0.2 * r, containLabel: true },
      xAxis: { type: "value", minInterval: 1, show: false },
      yAxis: {
        type: "category",
        data: cats.map(categoryName),
        axisLine: { show: false },
        axisTick: { show: false },
        axisLabel: Object.assign(axisLabel(1.05), {
          color: COLOURS.ink, width: CATEGORY_LABEL_REM * r, overflow: "truncate", interval: 0,
          formatter: categoryLabel,
          rich: categoryRich()
        })
      },
      series: [{
        type: "bar",
        data: cats.map(function (c) { return c.count; }),
        barWidth: "58%",
        itemStyle: {
          borderRadius: [0, 0.3 * r, 0.3 * r, 0],
          color: new window.echarts.graphic.LinearGradient(0, 0, 1, 0, [
            { offset: 0, color: "rgba(56, 189, 248, 0.35)" },
            { offset: 1, color: "#38bdf8" }
          ])
        },
        label: Object.assign(chartText(1.05), { show: true, position: "right",
          fontWeight: "bold" })
      }]
    }, replace);

    var streets = figures.by_street;
    charts.street.setOption({
      animation: animation,
      legend: {
        top: 0, right: 0, itemWidth: 0.9 * r, itemHeight: 0.9 * r, itemGap: 1.2 * r,
        textStyle: axisLabel(0.95)
      },
      grid: { left: 0.4 * r, right: 0.6 * r, top: 2 * r, bottom: 0.2 * r, containLabel: true },
      xAxis: {
        type: "category",
        data: streets.map(function (s) { return streetName(s.code).replace(/街道$/, ""); }),
        axisLine: { lineStyle: { color: COLOURS.grid } },
        axisTick: { show: false },
        axisLabel: Object.assign(axisLabel(1), { color: COLOURS.ink, interval: 0 })
      },
      yAxis: {
        type: "value", minInterval: 1,
        splitLine: { lineStyle: { color: COLOURS.grid } },
        axisLabel: axisLabel(0.9)
      },
      series: [
        {
          name: T.chartOpen, type: "bar", stack: "open", barWidth: "34%",
          data: streets.map(function (s) { return s.open - s.overdue; }),
          itemStyle: { color: COLOURS.open }
        },
        {
          name: T.chartOverdue, type: "bar", stack: "open",
          data: streets.map(function (s) { return s.overdue; }),
          itemStyle: { color: COLOURS.overdue, borderRadius: [0.25 * r, 0.25 * r, 0, 0] }
        },
        {
          name: T.chartClosed, type: "bar", barWidth: "22%",
          data: streets.map(function (s) { return s.closed; }),
          itemStyle: { color: COLOURS.closed, borderRadius: [0.25 * r, 0.25 * r, 0, 0] }
        }
      ]
    }, replace);

    var currentHour = localHour(now());
    var hours = [];
    for (var h = 0; h < 24; h += 1) {
      hours.push(format(T.hour, { h: h }));
    }
    function upToNow(values) {
      return values.map(function (v, i) { return i <= currentHour ? v : null; });
    }
    charts.hourly.setOption({
      animation: animation,
      legend: {
        top: 0, right: 0, itemWidth: 0.9 * r, itemHeight: 0.9 * r, itemGap: 1.2 * r,
        textStyle: axisLabel(0.95)
      },
      grid: { left: 0.4 * r, right: 0.6 * r, top: 2 * r, bottom: 0.2 * r, containLabel: true },
      xAxis: {
        type: "category",
        data: hours,
        axisLine: { lineStyle: { color: COLOURS.grid } },
        axisTick: { show: false },
        axisLabel: Object.assign(axisLabel(0.9), { interval: 2 })
      },
      yAxis: {
        type: "value", minInterval: 1,
        splitLine: { lineStyle: { color: COLOURS.grid } },
        axisLabel: axisLabel(0.9)
      },
      series: [
        {
          name: T.chartReported, type: "bar", barWidth: "55%",
          data: upToNow(figures.hourly.reported),
          itemStyle: { color: COLOURS.reported, borderRadius: [0.2 * r, 0.2 * r, 0, 0] }
        },
        {
          name: T.chartClosed, type: "line", smooth: true, symbolSize: 0.5 * r,
          data: upToNow(figures.hourly.closed),
          lineStyle: { width: 0.2 * r, color: COLOURS.closed },
          itemStyle: { color: COLOURS.closed }
        }
      ]
    }, replace);
  }

  // ---------------------------------------------------------------------------------------------
  // The map: the district's own boundaries as the base, cases as markers, clustered when dense

  var cluster = null; // ordinary cases, clustered where dense
  var emergencyCluster = null; // emergencies (突发) among themselves, while there are many
  var singles = null; // never clustered: emergencies while few, a case in its first seconds
  var markers = new Map();
  state.hasMarker = function (number) {
    return markers.has(number);
  };

  function initMap() {
    var map = L.map("wall-map", {
      zoomControl: false,
      attributionControl: Boolean(config.tileUrl),
      zoomSnap: 0.1,
      minZoom: 8,
      maxZoom: 18,
      boxZoom: false,
      keyboard: false
    });
    state.map = map;
    map.setView([22.68, 114.035], 12);
    map.createPane("streets").style.zIndex = "350";
    map.createPane("communities").style.zIndex = "360";
    map.createPane("district").style.zIndex = "370";
    // Emergencies (their diamonds and their clusters) over the other cases and their clusters.
    map.createPane("emergencies").style.zIndex = "610";
    // Street names over the cases and the emergencies (Leaflet's marker pane is 600): during a
    // surge clusters cover most of the district, and a name under them could not be read. A
    // name takes no clicks (they go through to the cluster under it), and it is moved off the
    // clusters' counts where there is room (declutterLabels).
    var labelPane = map.createPane("labels");
    labelPane.style.zIndex = "615";
    labelPane.style.pointerEvents = "none";
    // Responders: their names under the cases (a label never hides a case), the person glyph
    // over them (a case dot never hides where someone is; there are few responders).
    map.createPane("responderLabels").style.zIndex = "590";
    map.createPane("responders").style.zIndex = "620";
    if (config.tileUrl) {
      L.tileLayer(config.tileUrl, { maxZoom: 19 }).addTo(map);
    }
    var r = rem();
    cluster = L.markerClusterGroup({
      maxClusterRadius: Math.round(2.6 * r),
      disableClusteringAtZoom: 16,
      showCoverageOnHover: false,
      spiderfyOnMaxZoom: false,
      zoomToBoundsOnClick: false,
      animate: true,
      iconCreateFunction: clusterIcon
    });
    map.addLayer(cluster);
    emergencyCluster = L.markerClusterGroup({
      // Wider than the others': during a surge a few large diamonds, not a carpet of them.
      maxClusterRadius: Math.round(5 * r),
      disableClusteringAtZoom: 16,
      showCoverageOnHover: false,
      spiderfyOnMaxZoom: false,
      zoomToBoundsOnClick: false,
      animate: true,
      clusterPane: "emergencies",
      iconCreateFunction: emergencyClusterIcon
    });
    map.addLayer(emergencyCluster);
    cluster.on("animationend", declutterLabelsSoon);
    emergencyCluster.on("animationend", declutterLabelsSoon);
    singles = L.layerGroup().addTo(map);
    responderLayer = L.layerGroup().addTo(map);
    loadBoundaries(map);
  }

  function loadLevel(level) {
    var url = config.regionsUrl + "?level=" + encodeURIComponent(level);
    if (config.generation !== null) {
      url += "&generation=" + encodeURIComponent(config.generation);
    }
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) {
          throw new Error(level + ": HTTP " + response.status);
        }
        return response.json();
      });
  }

  function inDistrict(feature) {
    var code = feature.properties.code || "";
    return code.indexOf(config.district) === 0;
  }

  function loadBoundaries(map) {
    Promise.all([loadLevel("district"), loadLevel("street"), loadLevel("community")])
      .then(function (levels) {
        var district = levels[0].features.filter(inDistrict);
        var streets = levels[1].features.filter(inDistrict);
        var communities = levels[2].features.filter(inDistrict);
        var colourOf = {};
        streets.forEach(function (f) {
          colourOf[f.properties.code] = streetColour(f.properties.code);
        });
        L.geoJSON({ type: "FeatureCollection", features: streets }, {
          pane: "streets",
          interactive: false,
          style: function (f) {
            return {
              color: "#5b8fc7", weight: 1.6, opacity: 0.9,
              fillColor: colourOf[f.properties.code], fillOpacity: config.tileUrl ? 0.12 : 0.16
            };
          }
        }).addTo(map);
        L.geoJSON({ type: "FeatureCollection", features: communities }, {
          pane: "communities",
          interactive: false,
          style: { color: "#3b6a99", weight: 0.8, opacity: 0.55, fill: false, dashArray: "3 4" }
        }).addTo(map);
        var outline = L.geoJSON({ type: "FeatureCollection", features: district }, {
          pane: "district",
          interactive: false,
          style: { color: "#38bdf8", weight: 3, opacity: 0.95, fill: false }
        }).addTo(map);
        state.districtBounds = outline.getBounds().isValid() ? outline.getBounds() : null;
        drawStreetLabels(map);
        fitDistrict();
        declutterLabels();
        state.boundaries = true;
      })
      .catch(function (error) {
        state.boundaryError = String(error);
        window.setTimeout(function () {
          loadBoundaries(map);
        }, 15000);
      });
  }

  var labelLayer = null;
  var labelTooltips = [];

  function drawStreetLabels(map) {
    if (labelLayer) {
      labelLayer.remove();
    }
    labelLayer = L.layerGroup().addTo(map);
    labelTooltips = [];
    state.streets.forEach(function (s) {
      if (!s.label) {
        return;
      }
      var tooltip = L.tooltip({
        permanent: true, direction: "center", className: "wall-street-label", interactive: false,
        opacity: 1, pane: "labels"
      }).setLatLng([s.label[1], s.label[0]]).setContent(el("span", null, s.name));
      tooltip.addTo(labelLayer);
      labelTooltips.push(tooltip);
    });
    map.on("zoomend moveend", declutterLabels);
  }

  // Street labels sit at each street's pole of inaccessibility; two neighbours' labels may still
  // touch on a small map, and during a surge clusters cover much of the district. A name is
  // drawn over the cases (so a cluster never hides it), so each is moved up or down by its
  // height to where it overlaps no name placed before it and covers least of the cases' counts
  // and levels (the middle of each marker). It stays where it is unless another place is
  // clearly better, so a name does not hop about as cases come in.
  function declutterLabels() {
    declutterTooltips(labelTooltips, markerMiddles());
    declutterResponders();
  }

  // The middle of every case marker and cluster on the map (where its count or level is drawn).
  function markerMiddles() {
    if (!state.map) {
      return [];
    }
    var boxes = [];
    ["markerPane", "emergencies"].forEach(function (name) {
      var icons = state.map.getPane(name).querySelectorAll(".leaflet-marker-icon");
      for (var i = 0; i < icons.length; i += 1) {
        var r = icons[i].getBoundingClientRect();
        var dx = r.width * 0.2;
        var dy = r.height * 0.2;
        boxes.push({ left: r.left + dx, right: r.right - dx, top: r.top + dy,
          bottom: r.bottom - dy });
      }
    });
    return boxes;
  }

  function overlap(a, b) {
    var w = Math.min(a.right, b.right) - Math.max(a.left, b.left);
    var h = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
    return w > 0 && h > 0 ? w * h : 0;
  }

  // Without `covers` (responders' names) a label takes the first free place: where it is, else
  // up, down, further up, further down.
  function declutterTooltips(tooltips, covers) {
    var placed = [];
    var offsets = [0, -1.1, 1.1, -2.2, 2.2];
    tooltips.forEach(function (tooltip) {
      var node = tooltip.getElement();
      if (!node) {
        return;
      }
      node.style.marginTop = "";
      var r = node.getBoundingClientRect();
      var best = -1;
      var bestCover = Infinity;
      var keptCover = Infinity;
      var boxes = offsets.map(function (offset) {
        var dy = offset * r.height;
        return {
          left: r.left - 4, right: r.right + 4, top: r.top + dy - 2, bottom: r.bottom + dy + 2
        };
      });
      for (var k = 0; k < offsets.length; k += 1) {
        var box = boxes[k];
        var taken = placed.some(function (p) {
          return overlap(box, p) > 0;
        });
        if (taken) {
          continue;
        }
        var cover = 0;
        (covers || []).forEach(function (c) {
          cover += overlap(box, c);
        });
        if (cover < bestCover) {
          best = k;
          bestCover = cover;
        }
        if (k === node.cityopsOffset) {
          keptCover = cover;
        }
        if (!covers || cover === 0) {
          break;
        }
      }
      if (covers && keptCover <= bestCover + 0.1 * r.width * r.height) {
        best = node.cityopsOffset; // not clearly better elsewhere: stay
      }
      if (best < 0) {
        node.cityopsOffset = undefined;
        placed.push({ left: r.left, right: r.right, top: r.top, bottom: r.bottom });
        return;
      }
      node.cityopsOffset = best;
      node.style.marginTop = offsets[best] ? offsets[best] * r.height + "px" : "";
      placed.push(boxes[best]);
    });
  }

  // After the markers changed (a batch of cases, clusters redrawn after a zoom): place the
  // names again, once, when the clusters have settled.
  var labelsTimer = null;

  function declutterLabelsSoon() {
    if (labelsTimer === null) {
      labelsTimer = window.setTimeout(function () {
        labelsTimer = null;
        declutterLabels();
      }, 400);
    }
  }

  function fitDistrict() {
    if (state.map && state.districtBounds) {
      state.map.invalidateSize();
      var r = rem();
      state.map.fitBounds(state.districtBounds, {
        paddingTopLeft: [1.2 * r, 3.6 * r],
        paddingBottomRight: [1.2 * r, 1.2 * r]
      });
    }
  }

  function markerGroup(c) {
    return STATUS_GROUP[c.status] || null;
  }

  function shownOnMap(c) {
    if (!c.location || c.location.length !== 2) {
      return false;
    }
    if (isOpen(c)) {
      return true;
    }
    return Boolean(CLOSED[c.status]) && state.today.closed.has(c.number);
  }

  // A case with departments called out (a response running: the responses panel's) is ringed.
  function inResponse(c) {
    return c.supports.length > 0 && isOpen(c);
  }

  function markerKey(c, at) {
    return [markerGroup(c), c.severity || "", isOverdue(c, at) ? 1 : 0, inResponse(c) ? 1 : 0]
      .join("|");
  }

  function markerIcon(c, at, fresh) {
    var r = rem();
    var classes = ["mk", "mk-" + markerGroup(c)];
    if (isOverdue(c, at)) {
      classes.push("mk-overdue");
    }
    if (inResponse(c)) {
      classes.push("mk-response");
    }
    var html;
    var size = 1.1;
    if (c.severity) {
      classes.push("mk-emergency", "mk-sev-" + c.severity);
      html = '<span class="' + classes.join(" ") + '"><b>' + (ROMAN[c.severity] || "") +
        "</b></span>";
      size = 1.9;
    } else {
      html = '<span class="' + classes.join(" ") + '"></span>';
    }
    if (fresh) {
      html = '<span class="mk-new-wrap mk-icon"><span class="mk-new"></span>' + html + "</span>";
    }
    var px = Math.round(size * r);
    return L.divIcon({
      className: "mk-icon",
      html: html,
      iconSize: [px, px],
      iconAnchor: [px / 2, px / 2]
    });
  }

  // Emergencies (突发) stand apart from the other cases: diamonds with their level, in a pane over
  // the rest. While there are few on the map (EMERGENCY_CLUSTER_FROM or fewer) each is drawn on
  // its own; during a surge (a typhoon's thousand flooding alarms) they are clustered among
  // themselves — an emergency-styled cluster with the count, its most severe level and its
  // overdue ones — and split again where they are sparse, when zoomed in, or when they are few
  // again (EMERGENCY_CLUSTER_UNTIL or fewer; the gap keeps the map from flipping back and forth).
  // A case in its first seconds on the wall ripples where it is, unclustered (at most FRESH_MAX
  // at a time: a surge would fill the map with rings).
  var EMERGENCY_CLUSTER_FROM = 30;
  var EMERGENCY_CLUSTER_UNTIL = 20;
  var emergenciesClustered = false;
  var FRESH_MS = 20000;
  var FRESH_MAX = 12;
  var freshUntil = new Map();
  state.emergenciesClustered = function () {
    return emergenciesClustered;
  };

  function layerFor(c) {
    if ((freshUntil.get(c.number) || 0) > Date.now()) {
      return singles;
    }
    if (c.severity) {
      return emergenciesClustered ? emergencyCluster : singles;
    }
    return cluster;
  }

  // Markers join and leave their layers in batches (markersFlush, after a snapshot, a message of
  // events, a recheck): a cluster group takes a thousand markers at once far faster than one by
  // one, each of which would redraw the clusters' icons.
  var pendingAdd = [];
  var pendingRemove = [];
  var pendingRefresh = [];

  function markerRemove(number) {
    var existing = markers.get(number);
    if (existing) {
      markers.delete(number);
      if (existing.options.pending) {
        existing.options.pending = false; // never added: nothing to take away
      } else {
        pendingRemove.push(existing);
      }
    }
  }

  function markerUpdate(c, fresh) {
    if (!cluster) {
      return;
    }
    if (!shownOnMap(c)) {
      markerRemove(c.number);
      return;
    }
    if (fresh && freshUntil.size < FRESH_MAX) {
      freshUntil.set(c.number, Date.now() + FRESH_MS);
      window.setTimeout(function () {
        freshUntil.delete(c.number);
        var again = state.cases.get(c.number);
        var m = markers.get(c.number);
        if (again && m) {
          m.options.key = "";
          markerUpdate(again, false);
          markersFlush();
        }
      }, FRESH_MS);
    }
    var rippling = (freshUntil.get(c.number) || 0) > Date.now();
    var at = now();
    var key = markerKey(c, at) + (rippling ? "|new" : "");
    var layer = layerFor(c);
    var existing = markers.get(c.number);
    if (existing && existing.options.layer !== layer) {
      markerRemove(c.number);
      existing = null;
    }
    if (existing) {
      if (existing.options.key !== key) {
        existing.options.key = key;
        existing.setIcon(markerIcon(c, at, rippling));
        if (!existing.options.pending && layer !== singles) {
          pendingRefresh.push(existing); // its cluster's icon counts the overdue
        }
      }
      var where = existing.getLatLng();
      if (where.lat !== c.location[1] || where.lng !== c.location[0]) {
        // Only when it moved: a cluster group takes a moved marker out and puts it back in.
        existing.setLatLng([c.location[1], c.location[0]]);
      }
      return;
    }
    var marker = L.marker([c.location[1], c.location[0]], {
      icon: markerIcon(c, at, rippling),
      keyboard: false,
      interactive: false,
      key: key,
      layer: layer,
      pending: true,
      emergency: Boolean(c.severity),
      caseNumber: c.number,
      pane: c.severity ? "emergencies" : "markerPane",
      zIndexOffset: c.severity ? 500 : (isOverdue(c, at) ? 300 : 0)
    });
    markers.set(c.number, marker);
    pendingAdd.push(marker);
  }

  function byLayer(list, each) {
    var groups = new Map();
    list.forEach(function (marker) {
      var layer = marker.options.layer;
      if (!groups.has(layer)) {
        groups.set(layer, []);
      }
      groups.get(layer).push(marker);
    });
    groups.forEach(each);
  }

  function markersFlush() {
    if (!cluster) {
      return;
    }
    // Many emergencies: clustered among themselves; few: each on its own. A change of mind
    // moves every emergency to the other layer (in this same batch).
    var count = 0;
    markers.forEach(function (marker) {
      if (marker.options.emergency) {
        count += 1;
      }
    });
    var clustered = count > (emergenciesClustered ? EMERGENCY_CLUSTER_UNTIL : EMERGENCY_CLUSTER_FROM);
    if (clustered !== emergenciesClustered) {
      emergenciesClustered = clustered;
      var numbers = [];
      markers.forEach(function (marker, number) {
        if (marker.options.emergency) {
          numbers.push(number);
        }
      });
      numbers.forEach(function (number) {
        var c = state.cases.get(number);
        if (c) {
          markerUpdate(c, false);
        }
      });
    }
    var removing = pendingRemove;
    var adding = pendingAdd;
    var refreshing = pendingRefresh;
    pendingRemove = [];
    pendingAdd = [];
    pendingRefresh = [];
    byLayer(removing, function (list, layer) {
      if (layer.removeLayers) {
        layer.removeLayers(list);
      } else {
        list.forEach(function (marker) {
          layer.removeLayer(marker);
        });
      }
    });
    adding = adding.filter(function (marker) {
      if (!marker.options.pending) {
        return false; // removed again before it was added
      }
      marker.options.pending = false;
      return true;
    });
    byLayer(adding, function (list, layer) {
      if (layer.addLayers) {
        layer.addLayers(list);
      } else {
        list.forEach(function (marker) {
          layer.addLayer(marker);
        });
      }
    });
    refreshing = refreshing.filter(function (marker) {
      return markers.get(marker.options.caseNumber) === marker;
    });
    byLayer(refreshing, function (list, layer) {
      if (layer.refreshClusters) {
        layer.refreshClusters(list);
      }
    });
    if (removing.length || adding.length || refreshing.length) {
      declutterLabelsSoon(); // the street names may now cover a cluster's count
    }
  }

  function markersAll() {
    if (!cluster) {
      return;
    }
    Array.from(markers.keys()).forEach(function (number) {
      if (!state.cases.has(number)) {
        markerRemove(number);
      }
    });
    state.cases.forEach(function (c) {
      markerUpdate(c, false);
    });
    markersFlush();
  }

  // A case whose clock just ran out gets its red ring without any event.
  function markersRecheck() {
    var at = now();
    markers.forEach(function (marker, number) {
      var c = state.cases.get(number);
      if (c && marker.options.key && marker.options.key.indexOf(markerKey(c, at)) !== 0) {
        markerUpdate(c, false);
      }
    });
    markersFlush();
  }

  function clusterIcon(group) {
    var children = group.getAllChildMarkers();
    var at = now();
    var late = 0;
    children.forEach(function (marker) {
      var c = state.cases.get(marker.options.caseNumber);
      if (c && isOverdue(c, at)) {
        late += 1;
      }
    });
    var count = children.length;
    var r = rem();
    var size = Math.round((count < 10 ? 2.3 : count < 100 ? 2.8 : 3.3) * r);
    var html = '<div class="cl' + (late ? " cl-hot" : "") + '"><span>' + count + "</span>" +
      (late ? '<span class="cl-badge">' + late + "</span>" : "") + "</div>";
    return L.divIcon({ html: html, className: "cl-icon", iconSize: [size, size] });
  }

  var SEVERITY_RANK = { I: 1, II: 2, III: 3, IV: 4 };

  // A cluster of emergencies: a diamond in the colour of its most severe level, with the count,
  // that level (Ⅰ–Ⅳ) and a red badge with the overdue ones.
  function emergencyClusterIcon(group) {
    var children = group.getAllChildMarkers();
    var at = now();
    var late = 0;
    var worst = null;
    children.forEach(function (marker) {
      var c = state.cases.get(marker.options.caseNumber);
      if (!c) {
        return;
      }
      if (isOverdue(c, at)) {
        late += 1;
      }
      if (c.severity && (worst === null ||
          (SEVERITY_RANK[c.severity] || 9) < (SEVERITY_RANK[worst] || 9))) {
        worst = c.severity;
      }
    });
    var count = children.length;
    var r = rem();
    var size = Math.round((count < 10 ? 2.6 : count < 100 ? 3 : count < 1000 ? 3.4 : 3.9) * r);
    var html = '<div class="cle cle-sev-' + (worst || "IV") + (late ? " cle-hot" : "") +
      (count >= 1000 ? " cle-wide" : "") + '"><span class="cle-shape"></span>' +
      '<span class="cle-count">' + count + "</span>" +
      '<span class="cle-level">' + (ROMAN[worst] || "") + "</span>" +
      (late ? '<span class="cl-badge">' + late + "</span>" : "") + "</div>";
    return L.divIcon({ html: html, className: "cl-icon cle-icon", iconSize: [size, size] });
  }

  // ---------------------------------------------------------------------------------------------
  // Responders (网格员, department handlers) who share their position: a person in a ring, with
  // their name and grid cell beside it. The snapshot brings the list; dispatch.responder_moved
  // replaces one (by user id, never with an older position), dispatch.responder_cleared removes
  // one, and a position older than the server's max age leaves the map (checked every minute).

  var responderLayer = null;
  var responderMarkers = new Map();
  var RESPONDER_CHECK_MS = 60000;
  // A person (head and shoulders), the same as the legend's (templates/command/wall.html).
  var RESPONDER_GLYPH = '<svg viewBox="0 0 24 24" aria-hidden="true">' +
    '<circle cx="12" cy="7" r="4.6"/><path d="M2.8 22.5c0-5.6 4.1-9.3 9.2-9.3s9.2 3.7 9.2 9.3z"/>' +
    "</svg>";
  state.responders = new Map();
  state.hasResponder = function (id) {
    return responderMarkers.has(id);
  };
  state.respondersRecheck = function () {
    respondersRecheck();
  };

  function responderFrom(data) {
    return {
      id: data.id,
      name: data.name || "",
      role: data.role || "",
      lon: Number(data.lon),
      lat: Number(data.lat),
      accuracy: data.accuracy_m === null || data.accuracy_m === undefined ? null
        : Number(data.accuracy_m),
      at: parseTime(data.at),
      grid: data.grid || { code: "", name: "" },
      community: data.community || { code: "", name: "" },
      street: data.street || { code: "", name: "" }
    };
  }

  function responderFresh(r, at) {
    var maxAge = (config.responderMaxAgeMinutes || 30) * 60000;
    return r.at !== null && at - r.at <= maxAge && isFinite(r.lon) && isFinite(r.lat);
  }

  function responderApply(data) {
    if (!data || data.id === undefined || data.id === null) {
      return false;
    }
    var r = responderFrom(data);
    var previous = state.responders.get(r.id);
    if (previous && previous.at !== null && r.at !== null && r.at < previous.at) {
      return false; // an older position (a replay) never moves the marker back
    }
    state.responders.set(r.id, r);
    responderDraw(r);
    return true;
  }

  function responderClear(id) {
    respondersMoved = true;
    state.responders.delete(id);
    var marker = responderMarkers.get(id);
    if (marker) {
      responderLayer.removeLayer(marker);
      responderMarkers.delete(id);
    }
  }

  function responderIcon(r) {
    var px = Math.round(1.7 * rem());
    var html = '<span class="rs rs-' + (r.role === "department_handler" ? "dept" : "grid") +
      '">' + RESPONDER_GLYPH + "</span>";
    return L.divIcon({ className: "rs-icon", html: html, iconSize: [px, px],
      iconAnchor: [px / 2, px / 2] });
  }

  // The grid cell's name without its community's ("三联社区第13网格" → "第13网格"): the label
  // stays short on a crowded map; the title has the whole name.
  function shortGrid(r) {
    var name = r.grid.name || r.grid.code || "";
    var community = r.community.name || "";
    if (community && name.indexOf(community) === 0 && name.length > community.length) {
      return name.slice(community.length);
    }
    return name;
  }

  function responderLabel(r) {
    var box = el("span", "rs-text");
    box.appendChild(el("b", null, r.name));
    var grid = shortGrid(r);
    if (grid) {
      box.appendChild(el("small", null, grid));
    }
    return box;
  }

  function responderDraw(r) {
    if (!responderLayer) {
      return;
    }
    if (!responderFresh(r, now())) {
      responderClear(r.id);
      return;
    }
    respondersMoved = true;
    var latlng = [r.lat, r.lon];
    var title = r.name + " · " + (T.responderRoles[r.role] || r.role) + " · " +
      (r.grid.name || r.grid.code) + " · " + clockText(r.at);
    var marker = responderMarkers.get(r.id);
    if (marker) {
      marker.setLatLng(latlng);
      if (marker.options.roleKey !== r.role) {
        marker.options.roleKey = r.role;
        marker.setIcon(responderIcon(r));
      }
      marker.setTooltipContent(responderLabel(r));
    } else {
      marker = L.marker(latlng, {
        icon: responderIcon(r),
        keyboard: false,
        interactive: false,
        pane: "responders",
        roleKey: r.role,
        responderId: r.id
      });
      marker.bindTooltip(responderLabel(r), {
        permanent: true, direction: "right", className: "wall-responder-label",
        interactive: false, opacity: 1, pane: "responderLabels", offset: [0.7 * rem(), 0]
      });
      responderMarkers.set(r.id, marker);
      responderLayer.addLayer(marker);
    }
    var node = marker.getElement();
    if (node) {
      node.setAttribute("title", title);
      node.dataset.responder = String(r.id);
    }
  }

  // Two responders close together: their labels are moved apart like the street names.
  function declutterResponders() {
    var tooltips = [];
    responderMarkers.forEach(function (marker) {
      if (marker.getTooltip()) {
        tooltips.push(marker.getTooltip());
      }
    });
    declutterTooltips(tooltips);
  }

  function respondersAll(list) {
    state.responders = new Map();
    list.forEach(function (data) {
      var r = responderFrom(data);
      state.responders.set(r.id, r);
    });
    Array.from(responderMarkers.keys()).forEach(function (id) {
      if (!state.responders.has(id)) {
        responderClear(id);
      }
    });
    state.responders.forEach(responderDraw);
  }

  // Positions age out on their own: a phone that stopped reporting (switched off, no signal)
  // sends no event, so the wall drops what is older than the max age.
  function respondersRecheck() {
    var at = now();
    state.responders.forEach(function (r) {
      if (!responderFresh(r, at)) {
        responderClear(r.id);
      }
    });
    renderResponderCount();
  }

  function renderResponderCount() {
    var grid = 0;
    var dept = 0;
    responderMarkers.forEach(function (marker) {
      if (marker.options.roleKey === "department_handler") {
        dept += 1;
      } else {
        grid += 1;
      }
    });
    var text = format(T.respondersOnDuty, { n: grid });
    if (dept) {
      text += " · " + format(T.handlersOnDuty, { n: dept });
    }
    $("map-responders").textContent = text;
    $("map-responders").dataset.count = String(grid + dept);
  }

  // ---------------------------------------------------------------------------------------------
  // Putting it together

  var chartTimer = null;
  var ticks = 0;

  // The figures change with the cases, and with time only when a clock runs out (a case turns
  // overdue): until the next deadline, those computed last still hold.
  var figuresNext = null;

  function currentFigures(at) {
    if (figuresDirty || !state.figures || (figuresNext !== null && at > figuresNext)) {
      state.figures = computeFigures(at);
      figuresDirty = false;
      figuresNext = nextDeadline(at);
    }
    return state.figures;
  }

  var respondersMoved = false;

  function renderAll() {
    markersFlush();
    var figures = currentFigures(now());
    renderKpis(figures);
    renderStreets(figures);
    renderResponses();
    renderTicker();
    renderOverdue();
    var mapCount = format(T.mapCount, { open: figures.open, closed: state.today.closed.size });
    if ($("map-count").textContent !== mapCount) {
      $("map-count").textContent = mapCount;
    }
    renderResponderCount();
    if (respondersMoved) {
      respondersMoved = false;
      declutterResponders();
    }
    if (chartTimer === null) {
      // At most once a second: during a surge events come every quarter of a second.
      chartTimer = window.setTimeout(function () {
        chartTimer = null;
        renderCharts(state.figures, false);
      }, 1000);
    }
  }

  function tick() {
    var at = now();
    $("wall-time").textContent = clockText(at);
    var date = dateFormat.format(new Date(at));
    if ($("wall-date").textContent !== date) {
      $("wall-date").textContent = date;
    }
    if (!state.ready) {
      return;
    }
    if (state.dayEnd && at >= state.dayEnd && !loading && retryTimer === null) {
      loadSnapshot(); // a new day: today's figures start again
    }
    var figures = currentFigures(at);
    renderKpis(figures);
    renderStreets(figures); // a clock that ran out moves a case into 超时
    renderOverdue(); // the countdowns, in place; rows only when the cases to show changed
    renderResponses(); // how long each response has run, in place
    ticks += 1;
    if (ticks % 30 === 0) {
      renderCharts(figures, false); // the current hour, and overdue cases, move on their own
    }
    if (state.interruptedAt !== null) {
      $("wall-banner-detail").textContent = format(T.interruptedDetail,
        { time: clockText(state.interruptedAt) });
    }
  }

  // --- the snapshot over HTTP (resync, judging closures, a new day, reconciliation) ---

  var loading = null;
  var queued = [];
  var judgeTimer = null;
  var retryTimer = null;
  var retryMs = 5000;

  function judgeSoon() {
    if (judgeTimer === null) {
      judgeTimer = window.setTimeout(function () {
        judgeTimer = null;
        loadSnapshot();
      }, JUDGE_DELAY_MS);
    }
  }

  function showRefused() {
    state.refused = true;
    $("wall-refused-text").textContent = T.refused;
    $("wall-refused").hidden = false;
  }

  function loadSnapshot(resync) {
    if (loading) {
      return loading;
    }
    var receivedAt = null;
    loading = fetch(config.snapshotUrl, {
      credentials: "same-origin",
      cache: "no-store",
      headers: { Accept: "application/json" }
    }).then(function (response) {
      receivedAt = Date.now();
      if (response.status === 403) {
        showRefused();
        throw new Error("refused");
      }
      if (!response.ok) {
        throw new Error("HTTP " + response.status);
      }
      return response.json();
    }).then(function (data) {
      state.refused = false;
      $("wall-refused").hidden = true;
      applySnapshot(data, receivedAt);
      // Events that arrived while the snapshot was on its way: those after its position.
      var pending = queued;
      queued = [];
      pending.forEach(function (event) {
        applyEvent(event, true);
      });
      if (resync && state.feed && typeof state.feed.snapshotLoaded === "function") {
        state.feed.snapshotLoaded(data.seqs);
      }
      retryMs = 5000;
      renderAll();
    }).catch(function (error) {
      if (String(error).indexOf("refused") < 0 && retryTimer === null) {
        retryTimer = window.setTimeout(function () {
          retryTimer = null;
          loadSnapshot(resync);
        }, retryMs);
        retryMs = Math.min(retryMs * 2, 60000);
      }
    }).then(function () {
      loading = null;
    });
    return loading;
  }

  function onEvents(events) {
    if (loading) {
      Array.prototype.push.apply(queued, events);
      return;
    }
    var changed = false;
    events.forEach(function (event) {
      changed = applyEvent(event, true) || changed;
    });
    if (changed) {
      renderAll();
    }
  }

  function setStatus(status) {
    state.status = status;
    var box = $("wall-live");
    box.dataset.state = status;
    $("wall-live-text").textContent = T[status] || status;
    var interrupted = status === "interrupted";
    if (interrupted && state.interruptedAt === null) {
      state.interruptedAt = now();
    } else if (!interrupted) {
      state.interruptedAt = null;
    }
    $("wall-banner").hidden = !interrupted;
    if (interrupted) {
      $("wall-banner-detail").textContent = format(T.interruptedDetail,
        { time: clockText(state.interruptedAt) });
    }
  }

  function startFeed(seqs) {
    var live = window.CityOpsLive;
    if (!live || typeof live.connect !== "function") {
      setStatus("interrupted");
      return;
    }
    state.feed = live.connect({
      url: "/ws/",
      storageKey: "wall:" + config.district,
      onEvents: onEvents,
      onStatus: setStatus,
      onResyncRequired: function () {
        loadSnapshot(true);
      }
    });
    if (state.feed && typeof state.feed.snapshotLoaded === "function") {
      state.feed.snapshotLoaded(seqs);
    }
  }

  // When the page's HTML (and the snapshot in it) began to arrive, on the kiosk's clock.
  function pageReceivedAt() {
    var entries = window.performance && performance.getEntriesByType
      ? performance.getEntriesByType("navigation") : [];
    if (entries.length && entries[0].responseStart > 0 && performance.timeOrigin) {
      return performance.timeOrigin + entries[0].responseStart;
    }
    return Date.now();
  }

  function start() {
    setStatus("connecting");
    var first = readJson("wall-snapshot");
    initMap();
    initCharts();
    applySnapshot(first, pageReceivedAt());
    state.ready = true;
    document.getElementById("wall").dataset.state = "ready";
    renderAll();
    renderCharts(state.figures, false);
    tick();
    window.setInterval(tick, 1000);
    window.setInterval(markersRecheck, 5000);
    window.setInterval(respondersRecheck, RESPONDER_CHECK_MS);
    window.setInterval(loadSnapshot, RECONCILE_MS);
    window.addEventListener("resize", function () {
      fitDistrict();
      fitsChanged();
      renderAll();
    });
    if (document.fonts && document.fonts.ready) {
      // The type may arrive after the first drawing: the rows' height changes with it.
      document.fonts.ready.then(fitsChanged);
    }
    startFeed(first.seqs);
  }

  start();
})();
