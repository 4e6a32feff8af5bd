// Qala dashboard — small progressive enhancements. Every page works without this script.
(function () {
  "use strict";

  function ready(fn) {
    if (document.readyState !== "loading") fn(); else document.addEventListener("DOMContentLoaded", fn);
  }

  // Language selector: submit on change (a button is shown when scripts are off). The page's
  // query string travels as hidden fields; what the reader has typed into the page's forms is
  // kept for this tab and written back after the page comes again in the other language.
  var TYPED_KEY = "qala.typed:" + location.pathname;

  function typedFields() {
    return document.querySelectorAll("main form input, main form textarea, main form select");
  }

  function worthKeeping(field) {
    var type = (field.type || "").toLowerCase();
    // Not kept: secrets and personal numbers (a password, an IIN or a receipt: autocomplete=off).
    return field.name && field.name !== "csrf_token" && field.getAttribute("autocomplete") !== "off" &&
      ["hidden", "password", "file", "submit", "button"].indexOf(type) < 0;
  }

  // Fields are matched by name (and value, for check boxes and radio buttons; by order among
  // fields of one name otherwise): a page in another language may list them in another order.
  function fieldKeys() {
    var seen = {}, keys = [];
    typedFields().forEach(function (field) {
      var type = (field.type || "").toLowerCase();
      var key = field.name + ((type === "checkbox" || type === "radio") ? "=" + field.value : "");
      seen[key] = (seen[key] || 0) + 1;
      keys.push({ field: field, key: key + "#" + seen[key] });
    });
    return keys;
  }

  function keepTyped() {
    var kept = {};
    fieldKeys().forEach(function (item) {
      var field = item.field, type = (field.type || "").toLowerCase();
      if (!worthKeeping(field)) return;
      kept[item.key] = (type === "checkbox" || type === "radio") ? field.checked : field.value;
    });
    try { sessionStorage.setItem(TYPED_KEY, JSON.stringify(kept)); } catch (e) { /* storage off */ }
  }

  function restoreTyped() {
    var kept;
    try { kept = JSON.parse(sessionStorage.getItem(TYPED_KEY) || "null"); sessionStorage.removeItem(TYPED_KEY); } catch (e) { return; }
    if (!kept) return;
    fieldKeys().forEach(function (item) {
      var field = item.field, type = (field.type || "").toLowerCase();
      if (!(item.key in kept) || !worthKeeping(field)) return;
      if (type === "checkbox" || type === "radio") field.checked = !!kept[item.key]; else field.value = kept[item.key];
      field.dispatchEvent(new Event("change", { bubbles: true }));
    });
  }

  function autosubmit() {
    document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
      select.addEventListener("change", function () {
        if (select.hasAttribute("data-keep-typed")) keepTyped();
        select.form.submit();
      });
    });
  }

  // A block that scrolls sideways (a wide table, a chart kept readable on a phone) says so and
  // can be scrolled from the keyboard.
  function scrollHints() {
    var hint = document.body.dataset.scrollHint;
    document.querySelectorAll(".table-wrap, .chart-wrap").forEach(function (box) {
      function check() {
        var scrolls = box.scrollWidth > box.clientWidth + 1;
        box.classList.toggle("scrolls", scrolls);
        var note = box.previousElementSibling;
        var has = note && note.classList.contains("scroll-hint");
        if (scrolls && !has && hint) {
          note = document.createElement("p");
          note.className = "scroll-hint";
          note.textContent = hint;
          box.parentNode.insertBefore(note, box);
        } else if (!scrolls && has) {
          note.remove();
        }
        if (scrolls) { box.setAttribute("tabindex", "0"); box.setAttribute("role", "region"); box.setAttribute("aria-label", hint); }
        else if (box.getAttribute("role") === "region") { box.removeAttribute("tabindex"); box.removeAttribute("role"); box.removeAttribute("aria-label"); }
      }
      check();
      window.addEventListener("resize", check);
    });
  }

  // A text field with a length limit counts down what is left, so nothing is cut silently.
  function counters() {
    var template = document.body.dataset.charsLeft;
    if (!template) return;
    document.querySelectorAll("textarea[maxlength]").forEach(function (area) {
      var limit = parseInt(area.getAttribute("maxlength"), 10);
      if (!limit) return;
      var out = document.createElement("small");
      out.className = "char-counter";
      out.id = area.id ? area.id + "-counter" : "";
      out.setAttribute("aria-live", "polite");
      area.insertAdjacentElement("afterend", out);
      function update() {
        var left = limit - area.value.length;
        out.textContent = template.replace("{n}", String(left)).replace("{max}", String(limit));
        out.classList.toggle("low", left < limit / 10);
      }
      area.addEventListener("input", update);
      area.addEventListener("change", update);
      update();
    });
  }

  // A form button that asks before it acts (closing an incident or a request).
  function confirmations() {
    // Delegated: the operator board's cards are redrawn by polling.
    document.addEventListener("submit", function (event) {
      var form = event.target;
      if (form && form.dataset && form.dataset.confirm && !window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }

  // Phone-sized menu.
  function navToggle() {
    var button = document.querySelector(".nav-toggle");
    var nav = document.getElementById("mainnav");
    if (!button || !nav) return;
    button.addEventListener("click", function () {
      var open = nav.classList.toggle("open");
      button.setAttribute("aria-expanded", open ? "true" : "false");
    });
  }

  // Map pick: a click (or Enter, then arrow keys) on an SVG map writes lat/long into the form.
  function mapPick() {
    document.querySelectorAll("svg.map-pick").forEach(function (svg) {
      var lonMin = parseFloat(svg.dataset.lonMin), latMax = parseFloat(svg.dataset.latMax);
      var kx = parseFloat(svg.dataset.kx), unit = parseFloat(svg.dataset.unit);
      var form = svg.closest("form") || document;
      var latField = form.querySelector("[name=lat]"), lonField = form.querySelector("[name=long]");
      var marker = svg.querySelector(".pick-marker");
      var vb = svg.viewBox.baseVal;
      var current = { x: vb.width / 2, y: vb.height / 2 };

      function place(x, y) {
        current = { x: x, y: y };
        var lon = lonMin + x / unit / kx, lat = latMax - y / unit;
        if (latField) latField.value = lat.toFixed(6);
        if (lonField) lonField.value = lon.toFixed(6);
        marker.removeAttribute("display");
        marker.setAttribute("transform", "translate(" + x.toFixed(1) + "," + y.toFixed(1) + ")");
        var status = document.getElementById("pick-status");
        if (status) status.textContent = lat.toFixed(5) + ", " + lon.toFixed(5);
      }
      svg.addEventListener("click", function (event) {
        var point = svg.createSVGPoint();
        point.x = event.clientX; point.y = event.clientY;
        var local = point.matrixTransform(svg.getScreenCTM().inverse());
        place(local.x, local.y);
      });
      svg.addEventListener("keydown", function (event) {
        var step = event.shiftKey ? 40 : 10, moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
        if (event.key === "Enter" || event.key === " ") { place(current.x, current.y); event.preventDefault(); }
        else if (moves[event.key]) {
          place(Math.max(0, Math.min(vb.width, current.x + moves[event.key][0])), Math.max(0, Math.min(vb.height, current.y + moves[event.key][1])));
          event.preventDefault();
        }
      });
      function fromFields() {
        if (!latField || !lonField || !latField.value || !lonField.value) return;
        var lat = parseFloat(latField.value), lon = parseFloat(lonField.value);
        if (isNaN(lat) || isNaN(lon)) return;
        var x = (lon - lonMin) * kx * unit, y = (latMax - lat) * unit;
        if (x >= 0 && y >= 0 && x <= vb.width && y <= vb.height) {
          current = { x: x, y: y };
          marker.removeAttribute("display");
          marker.setAttribute("transform", "translate(" + x.toFixed(1) + "," + y.toFixed(1) + ")");
        }
      }
      fromFields();
      if (latField) latField.addEventListener("change", fromFields);
      if (lonField) lonField.addEventListener("change", fromFields);
    });
  }

  // Live regions refreshed by polling a fragment URL (the operator board).
  function polling() {
    document.querySelectorAll("[data-poll]").forEach(function (region) {
      var url = region.dataset.poll, every = parseInt(region.dataset.every || "10", 10) * 1000;
      var stamp = document.getElementById(region.dataset.stamp || "");
      function tick() {
        if (document.hidden) return;
        if (region.contains(document.activeElement) && document.activeElement.tagName !== "BODY") return;
        fetch(url, { headers: { "Accept": "text/html", "X-Requested-With": "fetch" }, credentials: "same-origin" })
          .then(function (r) { return r.ok ? r.text() : null; })
          .then(function (html) {
            if (html === null) return;
            if (region.innerHTML.trim() !== html.trim()) region.innerHTML = html;
            if (stamp) stamp.textContent = new Date().toLocaleTimeString();
          })
          .catch(function () { /* keep the last view; next tick retries */ });
      }
      setInterval(tick, every);
      // Pushed changes (server-sent events) refresh at once; polling stays as the fallback.
      if (region.dataset.stream && window.EventSource) {
        var source = new EventSource(region.dataset.stream);
        source.addEventListener("change", tick);
      }
    });
  }

  // Participatory budgeting ballot: running total against the budget and the approval limit.
  function ballot() {
    var form = document.querySelector("form[data-ballot]");
    if (!form) return;
    var budget = parseFloat(form.dataset.budget || "0"), limit = parseInt(form.dataset.maxChoices || "0", 10);
    var total = document.getElementById("ballot-total"), bar = document.getElementById("ballot-bar");
    var count = document.getElementById("ballot-count"), submit = form.querySelector("button[type=submit]");
    var costLimited = form.dataset.costLimited === "true";
    function update() {
      var sum = 0, n = 0, points = 0;
      form.querySelectorAll("input[data-cost]:checked").forEach(function (box) { sum += parseFloat(box.dataset.cost); n += 1; });
      // A cumulative ballot gives points in number fields: a project with points is chosen.
      form.querySelectorAll("input[type=number][name^='points.']").forEach(function (field) {
        var value = parseInt(field.value || "0", 10);
        if (value > 0) { n += 1; points += value; }
      });
      if (total) total.textContent = Math.round(sum).toLocaleString("ru-RU").replace(/,/g, " ") + " ₸";
      if (count) count.textContent = String(n);
      var pointsTotal = parseInt(form.dataset.pointsTotal || "0", 10);
      var over = (costLimited && budget > 0 && sum > budget) || (limit > 0 && n > limit) || (pointsTotal > 0 && points > pointsTotal);
      if (bar) {
        bar.querySelector("span").style.width = Math.min(100, budget > 0 ? (100 * sum / budget) : 0) + "%";
        bar.classList.toggle("over", over);
      }
      if (submit) submit.disabled = over || n === 0;
      // A disabled button says why (the reason is read with it by screen readers too).
      var why = document.getElementById("cast-why");
      if (why) {
        var overBudget = costLimited && budget > 0 && sum > budget;
        why.textContent = n === 0 ? form.dataset.whyNone : (overBudget ? form.dataset.whyOver : (over ? form.dataset.whyMany : ""));
      }
    }
    form.addEventListener("change", update);
    update();
  }

  // A request form shows only the questions of the chosen service.
  function serviceQuestions() {
    var select = document.getElementById("service_code");
    if (!select) return;
    function update() {
      document.querySelectorAll(".service-questions").forEach(function (box) {
        var on = box.dataset.service === select.value;
        box.hidden = !on;
        box.querySelectorAll("input, select, textarea").forEach(function (field) { field.disabled = !on; });
      });
    }
    select.addEventListener("change", update);
    update();
  }

  // What-if rating: every change asks the server for the results under the new settings (the
  // work stays there) and redraws the table, the weight shares and the shareable link.
  function whatIf() {
    var form = document.getElementById("whatif-form");
    if (!form) return;
    var table = document.getElementById("whatif-table");
    var status = document.getElementById("whatif-status");
    var link = document.getElementById("whatif-link");
    var strings = JSON.parse(document.getElementById("whatif-strings").textContent);
    var preset = document.getElementById("preset");
    var pending = null, version = 0;

    function settingsQuery(usePreset) {
      var params = new URLSearchParams();
      if (usePreset && preset.value) params.set("preset", preset.value);
      else {
        var weights = [];
        form.querySelectorAll("input[type=range][data-code]").forEach(function (slider) {
          if (parseFloat(slider.value) !== parseFloat(slider.dataset.official)) weights.push(slider.dataset.code + ":" + slider.value);
        });
        if (weights.length) params.set("w", weights.join(","));
        ["norm", "agg", "imp"].forEach(function (key) { params.set(key, form.querySelector("[name=" + key + "]").value); });
      }
      var year = new URLSearchParams(location.search).get("year");
      if (year) params.set("year", year);
      return params;
    }

    function cell(tag, text, cls) {
      var el = document.createElement(tag);
      if (cls) el.className = cls;
      el.textContent = text;
      return el;
    }

    function draw(data) {
      var body = document.createElement("tbody");
      data.rows.forEach(function (r) {
        var tr = document.createElement("tr");
        tr.dataset.unit = r.code;
        tr.appendChild(cell("td", r.rank === null ? "—" : String(r.rank), "num rank"));
        tr.appendChild(cell("td", r.q05 === null ? "—" : r.q05 + "–" + r.q95, "interval-text"));
        var th = document.createElement("th"); th.scope = "row";
        var a = cell("a", r.name); a.href = "/cities/" + r.code; th.appendChild(a); tr.appendChild(th);
        tr.appendChild(cell("td", r.score === null ? "—" : r.score.toFixed(2), "num"));
        tr.appendChild(cell("td", r.official_rank === null ? "—" : String(r.official_rank), "num"));
        tr.appendChild(cell("td", r.shift > 0 ? "▲" + r.shift : (r.shift < 0 ? "▼" + (-r.shift) : "="), "num shift" + (r.shift > 0 ? " up" : (r.shift < 0 ? " down" : ""))));
        tr.appendChild(cell("td", r.drivers.map(function (d) { return d.name + " (" + (d.value > 0 ? "+" : "") + d.value.toFixed(2) + ")"; }).join("; "), "drivers hide-phone"));
        body.appendChild(tr);
      });
      table.replaceChild(body, table.tBodies[0]);
      Object.keys(data.weights).forEach(function (code) {
        var out = document.getElementById("share-" + code);
        if (out) out.textContent = data.weights[code].toFixed(1) + " %";
      });
      var weights = {};
      (data.settings.w || "").split(",").forEach(function (item) {
        var at = item.lastIndexOf(":"); if (at > 0) weights[item.slice(0, at)] = item.slice(at + 1);
      });
      form.querySelectorAll("input[type=range][data-code]").forEach(function (slider) {
        slider.value = weights[slider.dataset.code] !== undefined ? weights[slider.dataset.code] : slider.dataset.official;
      });
      ["norm", "agg", "imp"].forEach(function (key) { form.querySelector("[name=" + key + "]").value = data.settings[key]; });
      var url = data.link + (preset.value ? "&preset=" + encodeURIComponent(preset.value) : "");
      link.value = location.origin + url;
      history.replaceState(null, "", url);
      var save = document.getElementById("variant-form");
      if (save) {
        save.querySelectorAll("input[data-setting]").forEach(function (el) { el.remove(); });
        Object.keys(data.settings).forEach(function (key) {
          var el = document.createElement("input");
          el.type = "hidden"; el.name = key; el.value = data.settings[key]; el.dataset.setting = "";
          save.appendChild(el);
        });
      }
      status.textContent = strings.status.replace("{moved}", data.moved).replace("{ms}", Math.round(data.milliseconds));
      table.dataset.version = String(++version);
    }

    function refresh(usePreset) {
      if (pending) pending.abort();
      pending = new AbortController();
      fetch(form.dataset.endpoint + "?" + settingsQuery(usePreset).toString(), { signal: pending.signal, headers: { Accept: "application/json" } })
        .then(function (response) { if (!response.ok) throw new Error(String(response.status)); return response.json(); })
        .then(draw)
        .catch(function (error) { if (error.name !== "AbortError") status.textContent = strings.error; });
    }

    form.addEventListener("input", function (event) {
      if (event.target === preset) return;
      preset.value = "";
      refresh(false);
    });
    preset.addEventListener("change", function () { refresh(true); });
    form.addEventListener("submit", function (event) { event.preventDefault(); refresh(false); });
    table.dataset.version = "0";
  }

  ready(function () { restoreTyped(); autosubmit(); scrollHints(); counters(); confirmations(); navToggle(); mapPick(); polling(); ballot(); serviceQuestions(); whatIf(); });
})();
