/* CityOps consoles: the street / community / department queues and the case page.
 *
 * The server renders every page; this script makes it live and lets the user act:
 *  - SLA countdowns tick every second and change colour as the deadline nears (80 % of the
 *    stage's time used, or the server's warning) and passes;
 *  - the queue's filters, chips and pager fetch the queue again (?fragment=queue) without a
 *    reload, and so does every live event about a case of this console;
 *  - a street's or community's console lists its responders on duty (在岗响应人员: who shares a
 *    position inside the area) and keeps the list live from dispatch.responder_moved /
 *    responder_cleared; "3 分钟前" is refreshed and positions past the max age dropped every 30 s;
 *    a case page keeps its 附近的响应人员 (within the radius of the case, nearest first, also
 *    marked on its map) live the same way;
 *  - a queue's 批量办理 acts on the ticked cases through the batch endpoint: ticked on the page,
 *    or 选择全部 on every page of the filters (?fragment=numbers), sent BATCH_MAX at a time, one
 *    request after the other, with a count, 停止 and a resume of what was not answered;
 *  - a department's queue takes a step from a row: 签收 and 确认到场 at once, 协办反馈 in a
 *    dialog outside the queue (a live reload does not take what is being written);
 *  - the case page posts each action form to the REST API (session + CSRF token +
 *    Idempotency-Key), shows a 4xx answer beside the field it names, and fetches its state again
 *    (?fragment=case) after an action or when a live event about the case arrives;
 *  - photos and possible duplicates come from the case's API detail;
 *  - the live feed is static/realtime/live.js (window.CityOpsLive); while it is interrupted a
 *    banner says so.
 *
 * window.CityOpsConsole exposes the helpers intake.js shares (api, errors, base map, strings);
 * window.cityopsConsole exposes the page's state for the browser tests.
 */
(function () {
  "use strict";

  function readJson(id) {
    var node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  }

  var T = readJson("console-strings") || {};
  var state = {
    feedStatus: "connecting",
    refreshes: 0,
    lastEvents: [],
    ready: false
  };
  window.cityopsConsole = state;

  // ---------------------------------------------------------------------------------------------
  // Small helpers

  function format(template, values) {
    return String(template || "").replace(/%\((\w+)\)s/g, function (match, key) {
      return Object.prototype.hasOwnProperty.call(values, key) ? String(values[key]) : match;
    });
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

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function newKey() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") {
      return window.crypto.randomUUID();
    }
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    var hex = Array.prototype.map.call(bytes, function (b) {
      return (b + 0x100).toString(16).slice(1);
    }).join("");
    return hex.slice(0, 8) + "-" + hex.slice(8, 12) + "-" + hex.slice(12, 16) + "-" +
      hex.slice(16, 20) + "-" + hex.slice(20);
  }

  /* One request to the API: resolves {status, body} for every HTTP answer and rejects only when
   * no answer came (network). Writes carry the CSRF token and the given Idempotency-Key. */
  function api(method, url, body, key) {
    var headers = { Accept: "application/json" };
    var payload;
    if (method !== "GET") {
      headers["X-CSRFToken"] = csrfToken();
      if (key) {
        headers["Idempotency-Key"] = key;
      }
      if (body instanceof FormData) {
        payload = body;
      } else if (body !== undefined) {
        headers["Content-Type"] = "application/json";
        payload = JSON.stringify(body);
      }
    }
    return fetch(url, {
      method: method,
      headers: headers,
      body: payload,
      credentials: "same-origin"
    }).then(function (response) {
      return response.text().then(function (text) {
        var parsed = {};
        try {
          parsed = text ? JSON.parse(text) : {};
        } catch (error) {
          parsed = {}; // not the API's JSON (a proxy's page): the status says what happened
        }
        return { status: response.status, ok: response.ok, body: parsed };
      });
    });
  }

  function messages(value) {
    if (Array.isArray(value)) {
      return value.map(function (item) {
        return typeof item === "object" ? JSON.stringify(item) : String(item);
      }).join(" ");
    }
    if (value && typeof value === "object") {
      return JSON.stringify(value);
    }
    return String(value);
  }

  function clearErrors(form) {
    form.querySelectorAll("[data-error-for]").forEach(function (node) {
      node.textContent = "";
      node.hidden = true;
    });
    form.querySelectorAll(".has-error").forEach(function (node) {
      node.classList.remove("has-error");
    });
  }

  function showError(form, name, text) {
    var slot = form.querySelector('[data-error-for="' + name + '"]');
    if (!slot) {
      return false;
    }
    slot.textContent = text;
    slot.hidden = false;
    var field = slot.closest(".field");
    if (field) {
      field.classList.add("has-error");
    }
    return true;
  }

  /* Show an API answer that is not a success: each field's reasons beside the field (a 400,
   * also a 413 naming `photos`), everything else (detail, fields the form does not have) at the
   * foot of the form, after a sentence saying what the status means. */
  function showAnswer(form, res) {
    clearErrors(form);
    var general = [];
    var body = res.body || {};
    Object.keys(body).forEach(function (name) {
      if (name === "detail" || name === "distance_m" || name === "status" ||
          name === "allowed_actions" || name === "Idempotency-Key") {
        return; // a reused key: the status's sentence says what to do
      }
      var text = messages(body[name]);
      if (!showError(form, name, text)) {
        var label = (T.fields && T.fields[name]) || name;
        general.push(format(T.labelled, { label: label, value: text }));
      }
    });
    if (res.status !== 400) {
      var lead = {
        403: T.forbidden,
        404: T.notFound,
        409: body.allowed_actions !== undefined ? T.conflict : T.busy,
        413: T.tooLarge,
        422: T.keyReused
      }[res.status] || T.failed + " (HTTP " + res.status + ")";
      general.unshift(body.detail ? lead + " — " + body.detail : lead);
    } else if (body.detail) {
      general.unshift(messages(body.detail));
    }
    if (!general.length && !form.querySelector(".has-error")) {
      general.push(T.failed + " (HTTP " + res.status + ")");
    }
    if (general.length) {
      showError(form, "__all__", general.join(" ")); // each reason is a sentence of its own
    }
    var first = form.querySelector(".has-error input, .has-error select, .has-error textarea");
    if (first) {
      first.focus();
    }
  }

  /* An action form's fields as the API takes them: JSON, or multipart when files are chosen
   * (the photos of 反馈). */
  function collect(form) {
    var body = {};
    var files = [];
    Array.prototype.forEach.call(form.elements, function (input) {
      if (!input.name || input.disabled) {
        return;
      }
      if (input.type === "file") {
        files = Array.prototype.slice.call(input.files || []);
        return;
      }
      if (input.type === "checkbox") { // a group of them is a list of the values ticked
        body[input.name] = body[input.name] || [];
        if (input.checked) {
          body[input.name].push(input.value);
        }
        return;
      }
      var value = input.value;
      if (input.dataset.kind === "datetime") {
        if (!value) {
          return; // left out: the API says when it is required
        }
        var moment = new Date(value);
        value = isNaN(moment.getTime()) ? value : moment.toISOString();
      } else if (input.name === "satisfaction") {
        value = value ? Number(value) : value;
      }
      body[input.name] = value;
    });
    if (files.length) {
      var data = new FormData();
      Object.keys(body).forEach(function (name) {
        data.append(name, body[name]);
      });
      files.forEach(function (file) {
        data.append("photos", file);
      });
      return data;
    }
    return body;
  }

  /* Every required field left empty, each named beside itself at once (the server would name
   * only the first), and nothing sent; false when none is. */
  function saysWhatIsMissing(form) {
    var empty = Array.prototype.filter.call(
      form.querySelectorAll('[aria-required="true"]'),
      function (input) {
        if (input.getAttribute("role") === "group") { // tick boxes: at least one ticked
          return !input.querySelector("input:checked");
        }
        return !input.disabled && !String(input.value || "").trim();
      }
    );
    empty.forEach(function (input) {
      showError(form, input.name || input.dataset.name, T.required);
    });
    if (empty.length) {
      (empty[0].querySelector("input") || empty[0]).focus();
    }
    return empty.length > 0;
  }

  // ---------------------------------------------------------------------------------------------
  // SLA countdowns

  function pad(n) {
    return (n < 10 ? "0" : "") + n;
  }

  var stampFormat = null;

  /* "MM-DD HH:mm" of a moment in the server's time zone (T.timeZone), as the server writes the
   * times around it, not in the browser's. */
  function stamp(when) {
    if (!stampFormat) {
      var options = { month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
        hourCycle: "h23" };
      try {
        stampFormat = new Intl.DateTimeFormat("en-GB", Object.assign({ timeZone: T.timeZone },
          options));
      } catch (error) { // an unknown zone: the browser's own
        stampFormat = new Intl.DateTimeFormat("en-GB", options);
      }
    }
    var parts = {};
    stampFormat.formatToParts(when).forEach(function (part) {
      parts[part.type] = part.value;
    });
    return parts.month + "-" + parts.day + " " + parts.hour + ":" + parts.minute;
  }

  function duration(ms) {
    var total = Math.floor(Math.abs(ms) / 1000);
    var days = Math.floor(total / 86400);
    var hours = Math.floor((total % 86400) / 3600);
    var minutes = Math.floor((total % 3600) / 60);
    var seconds = total % 60;
    var clock = pad(hours) + ":" + pad(minutes) + ":" + pad(seconds);
    if (days > 0) {
      return days + (T.day || "d") + " " + pad(hours) + ":" + pad(minutes);
    }
    return clock;
  }

  function tick() {
    var now = Date.now();
    document.querySelectorAll(".sla[data-deadline]").forEach(function (node) {
      var deadline = Date.parse(node.dataset.deadline);
      if (isNaN(deadline)) {
        return;
      }
      var started = node.dataset.started ? Date.parse(node.dataset.started) : NaN;
      var left = deadline - now;
      var level = "ok";
      if (left <= 0) {
        level = "late";
      } else if (node.dataset.warned === "1" ||
          (!isNaN(started) && deadline > started && (now - started) / (deadline - started) >= 0.8)) {
        level = "warn";
      }
      node.classList.remove("sla-ok", "sla-warn", "sla-late");
      node.classList.add("sla-" + level);
      node.dataset.level = level;
      var text = node.querySelector(".sla-left");
      if (text) {
        text.textContent = format(left <= 0 ? T.late : T.left, { time: duration(left) });
      }
      var row = node.closest("tr");
      if (row) {
        row.classList.toggle("is-late", left <= 0);
      }
    });
  }

  // ---------------------------------------------------------------------------------------------
  // The live feed

  var statusEl = document.getElementById("live-status");
  var bannerEl = document.getElementById("live-banner");
  var signedOutEl = document.getElementById("signed-out-banner");
  // The sign-in page, as the banner's link names it (with the way back to this page).
  var LOGIN_PATH = signedOutEl ? new URL(signedOutEl.querySelector("a").href).pathname : null;

  function setFeedStatus(status) {
    state.feedStatus = status;
    if (statusEl) {
      statusEl.dataset.state = status;
      var text = statusEl.querySelector(".live-text");
      if (text && text.dataset["text" + status.charAt(0).toUpperCase() + status.slice(1)]) {
        text.textContent = text.dataset["text" + status.charAt(0).toUpperCase() + status.slice(1)];
      }
    }
    if (bannerEl) {
      bannerEl.hidden = status !== "interrupted";
    }
    if (signedOutEl) {
      signedOutEl.hidden = status !== "signedout";
    }
  }

  // What a page fetches by itself (a fragment the live feed asked for): it does not keep the
  // session from ending after its idle limit (accounts.sessions).
  var BACKGROUND_HTML = { Accept: "text/html", "X-CityOps-Background": "1" };

  /* A fragment's request that was sent to the sign-in page: the session has ended. The page
   * says so (as when the live feed closes for it) instead of showing the sign-in form inside. */
  function signedOutBy(response) {
    if (!response.redirected || new URL(response.url).pathname !== LOGIN_PATH) {
      return false;
    }
    if (state.feed) {
      state.feed.close();
    }
    setFeedStatus("signedout");
    return true;
  }

  function connectFeed(options) {
    if (!window.CityOpsLive || typeof window.CityOpsLive.connect !== "function") {
      setFeedStatus("interrupted");
      return null;
    }
    var feed = window.CityOpsLive.connect({
      url: "/ws/",
      storageKey: options.storageKey,
      onEvents: function (events, info) {
        state.lastEvents = events;
        options.onEvents(events, info || {});
      },
      onStatus: setFeedStatus,
      // The session ended (idle past its limit, or signed out elsewhere): the banner says so
      // and leads to the sign-in page and back here (setFeedStatus("signedout")).
      onSignedOut: function () {},
      onResyncRequired: function () {
        // Too much was missed to replay: reload the page's snapshot (until it loads), then
        // continue from its sequence numbers.
        function again() {
          options.reload().then(function (seqs) {
            if (seqs) {
              feed.snapshotLoaded(seqs);
            } else {
              window.setTimeout(again, 3000);
            }
          });
        }
        again();
      }
    });
    var snapshot = readJson("queue-feed");
    if (snapshot && snapshot.seqs) {
      feed.snapshotLoaded(snapshot.seqs);
    }
    state.feed = feed;
    return feed;
  }

  function incidentOf(event) {
    return (event && event.payload && event.payload.incident) || {};
  }

  // ---------------------------------------------------------------------------------------------
  // A base map of the district's own boundaries (no internet tiles)

  function baseMap(node, options) {
    var map = L.map(node, {
      zoomSnap: 0.25, minZoom: 9, maxZoom: 18, attributionControl: false, zoomControl: false
    });
    L.control.zoom({ zoomInTitle: T.zoomIn, zoomOutTitle: T.zoomOut }).addTo(map);
    map.setView([options.lat || 22.68, options.lon || 114.035], options.zoom || 12);
    map.createPane("streets").style.zIndex = "410";
    map.createPane("communities").style.zIndex = "420";
    map.createPane("district").style.zIndex = "430";
    map.createPane("marks").style.zIndex = "450";
    var layers = { streets: {}, communities: {} };

    function load(level) {
      var url = options.regionsUrl + "?level=" + level;
      if (options.generation) {
        url += "&generation=" + encodeURIComponent(options.generation);
      }
      return api("GET", url).then(function (res) {
        if (!res.ok) {
          throw new Error(level + ": HTTP " + res.status);
        }
        return res.body;
      });
    }

    var ready = Promise.all([load("district"), load("street"), load("community")])
      .then(function (collections) {
        var district = L.geoJSON(collections[0], {
          pane: "district",
          interactive: false,
          style: { color: "#0f2a44", weight: 3, opacity: 0.9, fill: false }
        }).addTo(map);
        L.geoJSON(collections[1], {
          pane: "streets",
          interactive: false,
          style: function (feature) {
            var mine = options.street && feature.properties.code === options.street;
            return {
              color: "#2f4858",
              weight: 1.6,
              fillColor: mine ? "#cfe3f7" : "#e6ecf1",
              fillOpacity: 0.85
            };
          },
          onEachFeature: function (feature, layer) {
            layers.streets[feature.properties.code] = layer;
            if (options.streetLabels) {
              layer.bindTooltip(feature.properties.name, {
                permanent: true,
                direction: "center",
                className: "map-label street-label"
              });
            }
          }
        }).addTo(map);
        L.geoJSON(collections[2], {
          pane: "communities",
          interactive: false,
          style: function (feature) {
            var mine = options.community && feature.properties.code === options.community;
            return mine ?
              { color: "#c2410c", weight: 2.5, fillColor: "#f97316", fillOpacity: 0.12 } :
              { color: "#52606d", weight: 0.8, opacity: 0.8, fill: false };
          },
          onEachFeature: function (feature, layer) {
            layers.communities[feature.properties.code] = layer;
            if (options.communityLabels) {
              layer.bindTooltip(feature.properties.name, {
                permanent: true,
                direction: "center",
                className: "map-label community-label"
              });
            }
          }
        }).addTo(map);
        layers.district = district;
        if (options.communityLabels) {
          // Community names once zoomed in far enough to read them; street names until then.
          var toggleLabels = function () {
            var near = map.getZoom() >= 13.5;
            node.classList.toggle("show-community-labels", near);
          };
          map.on("zoomend", toggleLabels);
          toggleLabels();
        }
        return layers;
      });
    return { map: map, ready: ready, layers: layers };
  }

  window.CityOpsConsole = {
    api: api,
    newKey: newKey,
    clearErrors: clearErrors,
    showError: showError,
    showAnswer: showAnswer,
    baseMap: baseMap,
    strings: T,
    format: format,
    el: el,
    readJson: readJson,
    tick: tick
  };

  // ---------------------------------------------------------------------------------------------
  // 批量办理: tick cases in a queue, choose an action in the bar above it; the batch endpoint
  // (/api/v1/incidents/batch/<action>/, incidents.api.batch) acts on each case and answers each
  // on its own. The ticks are case numbers kept across the queue's live reloads; shift-click
  // ticks a range. With the page's all-box ticked and more cases matching the filters than the
  // page shows, the bar offers 选择全部 N 件: the numbers of every matching case, on every page
  // (?fragment=numbers, at most data-select-max). More ticked cases than one request takes
  // (data-batch-max) are sent in consecutive requests, one after the other, each with its own
  // Idempotency-Key; the submit button counts them, 停止 stops before the next, and one report
  // sums them all. A change of filters unticks all; so does a change of page, unless the
  // selection was taken across the pages.

  function setupBatch(queueEl, hooks) {
    var bar = document.getElementById("batch-bar");
    if (!bar) {
      return null;
    }
    var chunkSize = parseInt(bar.dataset.batchMax, 10) || 100;
    var max = parseInt(bar.dataset.selectMax, 10) || chunkSize;
    var picked = {}; // number → what the merge's list of primaries shows of it
    var order = []; // the ticked numbers, in the order ticked (选择全部: the queue's order)
    var countEl = bar.querySelector("[data-batch-count]");
    var resultEl = bar.querySelector("[data-batch-result]");
    var allEl = bar.querySelector("[data-batch-all]");
    var allText = allEl.querySelector("[data-batch-all-text]");
    var allButton = allEl.querySelector("[data-batch-all-button]");
    var noteEl = el("p", "batch-note");
    noteEl.hidden = true;
    noteEl.setAttribute("role", "status");
    bar.querySelector(".batch-head").appendChild(noteEl);
    var openForm = null;
    var last = null;
    // 选择全部: `across` while the ticks were taken from every page of the filters (until they
    // are cleared or narrowed to this page again); `allOf`, how many matched, while the ticks
    // are still exactly those (null once one is unticked or acted on).
    var across = false;
    var allOf = null;
    var fetchingAll = false;
    // The numbers of the batch being sent: their rows may leave the queue (the live feed reports
    // each step) before the answer comes, which settles them.
    var sending = {};
    // The batch being sent, chunk after chunk, or the last one interrupted (停止, a network
    // failure, a refusal) that submitting again resumes: {form, body, signature, chunks:
    // [{numbers, key}], at (the next chunk), results (every case answered), failed (numbers
    // answered as not done), total, busy, stopping}.
    var run = null;

    function boxes() {
      return Array.prototype.slice.call(queueEl.querySelectorAll("input[data-pick]"));
    }

    function pick(number, summary, on) {
      if (on && picked[number] === undefined) {
        picked[number] = summary;
        order.push(number);
      } else if (!on && picked[number] !== undefined) {
        delete picked[number];
        order.splice(order.indexOf(number), 1);
      }
    }

    function note(text) {
      noteEl.textContent = text;
      noteEl.hidden = !text;
    }

    function fields(form) {
      var body = {};
      new FormData(form).forEach(function (value, name) {
        body[name] = String(value);
      });
      return body;
    }

    // The numbers the action is taken on: the ticked ones, a merge's primary left out.
    function targets(form, body) {
      if (form.dataset.batchForm !== "merge") {
        return order.slice();
      }
      return order.filter(function (number) {
        return number !== body.into;
      });
    }

    function acted(form) {
      // How many cases the action changes: a merge keeps its primary.
      return form.dataset.batchForm === "merge" ? Math.max(order.length - 1, 0) : order.length;
    }

    function unanswered(r) {
      var numbers = [];
      r.chunks.slice(r.at).forEach(function (chunk) {
        numbers = numbers.concat(chunk.numbers);
      });
      return numbers;
    }

    /* Whether submitting `form` now resumes the interrupted run, sending only what it has not
     * had answered, each chunk with the key it was (or would have been) sent with: the same
     * fields, and the ticks are what the run left (its unanswered cases, with or without those
     * it answered as not done). Anything else is a new batch with new keys. */
    function resumable(form, body) {
      if (!run || run.busy || run.form !== form || run.at >= run.chunks.length ||
          JSON.stringify(body) !== run.signature) {
        return false;
      }
      var left = unanswered(run);
      var ticked = {};
      var allowed = {};
      targets(form, body).forEach(function (number) {
        ticked[number] = true;
      });
      left.concat(run.failed).forEach(function (number) {
        allowed[number] = true;
      });
      return left.every(function (number) {
        return ticked[number];
      }) && Object.keys(ticked).every(function (number) {
        return allowed[number];
      });
    }

    function label(form) {
      var button = form.querySelector("[data-batch-submit]");
      var stop = form.querySelector("[data-batch-stop]");
      var cancel = form.querySelector("[data-batch-cancel]");
      var busy = run !== null && run.busy && run.form === form;
      button.disabled = busy;
      cancel.disabled = busy;
      form.classList.toggle("is-running", busy);
      stop.hidden = !busy || run.chunks.length - run.at < 2;
      stop.disabled = busy && run.stopping;
      if (busy) {
        button.textContent = run.stopping ? T.batchStopping :
          run.chunks.length > 1 ?
            format(T.batchProgress, { done: run.results.length, n: run.total }) :
            format(T.batchRunning, { n: run.total });
      } else if (run !== null && run.results.length && resumable(form, fields(form))) {
        // "继续" once part of it is answered; before that a retry (still with its keys) keeps
        // the usual label.
        button.textContent = format(T.batchResume,
          { action: form.dataset.label, n: unanswered(run).length });
      } else {
        button.textContent = format(T.batchSubmit, { action: form.dataset.label, n: acted(form) });
      }
    }

    /* The merge's primary is one of the ticked cases: the earliest reported unless another was
     * chosen (case numbers sort by day and sequence). */
    function fillPrimary(form) {
      var select = form.elements.into;
      var keep = select.value;
      select.innerHTML = "";
      order.slice().sort().forEach(function (number) {
        var option = document.createElement("option");
        option.value = number;
        option.textContent = number + " · " + picked[number];
        select.appendChild(option);
      });
      if (keep && picked[keep] !== undefined) {
        select.value = keep;
      }
    }

    /* The line under the count: with the page's all-box ticked, nothing else ticked and more
     * cases matching than the page shows, the offer of them all (or, past the limit, to narrow the filters); once they
     * are all ticked, the way back to this page's. */
    function offerAll(allBox, shown) {
      var total = hooks.total();
      allButton.disabled = fetchingAll || (run !== null && run.busy);
      allButton.hidden = true;
      allEl.hidden = true;
      if (allOf !== null) {
        allText.textContent = format(T.batchAllChosen, { n: allOf });
        allButton.textContent = format(T.batchPageOnly, { n: shown });
        allButton.dataset.choose = "page";
        allButton.hidden = shown === 0;
        allEl.hidden = false;
      } else if (allBox && allBox.checked && total > shown && order.length === shown &&
          !(run !== null && run.busy)) {
        // (Only while this page's are all that is ticked: with ticks on other pages too, after
        // 停止 say, the count says so, and "all" may already be what is ticked.)
        allText.textContent = format(T.batchPageChosen, { n: shown });
        if (total > max) {
          allText.textContent += " " + format(T.batchAllTooMany, { n: total, max: max });
        } else {
          allButton.textContent = fetchingAll ? T.batchAllLoading : format(T.batchAll, { n: total });
          allButton.dataset.choose = "all";
          allButton.hidden = false;
        }
        allEl.hidden = false;
      }
    }

    function refresh() {
      var n = order.length;
      var busy = run !== null && run.busy;
      // The boxes show what is ticked (a case done by a batch is unticked here at once).
      var list = boxes();
      var on = 0;
      list.forEach(function (box) {
        box.checked = picked[box.value] !== undefined;
        box.closest("tr").classList.toggle("is-picked", box.checked);
        on += box.checked ? 1 : 0;
      });
      countEl.textContent = format(T.batchSelected, { n: n }) +
        (n > on ? format(T.batchElsewhere, { n: n - on }) : "") +
        (n > max ? " — " + format(T.batchTooMany, { max: max }) : "");
      countEl.classList.toggle("is-over", n > max);
      bar.querySelectorAll("[data-batch-action]").forEach(function (button) {
        button.disabled = n === 0 || n > max || busy;
      });
      bar.querySelector("[data-batch-clear]").disabled = busy;
      var all = queueEl.querySelector("input[data-pick-all]");
      if (all) {
        all.checked = list.length > 0 && on === list.length;
        all.indeterminate = on > 0 && on < list.length;
      }
      offerAll(all, list.length);
      if (openForm && !busy && (n === 0 || n > max)) {
        close();
      }
      if (openForm) {
        if (openForm.dataset.batchForm === "merge" && !busy) {
          fillPrimary(openForm);
        }
        label(openForm);
      }
      bar.hidden = n === 0 && resultEl.hidden && noteEl.hidden && !busy;
    }

    function close() {
      if (openForm) {
        openForm.hidden = true;
        openForm = null;
      }
      bar.querySelectorAll("[data-batch-action]").forEach(function (button) {
        button.setAttribute("aria-expanded", "false");
      });
    }

    function open(action) {
      close();
      openForm = bar.querySelector('form[data-batch-form="' + action + '"]');
      clearErrors(openForm);
      openForm.hidden = false;
      bar.querySelector('[data-batch-action="' + action + '"]')
        .setAttribute("aria-expanded", "true");
      if (action === "merge") {
        fillPrimary(openForm);
      }
      label(openForm);
      var first = openForm.querySelector("select, textarea, input");
      if (first) {
        first.focus();
      }
    }

    function clear() {
      picked = {};
      order = [];
      across = false;
      allOf = null;
      noteEl.hidden = true;
      if (!run || !run.busy) {
        // A batch being sent goes on (its report comes); one stopped is forgotten with the
        // ticks it would have resumed.
        run = null;
        resultEl.hidden = true;
        close();
      }
      last = null;
      refresh();
    }

    /* 选择全部: tick every case the filters match, in the queue's order. */
    function selectAll() {
      fetchingAll = true;
      note("");
      refresh();
      hooks.numbers().then(function (res) {
        fetchingAll = false;
        if (res === null) { // signed out: the page says so
          refresh();
          return;
        }
        var body = res.body || {};
        if (res.status === 400) {
          note(T.batchAllBadFilters);
        } else if (res.status !== 200 || !Array.isArray(body.cases)) {
          note(T.batchAllFailed);
        } else if (body.too_many) {
          note(format(T.batchAllTooMany, { n: body.total, max: body.max }));
        } else {
          picked = {};
          order = [];
          body.cases.forEach(function (item) {
            pick(item.number, item.summary, true);
          });
          across = true;
          allOf = order.length;
          last = null;
        }
        refresh();
      }, function () {
        fetchingAll = false;
        note(T.batchAllFailed);
        refresh();
      });
    }

    /* Back from 选择全部 to this page's cases. */
    function selectPage() {
      picked = {};
      order = [];
      across = false;
      allOf = null;
      boxes().forEach(function (box) {
        pick(box.value, box.dataset.summary, true);
      });
      refresh();
    }

    function reason(result) {
      var errors = result.errors || {};
      if (errors.detail) {
        return messages(errors.detail);
      }
      return Object.keys(errors).filter(function (name) {
        return name !== "status" && name !== "allowed_actions";
      }).map(function (name) {
        var fieldLabel = (T.fields && T.fields[name]) || name;
        return format(T.labelled, { label: fieldLabel, value: messages(errors[name]) });
      }).join(" ");
    }

    /* One report of a run, all its chunks summed: how many done, each case not done with its
     * reason; and, when it did not finish (`why`: "stopped", or "interrupted"), how many are
     * left, still ticked. */
    function report(r, why) {
      resultEl.innerHTML = "";
      var failed = r.results.filter(function (result) {
        return result.result !== "done";
      });
      var done = r.results.length - failed.length;
      resultEl.appendChild(el("p", "batch-done", r.into ?
        format(T.batchMerged, { action: r.label, done: done, into: r.into }) :
        format(T.batchDone, { action: r.label, done: done })));
      if (failed.length) {
        resultEl.appendChild(el("p", "batch-failed",
          format(T.batchFailed, { failed: failed.length })));
        var list = el("ul", "batch-failures");
        failed.forEach(function (result) {
          var item = el("li");
          var link = el("a", "case-link", result.number);
          link.href = "/command/cases/" + encodeURIComponent(result.number) + "/";
          item.appendChild(link);
          item.appendChild(document.createTextNode(format(T.batchReason,
            { reason: reason(result) })));
          list.appendChild(item);
        });
        resultEl.appendChild(list);
      }
      if (why) {
        resultEl.appendChild(el("p", "batch-left", format(
          why === "stopped" ? T.batchStopped : T.batchLeft, { n: unanswered(r).length })));
      }
      var dismiss = el("button", "button button-small button-quiet", T.dismiss);
      dismiss.type = "button";
      dismiss.addEventListener("click", function () {
        resultEl.hidden = true;
        refresh();
      });
      resultEl.appendChild(dismiss);
      resultEl.classList.toggle("has-failures", failed.length > 0 || Boolean(why));
      resultEl.hidden = false;
    }

    /* The run is over (every chunk answered) or stopped before its next chunk. */
    function finish() {
      var r = run;
      var form = r.form;
      r.busy = false;
      sending = {};
      if (r.at >= r.chunks.length) {
        run = null;
        if (r.into) {
          pick(r.into, "", false);
        }
        form.reset();
        close();
        report(r, null);
      } else {
        report(r, "stopped");
      }
      refresh();
      hooks.reload();
    }

    /* A chunk got no answer (`res` null: the network) or not a batch's answer (a 400 of the
     * whole batch, 409 while the same key is still at work, 5xx …): stop there. The run is kept:
     * submitting again resends from this chunk, with its key (the server answers what it did,
     * never does it twice). */
    function interrupt(res) {
      var r = run;
      var form = r.form;
      r.busy = false;
      sending = {};
      if (r.results.length) {
        report(r, "interrupted");
        hooks.reload();
      }
      refresh();
      if (res === null) {
        showError(form, "__all__", T.networkError);
      } else {
        showAnswer(form, res);
      }
    }

    function sendNext() {
      var r = run;
      if (r.at >= r.chunks.length || r.stopping) {
        finish();
        return;
      }
      var chunk = r.chunks[r.at];
      var body = { numbers: chunk.numbers };
      Object.keys(r.body).forEach(function (name) {
        body[name] = r.body[name];
      });
      label(r.form);
      api("POST", "/api/v1/incidents/batch/" + r.slug + "/", body, chunk.key).then(function (res) {
        if (res.status !== 200 || !res.body || !Array.isArray(res.body.results)) {
          interrupt(res);
          return;
        }
        r.at += 1;
        res.body.results.forEach(function (result) {
          r.results.push(result);
          delete sending[result.number];
          // Done cases are unticked at once; those not done stay ticked, to look at or try
          // again.
          if (result.result === "done") {
            pick(result.number, "", false);
          } else {
            r.failed.push(result.number);
          }
          hooks.touch(result.number);
        });
        refresh();
        sendNext();
      }, function () {
        interrupt(null);
      });
    }

    function submit(form) {
      if (run && run.busy) {
        return;
      }
      clearErrors(form);
      var body = fields(form);
      if (form.dataset.batchForm === "merge" && order.length < 2) {
        showError(form, "__all__", T.batchMergeNeedsTwo);
        return;
      }
      if (!resumable(form, body)) {
        var numbers = targets(form, body);
        run = {
          form: form,
          slug: form.dataset.slug,
          label: form.dataset.label,
          body: body,
          signature: JSON.stringify(body),
          into: form.dataset.batchForm === "merge" ? body.into : "",
          chunks: [],
          at: 0,
          results: [],
          failed: [],
          total: numbers.length
        };
        for (var i = 0; i < numbers.length; i += chunkSize) {
          run.chunks.push({ numbers: numbers.slice(i, i + chunkSize), key: newKey() });
        }
      }
      run.busy = true;
      run.stopping = false;
      allOf = null; // cases are acted on: the ticks will no longer be "all that match"
      unanswered(run).forEach(function (number) {
        sending[number] = true;
      });
      resultEl.hidden = true;
      refresh();
      sendNext();
    }

    queueEl.addEventListener("click", function (event) {
      var box = event.target.closest("input[data-pick]");
      if (!box) {
        return;
      }
      var list = boxes();
      var at = list.indexOf(box);
      if (event.shiftKey && last !== null && list[last]) {
        for (var i = Math.min(last, at); i <= Math.max(last, at); i += 1) {
          list[i].checked = box.checked;
          pick(list[i].value, list[i].dataset.summary, box.checked);
        }
        allOf = null;
        refresh();
      }
      last = at;
    });
    queueEl.addEventListener("change", function (event) {
      var box = event.target;
      if (box.matches("input[data-pick]")) {
        pick(box.value, box.dataset.summary, box.checked);
      } else if (box.matches("input[data-pick-all]")) {
        if (!box.checked && allOf !== null) {
          clear(); // as it was ticked, every matching case was: unticking it unticks them all
          return;
        }
        boxes().forEach(function (each) {
          each.checked = box.checked;
          pick(each.value, each.dataset.summary, box.checked);
        });
      } else {
        return;
      }
      allOf = null;
      noteEl.hidden = true;
      refresh();
    });
    bar.addEventListener("click", function (event) {
      var button = event.target.closest("[data-batch-action]");
      if (button) {
        var same = openForm && openForm.dataset.batchForm === button.dataset.batchAction;
        if (same) {
          close();
        } else {
          open(button.dataset.batchAction);
        }
      } else if (event.target.closest("[data-batch-all-button]")) {
        if (allButton.dataset.choose === "all") {
          selectAll();
        } else {
          selectPage();
        }
      } else if (event.target.closest("[data-batch-stop]")) {
        if (run && run.busy) {
          run.stopping = true;
          label(run.form);
        }
      } else if (event.target.closest("[data-batch-clear]")) {
        clear();
      } else if (event.target.closest("[data-batch-cancel]")) {
        close();
      }
    });
    bar.addEventListener("submit", function (event) {
      event.preventDefault();
      submit(event.target);
    });
    // A changed field makes another batch (new keys): the button says so at once.
    bar.addEventListener("input", function (event) {
      var form = event.target.closest("form[data-batch-form]");
      if (form && form === openForm) {
        label(form);
      }
    });

    return {
      clear: clear,
      // Whether the ticks were taken from every page of the filters (a change of page keeps
      // them then).
      across: function () {
        return across;
      },
      // After the queue was fetched again: tick what is still listed. With the ticks taken from
      // this page, one that left it is unticked, and the bar says so.
      redraw: function () {
        // Ticks taken across the pages (选择全部) all stay: most are on no page shown, so that
        // one is not on this page says nothing about it, and asking the server again at every
        // live event (many a minute in a surge, for each console open) would silently change
        // what the operator chose. A case someone else has moved on meanwhile is then answered
        // in the report as not done (409, with its status now): said, not hidden.
        if (across) {
          last = null;
          refresh();
          return;
        }
        var listed = {};
        boxes().forEach(function (box) {
          listed[box.value] = true;
        });
        var gone = order.filter(function (number) {
          return !listed[number] && !sending[number];
        });
        gone.forEach(function (number) {
          pick(number, "", false);
        });
        if (gone.length) {
          note(format(T.batchDropped, { n: gone.length }));
        }
        last = null;
        refresh();
      }
    };
  }

  /* Forms opened from one row of a queue (协办反馈 on a department's: console_row_forms.html):
   * a dialog outside the queue, so that a live reload of the queue does not take what is being
   * written. The answer to a refusal is shown in the dialog, each field's beside it; a success
   * closes it. Returns the function that opens the form of a row's button; `hooks.done(number,
   * label)` after a success, `hooks.stale(number)` after a 404 or 409 (the row has changed). */
  function setupRowForms(hooks) {
    var dialogs = {};
    document.querySelectorAll("dialog[data-row-form]").forEach(function (dialog) {
      var form = dialog.querySelector("form");
      var button = form.querySelector("button[type=submit]");
      dialogs[dialog.dataset.rowForm] = dialog;
      dialog.querySelector("[data-row-form-cancel]").addEventListener("click", function () {
        dialog.close();
      });
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        var number = form.dataset.number;
        clearErrors(form);
        if (saysWhatIsMissing(form)) {
          return;
        }
        if (!form.dataset.key) {
          form.dataset.key = newKey(); // the same key on every retry of this submission
        }
        button.disabled = true;
        form.classList.add("is-busy");
        var url = "/api/v1/incidents/" + encodeURIComponent(number) + "/" +
          form.dataset.slug + "/";
        api("POST", url, collect(form), form.dataset.key).then(function (res) {
          delete form.dataset.key; // an answer came: a corrected request is a new one
          button.disabled = false;
          form.classList.remove("is-busy");
          if (res.ok) {
            form.reset();
            dialog.close();
            hooks.done(number, form.dataset.label);
            return;
          }
          showAnswer(form, res);
          if (res.status === 404 || res.status === 409) {
            hooks.stale(number);
          }
        }, function () {
          button.disabled = false;
          form.classList.remove("is-busy");
          showError(form, "__all__", T.networkError);
        });
      });
    });

    return function open(opener) {
      var dialog = dialogs[opener.dataset.rowForm];
      if (!dialog) {
        return;
      }
      var form = dialog.querySelector("form");
      if (form.dataset.number !== opener.dataset.number) { // another case: a blank form
        form.reset();
        clearErrors(form);
        delete form.dataset.key;
        form.dataset.number = opener.dataset.number;
      }
      dialog.querySelector("[data-row-number]").textContent = opener.dataset.number;
      dialog.querySelector("[data-row-summary]").textContent = opener.dataset.summary || "";
      dialog.showModal();
      var first = form.querySelector("textarea, input, select");
      if (first) {
        first.focus();
      }
    };
  }

  // ---------------------------------------------------------------------------------------------
  // Queues

  // What a queue's chips pick (command.views.consoles._chips): its status, a department's share
  // (承办 or 协办), the overdue cases, the cases in an emergency response.
  var CHIP_PICKS = ["status", "share", "overdue", "response"];

  function setupQueue(queueEl) {
    var filtersEl = document.getElementById("queue-filters");
    var match = readJson("console-match") || {};
    var query = window.location.search.replace(/^\?/, "");
    var loading = null;
    var again = false;
    var touched = {};
    var errorEl = document.getElementById("queue-error");
    var noticeEl = document.getElementById("queue-notice");
    var noticeTimer = null;
    var openRowForm = setupRowForms({
      done: function (number, label) {
        touched[number] = true;
        reload();
        if (noticeEl) {
          noticeEl.textContent = number + ": " + format(T.done, { action: label });
          noticeEl.hidden = false;
          window.clearTimeout(noticeTimer);
          noticeTimer = window.setTimeout(function () {
            noticeEl.hidden = true;
          }, 8000);
        }
      },
      stale: function (number) {
        touched[number] = true;
        reload();
      }
    });
    var batch = setupBatch(queueEl, {
      reload: function () {
        return reload();
      },
      touch: function (number) {
        touched[number] = true;
      },
      // How many cases the queue's filters match (its 共 N 件).
      total: function () {
        var summary = queueEl.querySelector("[data-total]");
        return summary ? parseInt(summary.dataset.total, 10) || 0 : 0;
      },
      // 选择全部: the numbers of every case the filters match (consoles._queue_numbers).
      // Resolves {status, body}, or null when the session has ended (the page says so).
      numbers: function () {
        var params = new URLSearchParams(query);
        params.delete("page");
        params.set("fragment", "numbers");
        return fetch(window.location.pathname + "?" + params.toString(), {
          credentials: "same-origin",
          headers: { Accept: "application/json" }
        }).then(function (response) {
          if (signedOutBy(response)) {
            return null;
          }
          return response.json().then(function (body) {
            return { status: response.status, body: body };
          }, function () {
            return { status: response.status, body: {} };
          });
        });
      }
    });

    function shown() {
      var numbers = {};
      queueEl.querySelectorAll("tr[data-number]").forEach(function (row) {
        numbers[row.dataset.number] = row.dataset.status;
      });
      return numbers;
    }

    function fragmentUrl() {
      var params = new URLSearchParams(query);
      params.set("fragment", "queue");
      return window.location.pathname + "?" + params.toString();
    }

    /* Fetch the queue again; rows of `touched` cases are marked (new or changed). Resolves the
     * seqs of the new snapshot. */
    function reload() {
      if (loading) {
        again = true;
        return loading;
      }
      var before = shown();
      loading = fetch(fragmentUrl(), { credentials: "same-origin", headers: BACKGROUND_HTML })
        .then(function (response) {
          if (signedOutBy(response)) {
            return null;
          }
          return response.text().then(function (html) {
            if (response.status !== 200 && response.status !== 400) {
              throw new Error("HTTP " + response.status);
            }
            queueEl.innerHTML = html;
            state.refreshes += 1;
            if (batch) {
              batch.redraw();
            }
            queueEl.querySelectorAll("tr[data-number]").forEach(function (row) {
              var number = row.dataset.number;
              if (touched[number]) {
                row.classList.add(before[number] === undefined ? "is-new" : "is-changed");
                if (before[number] === undefined) {
                  var badge = el("span", "badge badge-new", T.newCase);
                  row.querySelector(".col-number").appendChild(badge);
                }
              }
            });
            touched = {};
            tick();
            var snapshot = readJson("queue-feed");
            return snapshot ? snapshot.seqs : null;
          });
        })
        .catch(function () {
          if (errorEl) {
            errorEl.textContent = T.refreshFailed;
            errorEl.hidden = false;
          }
          return null;
        })
        .then(function (seqs) {
          loading = null;
          if (again) {
            again = false;
            reload();
          }
          return seqs;
        });
      return loading;
    }
    state.reloadQueue = reload;

    // The query without what only pages through the same cases.
    function filtersOf(text) {
      var params = new URLSearchParams(text);
      params.delete("page");
      params.delete("size");
      params.sort();
      return params.toString();
    }

    function go(newQuery) {
      var before = query;
      query = newQuery.replace(/^\?/, "");
      // Other filters untick every case; another page (or page size) of the same filters only
      // the ticks of the page left, not those taken from every page (选择全部).
      if (batch && !(batch.across() && filtersOf(before) === filtersOf(query))) {
        batch.clear();
      }
      var url = window.location.pathname + (query ? "?" + query : "");
      window.history.replaceState(null, "", url);
      return reload();
    }

    function formQuery() {
      var params = new URLSearchParams();
      new FormData(filtersEl).forEach(function (value, name) {
        value = String(value).trim();
        var isDefault = (name === "status" && value === "open") ||
          (name === "order" && value === "deadline") ||
          (name === "size" && value === filtersEl.elements.size.options[0].value);
        if (value && !isDefault) {
          params.set(name, value);
        }
      });
      // A chip's pick the form has no field for (a department's 协办: share) stays while the
      // other filters change; 重置 drops it.
      var current = new URLSearchParams(query);
      CHIP_PICKS.forEach(function (name) {
        if (!filtersEl.elements[name] && current.get(name)) {
          params.set(name, current.get(name));
        }
      });
      return params.toString();
    }

    if (filtersEl) {
      filtersEl.addEventListener("submit", function (event) {
        event.preventDefault();
        filtersEl.querySelectorAll(".field-error").forEach(function (node) {
          node.remove();
        });
        go(formQuery());
      });
      filtersEl.querySelectorAll("select, input[type=date]").forEach(function (field) {
        field.addEventListener("change", function () {
          go(formQuery());
        });
      });
      var reset = filtersEl.querySelector("a.button-quiet");
      if (reset) {
        reset.addEventListener("click", function (event) {
          event.preventDefault();
          filtersEl.reset();
          filtersEl.querySelectorAll("select").forEach(function (select) {
            select.selectedIndex = 0;
          });
          ["q", "since", "until"].forEach(function (name) {
            filtersEl.elements[name].value = "";
          });
          go("");
        });
      }
    }

    // Chips and the pager change the query without leaving the page.
    queueEl.addEventListener("click", function (event) {
      var link = event.target.closest("a.chip, .pager a");
      if (link) {
        event.preventDefault();
        var href = link.getAttribute("href");
        go(href.slice(href.indexOf("?") + 1));
        if (filtersEl) {
          // The form shows what the chip picked, where it has a field for it.
          var params = new URLSearchParams(query);
          CHIP_PICKS.forEach(function (name) {
            var field = filtersEl.elements[name];
            if (field) {
              field.value = params.get(name) || (name === "status" ? "open" : "");
            }
          });
        }
        return;
      }
      var quick = event.target.closest("button[data-quick-action]");
      if (quick) {
        quickAction(quick);
      }
      var opener = event.target.closest("button[data-row-form]");
      if (opener) {
        openRowForm(opener);
      }
    });

    function quickAction(button) {
      var number = button.dataset.number;
      var key = button.dataset.key || newKey();
      button.dataset.key = key;
      button.disabled = true;
      var url = "/api/v1/incidents/" + encodeURIComponent(number) + "/" +
        button.dataset.quickAction + "/";
      api("POST", url, {}, key).then(function (res) {
        delete button.dataset.key;
        if (res.ok) {
          touched[number] = true;
          reload();
        } else {
          button.disabled = false;
          if (errorEl) {
            errorEl.textContent = number + ": " + (res.body.detail || T.failed);
            errorEl.hidden = false;
          }
        }
      }, function () {
        button.disabled = false;
        if (errorEl) {
          errorEl.textContent = T.networkError;
          errorEl.hidden = false;
        }
      });
    }

    function concerns(incident, numbers) {
      if (numbers[incident.number] !== undefined) {
        return true;
      }
      return Object.keys(match).every(function (key) {
        if (key === "department" && (incident.supports || []).indexOf(match.department) >= 0) {
          return true; // a case the department was called out on (协办) is in its queue too
        }
        return incident[key] === match[key];
      });
    }

    // While the pointer is over the queue, what the live feed changes waits (at most
    // HOLD_MAX_MS), so the row under it does not move as it is clicked; a note at the foot of
    // the window says so and applies it at once when clicked. Leaving the queue applies it too.
    var HOLD_MAX_MS = 15000;
    var pointerInside = false;
    var holdTimer = null;
    var heldEl = el("button", "queue-held", T.queueHeld);
    heldEl.type = "button";
    heldEl.hidden = true;
    heldEl.dataset.testid = "queue-held";
    queueEl.parentNode.insertBefore(heldEl, queueEl);

    function applyHeld() {
      if (holdTimer === null) {
        return;
      }
      window.clearTimeout(holdTimer);
      holdTimer = null;
      heldEl.hidden = true;
      reload();
    }

    function liveReload() {
      if (!pointerInside) {
        reload();
      } else if (holdTimer === null) {
        heldEl.hidden = false;
        holdTimer = window.setTimeout(applyHeld, HOLD_MAX_MS);
      }
    }

    queueEl.addEventListener("pointerenter", function () {
      pointerInside = true;
    });
    queueEl.addEventListener("pointerleave", function () {
      pointerInside = false;
      applyHeld();
    });
    heldEl.addEventListener("click", applyHeld);

    var duty = setupDuty();

    connectFeed({
      storageKey: "console:" + window.location.pathname,
      onEvents: function (events) {
        var numbers = shown();
        var relevant = false;
        events.forEach(function (event) {
          var incident = incidentOf(event);
          if (incident.number && concerns(incident, numbers)) {
            touched[incident.number] = true;
            relevant = true;
          }
        });
        if (relevant) {
          liveReload();
        }
        if (duty) {
          duty.apply(events);
        }
      },
      // After a resync: the queue (whose snapshot brings the feed's position), then the
      // responders.
      reload: reloadThenPanel(reload, duty)
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Responders' positions: 在岗响应人员 on a street's / community's console, 附近的响应人员 on
  // a case page. Both keep a list from the page's snapshot, the live events
  // (dispatch.responder_moved / responder_cleared) and, after a resync, the API's list.

  /* "3 分钟前" (the server words it the same way: consoles._ago). */
  function agoText(ms) {
    var minutes = Math.floor(ms / 60000);
    if (minutes < 1) {
      return T.justNow;
    }
    if (minutes < 60) {
      return format(T.minutesAgo, { n: minutes });
    }
    return format(T.hoursAgo, { n: Math.floor(minutes / 60) });
  }

  /* The server's clock, from the page's `now` (the browser's own may be off). */
  function serverClock(nowText) {
    var offset = (Date.parse(nowText) || Date.now()) - Date.now();
    return {
      now: function () {
        return Date.now() + offset;
      },
      set: function (ms) {
        offset = ms - Date.now();
      }
    };
  }

  function responderFrom(data) {
    return {
      id: data.id,
      name: data.name || "",
      role: data.role || "",
      lon: Number(data.lon),
      lat: Number(data.lat),
      at: Date.parse(data.at),
      atText: data.at,
      grid: data.grid || { code: "", name: "" },
      community: data.community || { code: "", name: "" },
      street: data.street || { code: "", name: "" }
    };
  }

  /* The positions a panel lists. `keep(r)` says whether a position belongs to it (and may add
   * to r, e.g. its distance). A position older than the newest one seen of the same responder
   * (listed or not) never replaces it: a replay after a resync. Positions past `maxAgeMs`
   * leave at the next `current()` (a phone that stopped reporting sends no event). */
  function responderSet(keep, maxAgeMs) {
    var listed = new Map();
    var newest = new Map(); // id → time of the newest position seen

    function take(data) {
      var r = responderFrom(data);
      var seen = newest.get(r.id);
      if (isNaN(r.at) || (seen !== undefined && r.at < seen)) {
        return false;
      }
      newest.set(r.id, r.at);
      if (keep(r)) {
        listed.set(r.id, r);
        return true;
      }
      return listed.delete(r.id); // moved out (within what this user sees): it leaves
    }

    return {
      replaceAll: function (list) {
        listed = new Map();
        list.forEach(take);
      },
      /* Live events; true when the list changed. */
      apply: function (events) {
        var changed = false;
        events.forEach(function (event) {
          var responder = event.payload && event.payload.responder;
          if (!responder || responder.id === undefined || responder.id === null) {
            return;
          }
          if (event.event_type === "dispatch.responder_cleared") {
            changed = listed.delete(responder.id) || changed;
          } else if (event.event_type === "dispatch.responder_moved") {
            changed = take(responder) || changed;
          }
        });
        return changed;
      },
      /* The listed positions still fresh at server time `at` (the others leave). */
      current: function (at) {
        var fresh = [];
        listed.forEach(function (r, id) {
          if (at - r.at <= maxAgeMs) {
            fresh.push(r);
          } else {
            listed.delete(id);
          }
        });
        return fresh;
      }
    };
  }

  /* After a resync: the positions the user may see, again (into `replaceAll`). */
  function reloadResponders(url, replaceAll) {
    return api("GET", url).then(function (res) {
      if (!res.ok || !Array.isArray(res.body.results)) {
        return false;
      }
      replaceAll(res.body.results);
      return true;
    }, function () {
      return false;
    });
  }

  /* What the two responder panels share. `o.config` is the page's panel config (the server's
   * `now`, the positions at load, `maxAgeMinutes`, `listUrl`), `o.panel` the panel, holding
   * `.<o.kind>-list` and `.<o.kind>-empty`. The positions `o.accepts` are kept (fresh for
   * `maxAgeMinutes`) and drawn in `o.order` (at most `o.limit`) with `o.row(r, at)`, the empty
   * text when none, `o.drawn(shown)` after each drawing; drawn again on live events, every 30 s
   * (the "ago" texts, positions ageing out) and after a reload from `listUrl`. */
  function responderPanel(o) {
    var listEl = o.panel.querySelector("." + o.kind + "-list");
    var emptyEl = o.panel.querySelector("." + o.kind + "-empty");
    var clock = serverClock(o.config.now);
    var responders = responderSet(o.accepts, (o.config.maxAgeMinutes || 30) * 60000);

    function render() {
      var at = clock.now();
      var shown = responders.current(at).sort(o.order);
      if (o.limit) {
        shown = shown.slice(0, o.limit);
      }
      listEl.textContent = "";
      shown.forEach(function (r) {
        listEl.appendChild(o.row(r, at));
      });
      listEl.hidden = !shown.length;
      emptyEl.hidden = shown.length > 0;
      o.drawn(shown);
    }

    function replaceAll(list) {
      responders.replaceAll(list);
      render();
    }

    replaceAll(o.config.responders || []);
    window.setInterval(render, 30000);
    return {
      render: render,
      apply: function (events) {
        if (responders.apply(events)) {
          render();
        }
      },
      reload: function () {
        return reloadResponders(o.config.listUrl, replaceAll);
      },
      setClock: function (ms) {
        clock.set(ms);
        render();
      }
    };
  }

  /* A page's resync: its own `reload()` (whose answer, the feed's position, resolves `seqs`),
   * then the responder `panel`'s list (null when the page has none), read after that position
   * so the events since then are replayed over it. Resolves `seqs`, or null when either
   * failed. */
  function reloadThenPanel(reload, panel) {
    return function () {
      return reload().then(function (seqs) {
        if (!seqs || !panel) {
          return seqs;
        }
        return panel.reload().then(function (ok) {
          return ok ? seqs : null;
        });
      });
    };
  }

  function roleText(role) {
    return (T.responderRoles && T.responderRoles[role]) || role;
  }

  // 在岗响应人员: the responders sharing a position inside this street / community

  function setupDuty() {
    var config = readJson("duty-config");
    var panel = document.getElementById("duty-responders");
    if (!config || !panel) {
      return null;
    }
    var countEl = panel.querySelector(".duty-count");
    var match = config.match || {};
    var level = match.street ? "street" : "community";
    var code = match[level];

    function row(r, at) {
      var item = el("li", "duty-item");
      item.dataset.responder = String(r.id);
      item.appendChild(el("span", "duty-name", r.name));
      item.appendChild(el("span", "duty-role duty-role-" + r.role, roleText(r.role)));
      var grid = el("span", "duty-grid", r.grid.name || r.grid.code);
      grid.title = r.grid.code;
      item.appendChild(grid);
      var ago = el("time", "duty-ago", agoText(at - r.at));
      ago.setAttribute("datetime", r.atText);
      item.appendChild(ago);
      return item;
    }

    /* By grid code, then name (as the server orders it). */
    function order(a, b) {
      if (a.grid.code !== b.grid.code) {
        return a.grid.code < b.grid.code ? -1 : 1;
      }
      if (a.name !== b.name) {
        return a.name < b.name ? -1 : 1;
      }
      return a.id - b.id;
    }

    var life = responderPanel({
      config: config,
      panel: panel,
      kind: "duty",
      accepts: function (r) {
        return Boolean(r[level]) && r[level].code === code;
      },
      row: row,
      order: order,
      drawn: function (shown) {
        countEl.textContent = String(shown.length);
        state.duty = shown.map(function (r) {
          return r.id;
        });
      }
    });
    state.dutyReload = life.reload;
    // Tests: show the list as it will look at the server time `ms` (ticking, ageing out).
    state.dutyClock = life.setClock;
    return { apply: life.apply, reload: life.reload };
  }

  // 附近的响应人员: the responders sharing a position within the radius of a case

  /* Great-circle distance in metres (incidents.selectors.haversine_m, the same radius). */
  function haversineM(lon1, lat1, lon2, lat2, radiusM) {
    var rad = Math.PI / 180;
    var phi1 = lat1 * rad;
    var phi2 = lat2 * rad;
    var dphi = phi2 - phi1;
    var dlambda = (lon2 - lon1) * rad;
    var a = Math.pow(Math.sin(dphi / 2), 2) +
      Math.cos(phi1) * Math.cos(phi2) * Math.pow(Math.sin(dlambda / 2), 2);
    return 2 * radiusM * Math.asin(Math.min(1, Math.sqrt(a)));
  }

  /* Python's round(): halves to the even neighbour (Math.round takes them up). */
  function roundHalfEven(x) {
    var floor = Math.floor(x);
    var diff = x - floor;
    if (diff === 0.5) {
      return floor % 2 === 0 ? floor : floor + 1;
    }
    return Math.round(x);
  }

  /* "40 米", "2.4 公里" as consoles._distance_text words it: "%.1f" of the kilometres, which
   * takes an exact half (metres ending in 250 or 750) to the even tenth where toFixed would
   * take it up. */
  function distanceText(metres) {
    if (metres < 1000) {
      return format(T.nearbyMetres, { m: metres });
    }
    var km = (metres / 1000).toFixed(1);
    if (metres % 500 === 250) {
      var tenths = Math.floor(metres / 100);
      km = ((tenths % 2 === 0 ? tenths : tenths + 1) / 10).toFixed(1);
    }
    return format(T.nearbyKilometres, { km: km });
  }

  function setupNearby() {
    var config = readJson("case-nearby-config");
    var panel = document.getElementById("case-responders");
    if (!config || !panel) {
      return null;
    }
    var hhmm = new Intl.DateTimeFormat("en-GB", {
      hour: "2-digit",
      minute: "2-digit",
      hourCycle: "h23",
      timeZone: config.timeZone || undefined
    });
    var map = null;
    var marks = new Map(); // id → its circle on the case map

    function row(r, at) {
      var item = el("li");
      item.dataset.responder = String(r.id);
      item.appendChild(el("span", "nearby-name", r.name));
      item.appendChild(el("span", "nearby-distance", distanceText(r.distanceM)));
      var where = el("span", "muted nearby-where",
        [r.grid.name || r.grid.code, roleText(r.role)].join(" · ") + " · ");
      var ago = el("time", "nearby-ago", agoText(at - r.at));
      ago.setAttribute("datetime", r.atText);
      ago.title = format(T.reportedAt, { at: hhmm.format(new Date(r.at)) });
      where.appendChild(ago);
      item.appendChild(where);
      // A row shows its responder beside the case on the map (click, or Enter when focused).
      item.tabIndex = 0;
      item.title = T.showOnMap;
      item.addEventListener("click", function () {
        showOnMap(r.id);
      });
      item.addEventListener("keydown", function (event) {
        if (event.key === "Enter") {
          showOnMap(r.id);
        }
      });
      return item;
    }

    /* The map shows the case's community; a listed responder outside the view widens it, until
     * the user moves or zooms the map (from then on the view is theirs). */
    var home = null; // the community's bounds and the case
    var userView = false;

    function fit(bounds) {
      map.fitBounds(bounds, { padding: [24, 24], animate: false });
    }

    function keepInView(shown) {
      if (!map || !home || userView) {
        return;
      }
      var view = map.getBounds();
      var out = shown.some(function (r) {
        return !view.contains([r.lat, r.lon]);
      });
      if (!out) {
        return;
      }
      var bounds = L.latLngBounds(home.getSouthWest(), home.getNorthEast());
      shown.forEach(function (r) {
        bounds.extend([r.lat, r.lon]);
      });
      fit(bounds);
    }

    function showOnMap(id) {
      var mark = marks.get(id);
      if (!map || !mark) {
        return;
      }
      userView = true;
      fit(L.latLngBounds([[config.lat, config.lon], mark.getLatLng()]).pad(0.25));
      marks.forEach(function (other) {
        other.closeTooltip();
      });
      mark.openTooltip();
    }

    function syncMarks(shown) {
      if (!map) {
        return;
      }
      var keep = new Set();
      shown.forEach(function (r) {
        keep.add(r.id);
        var tip = r.name + " · " + distanceText(r.distanceM);
        var mark = marks.get(r.id);
        if (mark) {
          mark.setLatLng([r.lat, r.lon]);
          mark.setTooltipContent(tip);
          return;
        }
        mark = L.circleMarker([r.lat, r.lon], {
          pane: "marks",
          radius: 6,
          weight: 2,
          color: "#0e7490",
          fillColor: "#22d3ee",
          fillOpacity: 1,
          className: "responder-mark"
        }).bindTooltip(tip).addTo(map);
        marks.set(r.id, mark);
      });
      marks.forEach(function (mark, id) {
        if (!keep.has(id)) {
          mark.remove();
          marks.delete(id);
        }
      });
      keepInView(shown);
    }

    /* Nearest first (a tie by id); the nearest `config.shown` of them are listed, each with its
     * mark on the map. */
    var life = responderPanel({
      config: config,
      panel: panel,
      kind: "nearby",
      accepts: function (r) {
        var distance = haversineM(config.lon, config.lat, r.lon, r.lat, config.earthRadiusM);
        r.distanceM = roundHalfEven(distance);
        return distance <= config.radiusM; // as dispatch.selectors.responders_near
      },
      row: row,
      order: function (a, b) {
        return a.distanceM !== b.distanceM ? a.distanceM - b.distanceM : a.id - b.id;
      },
      limit: config.shown || 5,
      drawn: function (shown) {
        syncMarks(shown);
        state.nearby = shown.map(function (r) {
          return r.id;
        });
      }
    });
    state.nearbyReload = life.reload;
    state.nearbyApply = life.apply;
    // Tests: show the list as it will look at the server time `ms` (ticking, ageing out).
    state.nearbyClock = life.setClock;
    return {
      apply: life.apply,
      reload: life.reload,
      /* The case map is ready (showing `bounds`, the case's community): the marks go on it,
       * and the view widens to the listed responders. */
      attachMap: function (leafletMap, bounds) {
        map = leafletMap;
        home = L.latLngBounds(bounds ? [bounds.getSouthWest(), bounds.getNorthEast()] : []);
        home.extend([config.lat, config.lon]);
        // The user's own moves: a drag, the wheel, a double click or pinch, the keyboard, the
        // zoom buttons (Leaflet's zoomstart fires for the page's own fits too).
        var container = map.getContainer();
        function theirs() {
          userView = true;
        }
        map.on("dragstart", theirs);
        ["wheel", "dblclick", "touchstart", "keydown"].forEach(function (type) {
          container.addEventListener(type, theirs, { passive: true });
        });
        container.addEventListener("click", function (event) {
          if (event.target.closest(".leaflet-control-zoom")) {
            theirs();
          }
        });
        life.render();
      }
    };
  }

  // ---------------------------------------------------------------------------------------------
  // The case page

  function setupCase() {
    var config = readJson("case-config");
    var noticeEl = document.getElementById("case-notice");
    var photosEl = document.querySelector("#case-photos .photos-body");
    var duplicatesEl = document.querySelector("#case-duplicates .duplicates-body");
    var loading = null;
    var again = false;

    var noticeTimer = null;

    function notice(text) {
      noticeEl.textContent = text;
      noticeEl.hidden = !text;
      window.clearTimeout(noticeTimer);
      if (text && text !== T.saving) {
        noticeTimer = window.setTimeout(function () {
          notice("");
        }, 8000);
      }
    }

    /* Fetch the case's state again: the main column always; the action forms only when the
     * actions the user may take changed (so a form being filled in is not wiped by an event
     * that did not change what can be done). */
    function reload() {
      if (state.caseGone) {
        return Promise.resolve(null);
      }
      if (loading) {
        again = true;
        return loading;
      }
      loading = fetch(config.fragmentUrl, {
        credentials: "same-origin",
        headers: BACKGROUND_HTML
      }).then(function (response) {
        if (signedOutBy(response)) {
          throw new Error("signed out"); // the banner says so; the page is left as it was
        }
        if (response.status === 404) {
          return null; // out of the user's view now
        }
        if (!response.ok) {
          throw new Error("HTTP " + response.status);
        }
        return response.text();
      }).then(function (html) {
        if (html === null) {
          gone();
          return null;
        }
        var doc = new DOMParser().parseFromString(html, "text/html");
        var main = doc.getElementById("case-main");
        var actions = doc.getElementById("case-actions");
        var oldActions = document.getElementById("case-actions");
        document.getElementById("case-main").replaceWith(document.adoptNode(main));
        if (oldActions.dataset.actions !== actions.dataset.actions) {
          oldActions.replaceWith(document.adoptNode(actions));
        } else {
          // The same forms stay, with what may be being written in them; what the card only
          // shows is drawn anew: the departments called out, their arrivals and reports.
          var shownList = document.getElementById("called-out");
          var newList = doc.getElementById("called-out");
          if (shownList) {
            shownList.remove();
          }
          if (newList) {
            oldActions.appendChild(document.adoptNode(newList));
          }
        }
        state.refreshes += 1;
        tick();
        loadDetail();
        var feed = doc.getElementById("case-feed");
        return feed ? JSON.parse(feed.textContent).seqs : null;
      }).catch(function () {
        notice(T.refreshFailed);
        return null;
      }).then(function (result) {
        loading = null;
        if (again) {
          again = false;
          reload();
        }
        return result;
      });
      return loading;
    }
    state.reloadCase = reload;

    /* The case has left the user's view (their department sent it back, it was dispatched
     * elsewhere): say so where the actions were, with the way back, instead of a refresh that
     * keeps failing and buttons that answer "no such case". */
    function gone() {
      state.caseGone = true;
      notice("");
      var card = el("section", "panel-card case-actions case-gone");
      card.id = "case-actions";
      card.dataset.actions = "";
      card.dataset.testid = "case-gone";
      card.setAttribute("role", "alert");
      card.appendChild(el("p", "", T.caseGone));
      if (config.consoleUrl) {
        var back = el("a", "button button-primary", T.backToConsole);
        back.href = config.consoleUrl;
        card.appendChild(back);
      }
      document.getElementById("case-actions").replaceWith(card);
      document.getElementById("case-main").classList.add("is-stale");
    }

    function renderPhotos(photos) {
      photosEl.textContent = "";
      if (!photos || !photos.length) {
        photosEl.appendChild(el("p", "muted", T.noPhotos));
        return;
      }
      var list = el("ul", "photo-list");
      photos.forEach(function (photo) {
        var item = el("li", "photo photo-" + photo.kind);
        var link = el("a");
        link.href = photo.original_url || photo.url;
        link.target = "_blank";
        link.rel = "noopener";
        var img = el("img");
        img.src = photo.url;
        img.alt = (T.photoKinds && T.photoKinds[photo.kind]) || photo.kind;
        img.loading = "lazy";
        if (photo.width && photo.height) {
          img.width = photo.width;
          img.height = photo.height;
        }
        link.appendChild(img);
        item.appendChild(link);
        var when = photo.created_at ? new Date(photo.created_at) : null;
        item.appendChild(el("span", "photo-caption", [img.alt, when ? stamp(when) : ""]
          .filter(Boolean).join(" · ")));
        list.appendChild(item);
      });
      photosEl.appendChild(list);
    }

    function renderDuplicates(duplicates, mayMerge) {
      renderDuplicateList(duplicatesEl, duplicates, config.caseUrl, mayMerge ? function (number) {
        var form = document.querySelector('form[data-action="merge"]');
        if (!form) {
          return;
        }
        form.elements.into.value = number;
        var details = form.closest("details");
        if (details) {
          details.open = true;
        }
        form.scrollIntoView({ block: "center" });
        form.querySelector("button[type=submit]").focus();
      } : null);
    }

    function loadDetail() {
      return api("GET", config.detailUrl).then(function (res) {
        if (!res.ok) {
          return;
        }
        state.detail = res.body;
        renderPhotos(res.body.photos);
        var actions = document.getElementById("case-actions").dataset.actions.split(",");
        renderDuplicates(res.body.possible_duplicates, actions.indexOf("merge") >= 0);
      });
    }

    document.addEventListener("submit", function (event) {
      var form = event.target.closest("form.action-form");
      if (!form) {
        return;
      }
      event.preventDefault();
      var button = form.querySelector("button[type=submit]");
      if (!form.dataset.key) {
        form.dataset.key = newKey(); // the same key on every retry of this submission
      }
      clearErrors(form);
      if (saysWhatIsMissing(form)) {
        return;
      }
      button.disabled = true;
      form.classList.add("is-busy");
      notice(T.saving);
      var url = config.detailUrl + form.dataset.slug + "/";
      api("POST", url, collect(form), form.dataset.key).then(function (res) {
        delete form.dataset.key; // an answer came: a corrected request is a new one
        button.disabled = false;
        form.classList.remove("is-busy");
        if (res.ok) {
          notice(format(T.done, { action: form.dataset.label }));
          state.lastAction = { action: form.dataset.action, status: res.body.status };
          var actions = document.getElementById("case-actions");
          actions.dataset.actions = "-"; // the forms are rebuilt from the new state
          reload();
          return;
        }
        notice("");
        showAnswer(form, res);
        if (res.status === 409 && res.body.allowed_actions !== undefined) {
          reload();
        }
      }, function () {
        button.disabled = false;
        form.classList.remove("is-busy");
        notice("");
        showError(form, "__all__", T.networkError);
      });
    });

    var nearby = setupNearby();
    var mapConfig = readJson("case-map-config");
    var mapEl = document.getElementById("case-map");
    if (mapEl && window.L && mapConfig) {
      var base = baseMap(mapEl, {
        regionsUrl: mapConfig.regionsUrl,
        generation: mapConfig.generation,
        street: mapConfig.street,
        community: mapConfig.community,
        lon: mapConfig.lon,
        lat: mapConfig.lat,
        zoom: 15
      });
      state.map = base.map;
      base.ready.then(function (layers) {
        var community = layers.communities[mapConfig.community];
        if (community) {
          base.map.fitBounds(community.getBounds(), { padding: [10, 10], animate: false });
        }
        if (mapConfig.gridUrl) {
          api("GET", mapConfig.gridUrl).then(function (res) {
            if (res.ok && res.body.geometry) {
              L.geoJSON(res.body, {
                pane: "marks",
                interactive: false,
                style: { color: "#c2410c", weight: 2, dashArray: "4 3", fillColor: "#f97316",
                  fillOpacity: 0.2 }
              }).addTo(base.map);
            }
          });
        }
        L.circleMarker([mapConfig.lat, mapConfig.lon], {
          pane: "marks",
          radius: 8,
          weight: 3,
          color: "#ffffff",
          fillColor: "#c2410c",
          fillOpacity: 1
        }).addTo(base.map);
        // Field staff sharing their position nearby (附近的响应人员, listed beside the map).
        if (nearby) {
          nearby.attachMap(base.map, community ? community.getBounds() : null);
        }
        state.mapReady = true;
      }).catch(function () {
        mapEl.classList.add("is-failed");
      });
    }

    loadDetail();
    connectFeed({
      storageKey: "case:" + config.number,
      onEvents: function (events) {
        if (nearby) {
          nearby.apply(events);
        }
        // Events of this case: its own steps, and a case merged into it or taken out of it
        // again (incidents.incident_merges_changed, about this case).
        var about = events.filter(function (event) {
          return incidentOf(event).number === config.number;
        });
        if (!about.length) {
          return;
        }
        // Someone else's step is announced; the echo of the user's own step is not.
        var others = about.some(function (event) {
          var payload = event.payload || {};
          var step = payload.transition || payload.merges;
          return !step || step.actor !== config.me;
        });
        if (others) {
          notice(T.caseChanged);
        }
        reload();
      },
      // After a resync: the case (whose fragment brings the feed's position), then the nearby
      // responders.
      reload: reloadThenPanel(reload, nearby)
    });
  }

  /* A list of possible duplicates (from the API: number, status, distance, created_at), each
   * linked to its case page, with a "merge into" button when `onMerge` is given. */
  function renderDuplicateList(container, duplicates, caseUrl, onMerge) {
    container.textContent = "";
    if (!duplicates || !duplicates.length) {
      container.appendChild(el("p", "muted", T.noDuplicates));
      return;
    }
    var list = el("ul", "duplicate-list");
    duplicates.forEach(function (dup) {
      var item = el("li", "duplicate");
      var link = el("a", "case-link", dup.number);
      link.href = caseUrl.replace("NUMBER", encodeURIComponent(dup.number));
      item.appendChild(link);
      var status = (T.statuses && T.statuses[dup.status]) || dup.status || "";
      var bits = [status];
      if (typeof dup.distance_m === "number") {
        bits.push(format(T.metres, { metres: Math.round(dup.distance_m) }));
      }
      if (dup.created_at) {
        bits.push(stamp(new Date(dup.created_at)));
      }
      item.appendChild(el("span", "duplicate-facts", bits.filter(Boolean).join(" · ")));
      if (onMerge && dup.number) {
        var button = el("button", "button button-small button-secondary", T.mergeInto);
        button.type = "button";
        button.dataset.mergeInto = dup.number;
        button.addEventListener("click", function () {
          onMerge(dup.number);
        });
        item.appendChild(button);
      }
      list.appendChild(item);
    });
    container.appendChild(list);
  }
  window.CityOpsConsole.renderDuplicateList = renderDuplicateList;

  // ---------------------------------------------------------------------------------------------
  // Start

  tick();
  window.setInterval(tick, 1000);
  var queueEl = document.getElementById("queue");
  if (queueEl) {
    setupQueue(queueEl);
  } else if (document.getElementById("case-config")) {
    setupCase();
  }
  state.ready = true;
}());
