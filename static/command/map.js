/* CityOps geography map (the /map/ page).
 *
 * The base map is the district's own boundaries, read from the regions API as GeoJSON (WGS-84):
 * streets filled and labelled, communities outlined, grid cells drawn once zoomed in. No tile is
 * requested unless the server sets CITYOPS_MAP_TILE_URL. A click (or the coordinate form) asks the
 * locate API for the point's street / community / grid and shows that path in the side panel.
 *
 * The page passes its settings and translated text as JSON (#map-config, #map-strings).
 * window.cityopsMap exposes the state for the browser tests and the screenshot script.
 */
(function () {
  "use strict";

  // Soft, distinct fills for the streets (in code order), readable under dark labels.
  var STREET_COLOURS = ["#9ecae1", "#a1d99b", "#fdd0a2", "#cbc9e2", "#f7b6c8", "#f3e3a1",
    "#b3e2cd", "#fbb4ae"];
  var GRID_MIN_ZOOM = 13.5;
  var COMMUNITY_LABEL_MIN_ZOOM = 12.5;

  function readJson(id) {
    return JSON.parse(document.getElementById(id).textContent);
  }

  var config = readJson("map-config");
  var T = readJson("map-strings");

  var state = {
    ready: false,
    gridReady: false,
    error: null,
    counts: {},
    map: null,
    layers: {},
    lastResult: null,
    locate: null
  };
  window.cityopsMap = state;

  var mapEl = document.getElementById("map");
  var statusEl = document.getElementById("map-status");
  var outputEl = document.getElementById("locate-output");
  var formEl = document.getElementById("locate-form");
  var legendEl = document.getElementById("street-legend");

  // ---------------------------------------------------------------------------------------------
  // Small helpers

  function format(template, values) {
    return template.replace(/%\((\w+)\)s/g, function (match, key) {
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

  function formatDistance(metres) {
    if (metres >= 1000) {
      return format(T.kilometres, { value: (metres / 1000).toFixed(1) });
    }
    return format(T.metres, { value: Math.round(metres) });
  }

  function setStatus(text, isError) {
    statusEl.textContent = text || "";
    statusEl.classList.toggle("is-error", Boolean(isError));
  }

  function getJson(url) {
    return fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) {
        return response.json().catch(function () {
          return {};
        }).then(function (body) {
          return { status: response.status, ok: response.ok, body: body };
        });
      });
  }

  function loadLevel(level) {
    var url = config.regionsUrl + "?level=" + encodeURIComponent(level);
    if (config.generation !== null) {
      url += "&generation=" + encodeURIComponent(config.generation);
    }
    return getJson(url).then(function (res) {
      if (!res.ok) {
        throw new Error(level + ": HTTP " + res.status);
      }
      return res.body;
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Label placement: a point well inside a polygon, away from its outline. Sample a grid over the
  // largest part's bounding box, keep the inside sample farthest from every ring, then refine the
  // search around it on finer grids. Longitudes are scaled by cos(latitude) so that distances are
  // roughly isotropic.

  function ringArea(ring) {
    var sum = 0;
    for (var i = 0, j = ring.length - 1; i < ring.length; j = i, i += 1) {
      sum += (ring[j][0] - ring[i][0]) * (ring[j][1] + ring[i][1]);
    }
    return Math.abs(sum / 2);
  }

  function insideRings(rings, x, y) {
    var inside = false;
    rings.forEach(function (ring) {
      for (var i = 0, j = ring.length - 1; i < ring.length; j = i, i += 1) {
        var xi = ring[i][0];
        var yi = ring[i][1];
        var xj = ring[j][0];
        var yj = ring[j][1];
        if ((yi > y) !== (yj > y) && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) {
          inside = !inside;
        }
      }
    });
    return inside;
  }

  function distanceToRings(rings, x, y) {
    var best = Infinity;
    rings.forEach(function (ring) {
      for (var i = 0, j = ring.length - 1; i < ring.length; j = i, i += 1) {
        var ax = ring[j][0];
        var ay = ring[j][1];
        var dx = ring[i][0] - ax;
        var dy = ring[i][1] - ay;
        var len2 = dx * dx + dy * dy;
        var t = len2 > 0 ? ((x - ax) * dx + (y - ay) * dy) / len2 : 0;
        t = Math.max(0, Math.min(1, t));
        var px = ax + t * dx - x;
        var py = ay + t * dy - y;
        best = Math.min(best, px * px + py * py);
      }
    });
    return Math.sqrt(best);
  }

  function labelPoint(geometry) {
    var parts = geometry.type === "Polygon" ? [geometry.coordinates] : geometry.coordinates;
    var largest = null;
    var largestArea = -1;
    parts.forEach(function (rings) {
      var area = ringArea(rings[0]);
      if (area > largestArea) {
        largestArea = area;
        largest = rings;
      }
    });
    if (!largest) {
      return null;
    }
    var minX = Infinity;
    var minY = Infinity;
    var maxX = -Infinity;
    var maxY = -Infinity;
    largest[0].forEach(function (c) {
      minX = Math.min(minX, c[0]);
      maxX = Math.max(maxX, c[0]);
      minY = Math.min(minY, c[1]);
      maxY = Math.max(maxY, c[1]);
    });
    var kx = Math.cos((((minY + maxY) / 2) * Math.PI) / 180);
    var rings = largest.map(function (ring) {
      return ring.map(function (c) {
        return [c[0] * kx, c[1]];
      });
    });
    var x0 = minX * kx;
    var x1 = maxX * kx;
    var cell = Math.max(x1 - x0, maxY - minY) / 16;
    var best = null;
    var bestDistance = -1;
    function consider(x, y) {
      if (insideRings(rings, x, y)) {
        var d = distanceToRings(rings, x, y);
        if (d > bestDistance) {
          bestDistance = d;
          best = [x, y];
        }
      }
    }
    for (var x = x0 + cell / 2; x < x1; x += cell) {
      for (var y = minY + cell / 2; y < maxY; y += cell) {
        consider(x, y);
      }
    }
    if (!best) {
      return L.latLng((minY + maxY) / 2, (minX + maxX) / 2);
    }
    for (var round = 0; round < 4; round += 1) {
      var centre = best;
      cell /= 4;
      for (var i = -4; i <= 4; i += 1) {
        for (var j = -4; j <= 4; j += 1) {
          consider(centre[0] + i * cell, centre[1] + j * cell);
        }
      }
    }
    return L.latLng(best[1], best[0] / kx);
  }

  // ---------------------------------------------------------------------------------------------
  // The map and its layers

  var map = L.map(mapEl, {
    zoomSnap: 0.25,
    zoomDelta: 0.5,
    wheelPxPerZoomLevel: 90,
    minZoom: 9,
    maxZoom: 18,
    attributionControl: Boolean(config.tileUrl),
    zoomControl: false
  });
  L.control.zoom({ zoomInTitle: T.zoomIn, zoomOutTitle: T.zoomOut }).addTo(map);
  state.map = map;
  map.setView([22.68, 114.035], 12);
  L.control.scale({ imperial: false, position: "bottomleft" }).addTo(map);

  // Panes, bottom to top (Leaflet's overlay pane is 400, tooltips 650).
  [["streets", 410], ["grid", 420], ["communities", 430], ["district", 440], ["highlight", 450]]
    .forEach(function (pane) {
      map.createPane(pane[0]).style.zIndex = String(pane[1]);
    });

  if (config.tileUrl) {
    L.tileLayer(config.tileUrl, { maxZoom: 19 }).addTo(map);
  }

  var streetLabels = L.layerGroup();
  var communityLabels = L.layerGroup();
  var labels = []; // in priority order: streets first
  var streetLayers = {};
  var communityLayers = {};
  var streetColours = {};
  var gridGeometries = {};
  var districtBounds = null;
  var gridLayer = null;
  var gridLoading = null;
  var highlight = L.layerGroup().addTo(map);
  var emphasisedCommunity = null;
  var pointLatLng = null;

  var COMMUNITY_STYLE = { color: "#3e5566", weight: 1, opacity: 0.75, fill: false };
  var COMMUNITY_EMPHASIS = { color: "#c2410c", weight: 2.5, opacity: 1, fill: false };

  function addLabel(group, geometry, text, className) {
    var latlng = geometry ? labelPoint(geometry) : null;
    if (!latlng) {
      return;
    }
    var content = el("span", null, text);
    var tooltip = L.tooltip({
      permanent: true,
      direction: "center",
      className: "map-label " + className,
      interactive: false,
      opacity: 1
    }).setLatLng(latlng).setContent(content);
    group.addLayer(tooltip);
    labels.push({ tooltip: tooltip, geometry: geometry });
  }

  function insideGeometry(geometry, lon, lat) {
    var parts = geometry.type === "Polygon" ? [geometry.coordinates] : geometry.coordinates;
    return parts.some(function (rings) {
      return insideRings(rings, lon, lat);
    });
  }

  function visible(checkboxLayer) {
    var box = document.querySelector('input[data-layer="' + checkboxLayer + '"]');
    return !box || box.checked;
  }

  // Keep labels from overlapping: streets are placed first, then communities. A label that would
  // overlap one already placed tries a few nearby positions (still inside its own region) and is
  // hidden if none is free.
  var LABEL_OFFSETS = [[0, 0], [0, -1], [0, 1], [-0.6, 0], [0.6, 0], [-0.6, -1], [0.6, -1],
    [-0.6, 1], [0.6, 1], [0, -2], [0, 2]];

  function declutter() {
    var placed = [];
    var mapBox = mapEl.getBoundingClientRect();
    if (pointLatLng) {
      // Labels make way for the located point.
      var p = map.latLngToContainerPoint(pointLatLng);
      placed.push({
        left: mapBox.left + p.x - 10,
        right: mapBox.left + p.x + 10,
        top: mapBox.top + p.y - 10,
        bottom: mapBox.top + p.y + 10
      });
    }
    labels.forEach(function (label) {
      var node = label.tooltip.getElement();
      if (!node) {
        return;
      }
      node.classList.remove("is-hidden");
      node.style.marginLeft = "";
      node.style.marginTop = "";
      if (getComputedStyle(node).visibility === "hidden") {
        return;
      }
      var r = node.getBoundingClientRect();
      if (r.width === 0) {
        return;
      }
      for (var k = 0; k < LABEL_OFFSETS.length; k += 1) {
        var dx = LABEL_OFFSETS[k][0] * r.width;
        var dy = LABEL_OFFSETS[k][1] * (r.height + 2);
        var box = {
          left: r.left + dx - 4,
          right: r.right + dx + 4,
          top: r.top + dy - 2,
          bottom: r.bottom + dy + 2
        };
        var taken = placed.some(function (p) {
          return box.left < p.right && box.right > p.left && box.top < p.bottom &&
            box.bottom > p.top;
        });
        if (taken) {
          continue;
        }
        if (k > 0) {
          var centre = map.containerPointToLatLng([
            (r.left + r.right) / 2 + dx - mapBox.left,
            (r.top + r.bottom) / 2 + dy - mapBox.top
          ]);
          if (!insideGeometry(label.geometry, centre.lng, centre.lat)) {
            continue;
          }
          node.style.marginLeft = dx + "px";
          node.style.marginTop = dy + "px";
        }
        placed.push(box);
        return;
      }
      node.classList.add("is-hidden");
    });
  }

  function updateZoomDependent() {
    var zoom = map.getZoom();
    mapEl.classList.toggle("hide-community-labels",
      zoom < COMMUNITY_LABEL_MIN_ZOOM || !visible("community"));
    mapEl.classList.toggle("hide-street-labels", !visible("street"));
    if (gridLayer) {
      var wantGrid = visible("grid") && zoom >= GRID_MIN_ZOOM;
      if (wantGrid && !map.hasLayer(gridLayer)) {
        map.addLayer(gridLayer);
      } else if (!wantGrid && map.hasLayer(gridLayer)) {
        map.removeLayer(gridLayer);
      }
    } else if (visible("grid") && zoom >= GRID_MIN_ZOOM) {
      loadGrid();
    }
    Object.keys(communityLayers).forEach(function (code) {
      if (code !== emphasisedCommunity) {
        communityLayers[code].setStyle({ weight: zoom >= 14 ? 1.6 : 1 });
      }
    });
    declutter();
  }

  function drawDistrict(fc) {
    var layer = L.geoJSON(fc, {
      pane: "district",
      interactive: false,
      style: { color: "#0f2a44", weight: 3.5, opacity: 0.95, fill: false }
    }).addTo(map);
    state.layers.district = layer;
    state.counts.district = fc.features.length;
    if (fc.features.length) {
      districtBounds = layer.getBounds();
      map.setMaxBounds(districtBounds.pad(1.2));
    }
  }

  function drawStreets(fc) {
    var fillOpacity = config.tileUrl ? 0.3 : 0.6;
    fc.features.forEach(function (feature, index) {
      streetColours[feature.properties.code] = STREET_COLOURS[index % STREET_COLOURS.length];
    });
    var layer = L.geoJSON(fc, {
      pane: "streets",
      interactive: false,
      style: function (feature) {
        return {
          color: "#2f4858",
          weight: 2,
          opacity: 0.9,
          fillColor: streetColours[feature.properties.code],
          fillOpacity: fillOpacity
        };
      },
      onEachFeature: function (feature, featureLayer) {
        streetLayers[feature.properties.code] = featureLayer;
        addLabel(streetLabels, feature.geometry, feature.properties.name, "street-label");
      }
    });
    state.layers.street = layer;
    state.counts.street = fc.features.length;
    buildLegend(fc);
  }

  function drawCommunities(fc) {
    var layer = L.geoJSON(fc, {
      pane: "communities",
      interactive: false,
      style: COMMUNITY_STYLE,
      onEachFeature: function (feature, featureLayer) {
        communityLayers[feature.properties.code] = featureLayer;
        addLabel(communityLabels, feature.geometry, feature.properties.name,
          "community-label");
      }
    });
    state.layers.community = layer;
    state.counts.community = fc.features.length;
  }

  function loadGrid() {
    if (gridLoading) {
      return gridLoading;
    }
    gridLoading = loadLevel("grid").then(function (fc) {
      fc.features.forEach(function (feature) {
        gridGeometries[feature.properties.code] = feature;
      });
      gridLayer = L.geoJSON(fc, {
        pane: "grid",
        interactive: false,
        renderer: L.canvas({ pane: "grid", padding: 0.3 }),
        style: { color: "#52606d", weight: 0.7, opacity: 0.7, fill: false }
      });
      state.layers.grid = gridLayer;
      state.counts.grid = fc.features.length;
      state.gridReady = true;
      updateZoomDependent();
    }).catch(function (error) {
      gridLoading = null;
      state.error = String(error);
      setStatus(T.loadFailed, true);
    });
    return gridLoading;
  }

  function fitDistrict() {
    if (districtBounds) {
      map.fitBounds(districtBounds, { padding: [18, 18] });
    }
  }

  function buildLegend(fc) {
    legendEl.textContent = "";
    fc.features.forEach(function (feature) {
      var code = feature.properties.code;
      var item = el("li");
      var button = el("button");
      button.type = "button";
      button.title = T.zoomToStreet;
      var swatch = el("span", "swatch");
      swatch.style.background = streetColours[code];
      button.appendChild(swatch);
      button.appendChild(el("span", "legend-name", feature.properties.name));
      button.appendChild(el("span", "legend-code", code.slice(-3)));
      button.addEventListener("click", function () {
        map.fitBounds(streetLayers[code].getBounds(), { padding: [24, 24] });
      });
      item.appendChild(button);
      legendEl.appendChild(item);
    });
  }

  var ResetControl = L.Control.extend({
    options: { position: "topleft" },
    onAdd: function () {
      var container = L.DomUtil.create("div", "leaflet-bar map-reset-control");
      var button = L.DomUtil.create("button", "", container);
      button.type = "button";
      button.textContent = T.resetView;
      L.DomEvent.disableClickPropagation(container);
      L.DomEvent.on(button, "click", fitDistrict);
      return container;
    }
  });

  // ---------------------------------------------------------------------------------------------
  // Locate

  var locateSeq = 0;

  function clearHighlight() {
    highlight.clearLayers();
    pointLatLng = null;
    if (emphasisedCommunity && communityLayers[emphasisedCommunity]) {
      communityLayers[emphasisedCommunity].setStyle(COMMUNITY_STYLE);
    }
    emphasisedCommunity = null;
  }

  function drawPoint(lon, lat, inside) {
    pointLatLng = L.latLng(lat, lon);
    L.circleMarker(pointLatLng, {
      pane: "highlight",
      radius: 7,
      weight: 2.5,
      color: "#ffffff",
      fillColor: inside ? "#c2410c" : "#52606d",
      fillOpacity: 1,
      interactive: false
    }).addTo(highlight);
    declutter();
  }

  function highlightGrid(code, seq) {
    var draw = function (feature) {
      if (seq !== locateSeq || !feature || !feature.geometry) {
        return;
      }
      L.geoJSON(feature, {
        pane: "highlight",
        interactive: false,
        style: { color: "#c2410c", weight: 2.5, opacity: 1, fillColor: "#f97316", fillOpacity: 0.3 }
      }).eachLayer(function (layer) {
        highlight.addLayer(layer);
        layer.bringToBack();
      });
    };
    if (gridGeometries[code]) {
      draw(gridGeometries[code]);
      return;
    }
    var url = config.regionUrl.replace("CODE", encodeURIComponent(code));
    if (config.generation !== null) {
      url += "?generation=" + encodeURIComponent(config.generation);
    }
    getJson(url).then(function (res) {
      if (res.ok) {
        draw(res.body);
      }
    });
  }

  function pathRow(levelKey, ref, extraStyle) {
    var row = el("div", "level-" + levelKey);
    row.dataset.level = levelKey;
    if (extraStyle) {
      row.style.setProperty("--street-colour", extraStyle);
    }
    row.appendChild(el("dt", null, T[levelKey]));
    var dd = el("dd");
    dd.appendChild(el("span", "name", ref.name));
    dd.appendChild(el("span", "code", ref.code));
    row.appendChild(dd);
    return row;
  }

  function factRow(label, value) {
    var row = el("div");
    row.appendChild(el("dt", null, label));
    row.appendChild(el("dd", null, value));
    return row;
  }

  function showLocation(body, seq) {
    outputEl.textContent = "";
    outputEl.dataset.state = "ok";
    var path = el("dl", "result-path");
    path.appendChild(pathRow("district", body.district));
    path.appendChild(pathRow("street", body.street, streetColours[body.street.code]));
    path.appendChild(pathRow("community", body.community));
    path.appendChild(pathRow("grid", body.grid));
    outputEl.appendChild(path);

    var resolution = T["resolution_" + body.resolution] || body.resolution;
    resolution = format(resolution, { distance: Number(body.distance_m || 0).toFixed(1) });
    var facts = el("dl", "result-facts");
    facts.appendChild(factRow(T.resolution, resolution));
    facts.appendChild(factRow(T.onBorder, body.on_border ? T.yes : T.no));
    facts.appendChild(factRow(T.coordinates,
      body.wgs84[0].toFixed(6) + ", " + body.wgs84[1].toFixed(6)));
    facts.appendChild(factRow(T.generation, "#" + body.generation));
    outputEl.appendChild(facts);

    clearHighlight();
    if (communityLayers[body.community.code]) {
      emphasisedCommunity = body.community.code;
      communityLayers[emphasisedCommunity].setStyle(COMMUNITY_EMPHASIS);
    }
    highlightGrid(body.grid.code, seq);
    drawPoint(body.wgs84[0], body.wgs84[1], true);
  }

  function showOutside(body, lon, lat, crs) {
    outputEl.textContent = "";
    outputEl.dataset.state = "outside";
    var box = el("div", "result-outside");
    box.appendChild(el("strong", null, T.outsideTitle));
    if (typeof body.distance_m === "number") {
      box.appendChild(el("p", null,
        format(T.outsideDistance, { distance: formatDistance(body.distance_m) })));
    }
    var detail = [body.detail || "", "distance_m " + body.distance_m];
    box.appendChild(el("p", "detail", detail.join(" · ")));
    outputEl.appendChild(box);
    clearHighlight();
    if (crs === "wgs84") {
      drawPoint(lon, lat, false);
    }
  }

  function showError(text) {
    outputEl.textContent = "";
    outputEl.dataset.state = "error";
    outputEl.appendChild(el("p", "result-error", text));
  }

  function errorText(body) {
    if (!body || typeof body !== "object") {
      return "";
    }
    return Object.keys(body).map(function (key) {
      var value = body[key];
      return key + ": " + (Array.isArray(value) ? value.join(" ") : String(value));
    }).join("; ");
  }

  function locate(lon, lat, crs, options) {
    crs = crs || "wgs84";
    options = options || {};
    locateSeq += 1;
    var seq = locateSeq;
    outputEl.dataset.state = "loading";
    outputEl.setAttribute("aria-busy", "true");
    // Numbers from a click are rounded to 1 cm; typed text goes as typed, so the server's
    // validation names what is wrong with it (empty, not a number, out of range, swapped).
    function param(value) {
      return typeof value === "number" ? value.toFixed(7) : String(value).trim();
    }
    var params = new URLSearchParams({ lon: param(lon), lat: param(lat), crs: crs });
    return getJson(config.locateUrl + "?" + params.toString()).then(function (res) {
      if (seq !== locateSeq) {
        return;
      }
      outputEl.removeAttribute("aria-busy");
      state.lastResult = res;
      if (res.status === 200) {
        showLocation(res.body, seq);
        if (options.pan) {
          map.setView([res.body.wgs84[1], res.body.wgs84[0]], Math.max(map.getZoom(), 15));
        }
      } else if (res.status === 404) {
        showOutside(res.body, lon, lat, crs);
        if (options.pan && crs === "wgs84") {
          map.panTo([lat, lon]);
        }
      } else if (res.status === 400) {
        showError(T.badRequest + " — " + errorText(res.body));
      } else if (res.status === 503) {
        showError(T.unavailable);
      } else {
        showError(T.failed + " (HTTP " + res.status + ")");
      }
    }, function () {
      if (seq === locateSeq) {
        outputEl.removeAttribute("aria-busy");
        showError(T.failed);
      }
    });
  }
  state.locate = locate;

  map.on("click", function (event) {
    var latlng = event.latlng.wrap();
    locate(latlng.lng, latlng.lat, "wgs84");
  });

  formEl.addEventListener("submit", function (event) {
    event.preventDefault();
    var lonText = formEl.elements.lon.value;
    var latText = formEl.elements.lat.value;
    // A pasted "lon, lat" pair in the first box fills both.
    var pair = String(lonText).split(/[\s,，]+/).filter(Boolean);
    if (pair.length === 2 && !latText) {
      lonText = pair[0];
      latText = pair[1];
      formEl.elements.lat.value = latText;
      formEl.elements.lon.value = lonText;
    }
    locate(lonText.trim(), latText.trim(), formEl.elements.crs.value, { pan: true });
  });

  document.querySelectorAll("input[data-layer]").forEach(function (box) {
    box.addEventListener("change", function () {
      var layer = state.layers[box.dataset.layer];
      if (box.dataset.layer !== "grid" && layer) {
        if (box.checked) {
          map.addLayer(layer);
        } else {
          map.removeLayer(layer);
        }
      }
      updateZoomDependent();
    });
  });

  // ---------------------------------------------------------------------------------------------
  // Start

  function start() {
    if (config.generation === null) {
      setStatus(T.noGeneration, true);
      return;
    }
    setStatus(T.loading);
    Promise.all([loadLevel("district"), loadLevel("street"), loadLevel("community")])
      .then(function (collections) {
        drawDistrict(collections[0]);
        drawStreets(collections[1]);
        drawCommunities(collections[2]);
        if (visible("street")) {
          state.layers.street.addTo(map);
        }
        if (visible("community")) {
          state.layers.community.addTo(map);
        }
        streetLabels.addTo(map);
        communityLabels.addTo(map);
        new ResetControl().addTo(map);
        fitDistrict();
        map.on("zoomend", updateZoomDependent);
        map.on("resize", declutter);
        updateZoomDependent();
        setStatus("");
        state.ready = true;
        loadGrid();

        var query = new URLSearchParams(window.location.search);
        if (query.get("lon") && query.get("lat")) {
          formEl.elements.lon.value = query.get("lon");
          formEl.elements.lat.value = query.get("lat");
          if (query.get("crs")) {
            formEl.elements.crs.value = query.get("crs");
          }
          locate(query.get("lon"), query.get("lat"),
            query.get("crs") || "wgs84", { pan: true });
        }
      })
      .catch(function (error) {
        state.error = String(error);
        setStatus(T.loadFailed, true);
      });
  }

  start();
}());
