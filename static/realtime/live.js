/*
 * CityOps live feed client (no build step; a classic script defining window.CityOpsLive).
 * Protocol: docs/realtime.md ("The live feed"), /ws/ served by realtime.consumers.
 *
 *   const feed = CityOpsLive.connect({
 *     url: "/ws/",                   // default
 *     storageKey: "wall",            // last seqs kept in sessionStorage between reconnects
 *     scopes: ["district:440309"],   // optional subset of what the server allows
 *     onEvents(events, {replay}) {}, // de-duplicated, in order per scope
 *     onStatus(state) {},            // "connecting" | "live" | "interrupted" | "resyncing"
 *                                    // | "signedout" (with onSignedOut)
 *     onResyncRequired(scope, reason) {}, // reload the HTTP snapshot, then feed.snapshotLoaded(seqs)
 *     onSignedOut() {},              // optional: the server closed the socket because nobody is
 *                                    // signed in any more (4401: the session ended after its idle
 *                                    // limit, or was signed out elsewhere); the feed then stops
 *                                    // instead of reconnecting, and the page says so
 *   });
 *   feed.snapshotLoaded(seqs);       // {"<scope>": seq} from the page's snapshot
 *   feed.close();                    // stop for good
 *
 * What it does: sends hello with the last sequence number seen per scope (so the server replays
 * what was missed), drops events it already has, and asks for a resync when a number is
 * skipped, when a heartbeat counts events it has not seen, or when the heartbeat's epoch changes
 * (the server's Redis lost its data). Reconnects with exponential backoff and jitter (1 s … 30 s).
 * The status is "interrupted" while disconnected, or while the server reports its channel layer
 * down (events then still arrive, from the database, but later): pages show a visible
 * "实时连接中断 live feed interrupted" banner for it.
 */
(function (global) {
  "use strict";

  var BACKOFF_MIN_MS = 1000;
  var BACKOFF_MAX_MS = 30000;
  // The server sends a heartbeat at least every 20 s; silence longer than this means the
  // connection is dead even if the browser has not noticed (mobile networks).
  var SILENCE_MS = 45000;
  // The server closes a socket that sends more than 5 messages a second.
  var RESYNC_MIN_INTERVAL_MS = 1000;
  // The server's close code for a socket nobody is signed in to (realtime.consumers).
  var CLOSE_NOT_SIGNED_IN = 4401;

  function memoryStorage() {
    var data = {};
    return {
      getItem: function (k) { return Object.prototype.hasOwnProperty.call(data, k) ? data[k] : null; },
      setItem: function (k, v) { data[k] = String(v); },
    };
  }

  function sessionStore() {
    try {
      var probe = "cityops.live.probe";
      global.sessionStorage.setItem(probe, "1");
      global.sessionStorage.removeItem(probe);
      return global.sessionStorage;
    } catch (e) {
      return memoryStorage();
    }
  }

  function absoluteUrl(path) {
    if (/^wss?:\/\//.test(path)) return path;
    var scheme = global.location.protocol === "https:" ? "wss://" : "ws://";
    return scheme + global.location.host + path;
  }

  function connect(options) {
    options = options || {};
    var url = absoluteUrl(options.url || "/ws/");
    var storage = sessionStore();
    var storageKey = "cityops.live." + (options.storageKey || "default");
    var onEvents = options.onEvents || function () {};
    var onStatus = options.onStatus || function () {};
    var onResyncRequired = options.onResyncRequired || null;

    var saved = {};
    try { saved = JSON.parse(storage.getItem(storageKey) || "{}") || {}; } catch (e) { saved = {}; }
    var last = saved.last || {};          // scope → last seq applied
    var epoch = saved.epoch || null;      // the server's epoch when `last` was written
    var awaitingSnapshot = {};            // scope → true while the page reloads its snapshot
    var socket = null;
    var state = null;
    var welcomed = false;
    var layerDown = false;
    var closedForGood = false;
    var attempt = 0;
    var reconnectTimer = null;
    var silenceTimer = null;
    var lastResyncAt = 0;
    var resyncTimer = null;

    function save() {
      try { storage.setItem(storageKey, JSON.stringify({ last: last, epoch: epoch })); } catch (e) { /* full */ }
    }

    function setStatus(next) {
      if (next === state) return;
      state = next;
      try { onStatus(next); } catch (e) { if (global.console) global.console.error(e); }
    }

    function liveOrInterrupted() {
      setStatus(layerDown ? "interrupted" : "live");
    }

    function send(message) {
      if (socket && socket.readyState === 1) socket.send(JSON.stringify(message));
    }

    function lastForServer() {
      var out = {};
      Object.keys(last).forEach(function (scope) {
        if (!awaitingSnapshot[scope]) out[scope] = last[scope];
      });
      return out;
    }

    function resync() {
      var wait = lastResyncAt + RESYNC_MIN_INTERVAL_MS - Date.now();
      if (wait > 0) {
        if (!resyncTimer) resyncTimer = global.setTimeout(function () { resyncTimer = null; resync(); }, wait);
        return;
      }
      lastResyncAt = Date.now();
      setStatus("resyncing");
      send({ type: "resync", last: lastForServer() });
    }

    function watchSilence() {
      if (silenceTimer) global.clearTimeout(silenceTimer);
      silenceTimer = global.setTimeout(function () {
        if (socket) socket.close(4000, "no heartbeat");
      }, SILENCE_MS);
    }

    function handleEvents(message) {
      var applied = [];
      var gap = false;
      for (var i = 0; i < message.events.length && !gap; i++) {
        var event = message.events[i];
        var seqs = event.seqs || {};
        var scopes = Object.keys(seqs).filter(function (s) { return !awaitingSnapshot[s]; });
        if (!scopes.length) continue;
        var isNew = false;
        for (var j = 0; j < scopes.length; j++) {
          var seen = last[scopes[j]] || 0;
          if (seqs[scopes[j]] > seen + 1) { gap = true; break; }
          if (seqs[scopes[j]] === seen + 1) isNew = true;
        }
        if (gap || !isNew) continue;
        scopes.forEach(function (s) { if (seqs[s] > (last[s] || 0)) last[s] = seqs[s]; });
        applied.push(event);
      }
      if (applied.length) {
        save();
        try { onEvents(applied, { replay: !!message.replay }); } catch (e) { if (global.console) global.console.error(e); }
      }
      if (gap) resync();
      else if (state === "resyncing") liveOrInterrupted();
    }

    function handleHeartbeat(message) {
      layerDown = message.layer === "down";
      if (message.epoch !== epoch && message.epoch !== "down") {
        // The server's Redis lost its data (flushed or restarted): ask for everything after
        // what this page has; the database replays what the channel layer may have dropped.
        epoch = message.epoch;
        save();
        resync();
        return;
      }
      var seqs = message.seqs || {};
      var behind = false;
      Object.keys(seqs).forEach(function (scope) {
        if (awaitingSnapshot[scope] === "heartbeat") {
          // No snapshot to reload on this page: continue from the server's current numbers.
          delete awaitingSnapshot[scope];
          last[scope] = seqs[scope];
        } else if (!awaitingSnapshot[scope] && seqs[scope] > (last[scope] || 0)) {
          behind = true;
        }
      });
      save();
      if (behind) resync();
      else liveOrInterrupted();
    }

    function handleResyncRequired(message) {
      setStatus("resyncing");
      if (onResyncRequired) {
        awaitingSnapshot[message.scope] = true;
        try { onResyncRequired(message.scope, message.reason); } catch (e) { if (global.console) global.console.error(e); }
      } else {
        awaitingSnapshot[message.scope] = "heartbeat";
      }
    }

    function onMessage(raw) {
      watchSilence();
      var message;
      try { message = JSON.parse(raw.data); } catch (e) { return; }
      switch (message.type) {
        case "welcome":
          welcomed = true;
          attempt = 0;
          if (message.epoch !== "down") epoch = message.epoch;
          (message.scopes || []).forEach(function (scope) {
            if (!(scope in last) && !awaitingSnapshot[scope]) last[scope] = message.seqs[scope] || 0;
          });
          save();
          liveOrInterrupted();
          break;
        case "events":
          handleEvents(message);
          break;
        case "heartbeat":
          handleHeartbeat(message);
          break;
        case "resync_required":
          handleResyncRequired(message);
          break;
        case "error":
          if (global.console) global.console.warn("live feed:", message.code, message.scopes || message.detail || "");
          break;
      }
    }

    function scheduleReconnect() {
      if (closedForGood || reconnectTimer) return;
      var ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * Math.pow(2, attempt));
      var delay = Math.max(BACKOFF_MIN_MS, ceiling / 2 + Math.random() * ceiling / 2);
      attempt += 1;
      reconnectTimer = global.setTimeout(function () { reconnectTimer = null; open(); }, delay);
    }

    function open() {
      if (closedForGood) return;
      welcomed = false;
      setStatus(state === null ? "connecting" : "interrupted");
      var ws;
      try { ws = new global.WebSocket(url); } catch (e) { scheduleReconnect(); return; }
      socket = ws;
      ws.onopen = function () {
        watchSilence();
        var hello = { type: "hello", last: lastForServer() };
        if (options.scopes) hello.scopes = options.scopes;
        ws.send(JSON.stringify(hello));
      };
      ws.onmessage = onMessage;
      ws.onclose = function (closeEvent) {
        if (ws !== socket) return;
        socket = null;
        if (silenceTimer) global.clearTimeout(silenceTimer);
        if (closeEvent && closeEvent.code >= 4400 && global.console) {
          global.console.warn("live feed closed by the server:", closeEvent.code, closeEvent.reason || "");
        }
        if (closeEvent && closeEvent.code === CLOSE_NOT_SIGNED_IN && options.onSignedOut) {
          closedForGood = true; // reconnecting would be refused the same way
          setStatus("signedout");
          try { options.onSignedOut(); } catch (e) { if (global.console) global.console.error(e); }
          return;
        }
        if (!closedForGood) {
          setStatus("interrupted");
          scheduleReconnect();
        }
      };
      ws.onerror = function () { /* onclose follows */ };
    }

    function reconnectNow() {
      if (socket || closedForGood) return;
      if (reconnectTimer) { global.clearTimeout(reconnectTimer); reconnectTimer = null; }
      open();
    }

    if (global.addEventListener) global.addEventListener("online", reconnectNow);
    open();

    return {
      snapshotLoaded: function (seqs) {
        Object.keys(seqs || {}).forEach(function (scope) {
          last[scope] = seqs[scope];
          delete awaitingSnapshot[scope];
        });
        save();
        if (welcomed) resync();
      },
      close: function () {
        closedForGood = true;
        if (reconnectTimer) global.clearTimeout(reconnectTimer);
        if (silenceTimer) global.clearTimeout(silenceTimer);
        if (global.removeEventListener) global.removeEventListener("online", reconnectNow);
        if (socket) socket.close(1000, "page closed");
      },
      get state() { return state; },
      get last() { return JSON.parse(JSON.stringify(last)); },
    };
  }

  global.CityOpsLive = { connect: connect };
})(window);
