/* CityOps intake form (/command/intake/): a call to the 12345 hotline, or a report at the
 * console, typed in by an operator.
 *
 * The category picker filters ~260 categories (grouped by major class) as the operator types (in
 * either language on an English page); a click on the map (the district's own boundaries, no
 * internet tiles) sets the point and asks the locate API which street, community and grid cell
 * it is in. Submitting posts the report to POST /api/v1/incidents/ (session + CSRF +
 * Idempotency-Key); a 4xx answer is shown beside the field it names, a 201 shows the new case's
 * number, owner and possible duplicates and empties the form for the next call.
 *
 * Uses the helpers of console.js (window.CityOpsConsole). window.cityopsIntake exposes the
 * state for the browser tests.
 */
(function () {
  "use strict";

  var C = window.CityOpsConsole;
  var T = C.strings;
  var config = C.readJson("intake-config");
  var form = document.getElementById("intake-form");
  var search = document.getElementById("category-search");
  var select = document.getElementById("category-select");
  var chosen = document.getElementById("category-chosen");
  var severityField = document.getElementById("severity-field");
  var readout = document.getElementById("point-readout");
  var result = document.getElementById("intake-result");
  var mapEl = document.getElementById("intake-map");

  var state = { ready: false, point: null, located: null, created: null, map: null };
  window.cityopsIntake = state;

  // ---------------------------------------------------------------------------------------------
  // Category picker

  // A search matches the code, the name and the class as shown, and (on an English page) the
  // Chinese names too (data-aliases), so "垃圾" finds "Exposed garbage".
  var options = Array.prototype.map.call(select.querySelectorAll("option"), function (option) {
    var words = [option.textContent, option.dataset.major, option.dataset.aliases || ""];
    return {
      option: option,
      group: option.parentNode,
      text: words.join(" ").toLowerCase()
    };
  });

  function filterCategories() {
    var words = search.value.trim().toLowerCase().split(/\s+/).filter(Boolean);
    var visibleGroups = new Set();
    var first = null;
    options.forEach(function (entry) {
      var show = words.every(function (word) {
        return entry.text.indexOf(word) >= 0;
      });
      entry.option.hidden = !show;
      entry.option.disabled = !show;
      if (show) {
        visibleGroups.add(entry.group);
        first = first || entry.option;
      }
    });
    Array.prototype.forEach.call(select.querySelectorAll("optgroup"), function (group) {
      group.hidden = !visibleGroups.has(group);
    });
    return first;
  }

  function showChosen() {
    var option = select.selectedOptions[0];
    chosen.textContent = option ? option.textContent : chosen.dataset.empty;
    chosen.classList.toggle("is-chosen", Boolean(option));
    var emergency = option && config.emergencies.indexOf(option.value) >= 0;
    severityField.hidden = !emergency;
    if (!emergency) {
      form.elements.severity.value = "";
    }
  }

  search.addEventListener("input", filterCategories);
  search.addEventListener("keydown", function (event) {
    if (event.key === "Enter" || event.key === "ArrowDown") {
      event.preventDefault();
      var first = filterCategories();
      if (event.key === "Enter" && first) {
        select.value = first.value;
        showChosen();
      }
      select.focus();
    }
  });
  select.addEventListener("change", showChosen);

  // ---------------------------------------------------------------------------------------------
  // The map

  var marker = null;
  var locateSeq = 0;

  function setPoint(lon, lat) {
    form.elements.lon.value = lon.toFixed(7);
    form.elements.lat.value = lat.toFixed(7);
    state.point = [lon, lat];
    var latlng = L.latLng(lat, lon);
    if (marker) {
      marker.setLatLng(latlng);
    } else {
      marker = L.circleMarker(latlng, {
        pane: "marks",
        radius: 8,
        weight: 3,
        color: "#ffffff",
        fillColor: "#c2410c",
        fillOpacity: 1
      }).addTo(state.map);
    }
    C.clearErrors(form.querySelector(".field-point"));
    locate(lon, lat);
  }

  function locate(lon, lat) {
    locateSeq += 1;
    var seq = locateSeq;
    var coords = lon.toFixed(6) + ", " + lat.toFixed(6);
    readout.textContent = coords + " · " + T.locating;
    readout.dataset.state = "loading";
    var params = new URLSearchParams({ lon: lon.toFixed(7), lat: lat.toFixed(7) });
    C.api("GET", config.locateUrl + "?" + params.toString()).then(function (res) {
      if (seq !== locateSeq) {
        return;
      }
      state.located = res;
      if (res.status === 200) {
        var body = res.body;
        var place = [body.street.name, body.community.name, body.grid.name].join(" · ");
        readout.textContent = C.format(T.withCoords, { text: place, coords: coords });
        readout.dataset.state = "ok";
      } else if (res.status === 404) {
        var outside = C.format(T.outside, { metres: Math.round(res.body.distance_m || 0) });
        readout.textContent = C.format(T.withCoords, { text: outside, coords: coords });
        readout.dataset.state = "outside";
      } else {
        readout.textContent = C.format(T.withCoords, { text: T.locateFailed, coords: coords });
        readout.dataset.state = "error";
      }
    }, function () {
      if (seq === locateSeq) {
        readout.textContent = C.format(T.withCoords, { text: T.locateFailed, coords: coords });
        readout.dataset.state = "error";
      }
    });
  }

  if (config.generation !== null) {
    var base = C.baseMap(mapEl, {
      regionsUrl: config.regionsUrl,
      generation: config.generation,
      street: config.place.slice(0, 9),
      community: config.place.length >= 12 ? config.place.slice(0, 12) : "",
      streetLabels: true,
      communityLabels: true
    });
    state.map = base.map;
    base.ready.then(function (layers) {
      // The operator's own street or community first; the whole district otherwise.
      var place = config.place || "";
      var focus = layers.communities[place] || layers.streets[place] || layers.district;
      state.map.fitBounds(focus.getBounds(), { padding: [12, 12] });
      state.ready = true;
    }).catch(function () {
      mapEl.classList.add("is-failed");
    });
    state.map.on("click", function (event) {
      var latlng = event.latlng.wrap();
      setPoint(latlng.lng, latlng.lat);
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Submit

  function body() {
    var data = {
      channel: form.elements.channel.value,
      category: select.value,
      description: form.elements.description.value,
      reporter_name: form.elements.reporter_name.value,
      reporter_phone: form.elements.reporter_phone.value,
      lon: form.elements.lon.value === "" ? null : Number(form.elements.lon.value),
      lat: form.elements.lat.value === "" ? null : Number(form.elements.lat.value)
    };
    if (form.elements.severity.value) {
      data.severity = form.elements.severity.value;
    }
    if (form.elements.address.value.trim()) {
      data.address = form.elements.address.value;
    }
    return data;
  }

  function showCreated(incident) {
    state.created = incident;
    var link = result.querySelector(".result-number");
    link.textContent = incident.number;
    link.href = config.caseUrl.replace("NUMBER", encodeURIComponent(incident.number));
    result.querySelector(".result-status").textContent =
      (T.statuses && T.statuses[incident.status]) || incident.status;
    var ownerNames = {
      community: incident.community_name,
      street: incident.street_name,
      district: incident.district_name
    };
    result.querySelector(".result-owner").textContent =
      (ownerNames[incident.owner_level] || "") + " " +
      ((T.owners && T.owners[incident.owner_level]) || incident.owner_level) +
      " · " + incident.owner_code;
    result.querySelector(".result-place").textContent =
      [incident.street_name, incident.community_name, incident.grid_name].join(" · ");
    C.renderDuplicateList(result.querySelector(".result-duplicates"),
      incident.possible_duplicates, config.caseUrl, null);
    result.hidden = false;
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var button = form.querySelector("button[type=submit]");
    if (!form.dataset.key) {
      form.dataset.key = C.newKey(); // the same key on every retry of this report
    }
    C.clearErrors(form);
    // What the operator has not given yet, all at once, before anything is sent.
    var missing = false;
    if (!select.value) {
      missing = C.showError(form, "category", T.chooseCategory);
    }
    if (!state.point) {
      missing = C.showError(form, "lon", T.pickPoint) || missing;
    }
    if (missing) {
      return;
    }
    button.disabled = true;
    C.api("POST", config.reportUrl, body(), form.dataset.key).then(function (res) {
      delete form.dataset.key;
      button.disabled = false;
      if (res.status === 201) {
        showCreated(res.body);
        // Filed: the form starts empty for the next call, so a second click on 提交受理 cannot
        // file the same call again as a new case (the result above keeps its number).
        form.reset();
        return;
      }
      C.showAnswer(form, res);
      if (res.status === 400 && res.body.distance_m !== undefined) {
        C.showError(form, "lon", C.format(T.outside, { metres: Math.round(res.body.distance_m) }));
      }
      // The point is one field on this form: the same reason for lat as for lon is said once.
      var lon = form.querySelector('[data-error-for="lon"]');
      var lat = form.querySelector('[data-error-for="lat"]');
      if (!lon.hidden && (lat.textContent === lon.textContent || res.body.distance_m !== undefined)) {
        lat.hidden = true;
      }
    }, function () {
      button.disabled = false;
      C.showError(form, "__all__", T.networkError);
    });
  });

  form.addEventListener("reset", function () {
    window.setTimeout(function () {
      C.clearErrors(form);
      search.value = "";
      filterCategories();
      showChosen();
      form.elements.lon.value = "";
      form.elements.lat.value = "";
      state.point = null;
      if (marker) {
        marker.remove();
        marker = null;
      }
      readout.textContent = readout.dataset.initial;
      readout.dataset.state = "";
      delete form.dataset.key;
    }, 0);
  });
  readout.dataset.initial = readout.textContent;
  if (config.generation === null) {
    state.ready = true;
  }
}());
