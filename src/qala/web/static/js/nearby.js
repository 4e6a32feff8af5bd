// Duplicate hints on the report form: as the resident picks a service and a point, ask the
// server for open requests of that service nearby and list them, each with a "support" button
// that posts the form to that request instead. Without this script the server shows the same
// list once before filing (see _nearby_hints.html).
(function () {
  "use strict";

  function ready(fn) {
    if (document.readyState !== "loading") fn(); else document.addEventListener("DOMContentLoaded", fn);
  }

  ready(function () {
    var section = document.getElementById("nearby-hints");
    var form = document.getElementById("request-form");
    if (!section || !form) return;
    var list = document.getElementById("nearby-list");
    var notice = document.getElementById("nearby-notice");
    var seen = document.getElementById("nearby_seen");
    var service = form.querySelector("[name=service_code]");
    var lat = form.querySelector("[name=lat]"), lon = form.querySelector("[name=long]");
    var description = form.querySelector("[name=description]");
    var asked = "", pending = null, timer = null;

    function key() {
      return service.value + "|" + lat.value.trim() + "|" + lon.value.trim();
    }

    function item(hint) {
      var li = document.createElement("li");
      li.className = "nearby-item";
      li.dataset.id = hint.id;
      var link = document.createElement("a");
      link.href = hint.url;
      link.target = "_blank";
      link.rel = "noopener";
      link.textContent = hint.label;
      li.appendChild(link);
      li.appendChild(document.createTextNode(" · " + hint.distance_text + " · "));
      var count = document.createElement("span");
      count.className = "supporters";
      count.textContent = hint.supporters_text;
      li.appendChild(count);
      if (hint.description) {
        li.appendChild(document.createElement("br"));
        var text = document.createElement("small");
        text.textContent = hint.description;
        li.appendChild(text);
      }
      li.appendChild(document.createElement("br"));
      var button = document.createElement("button");
      button.type = "submit";
      button.className = "small secondary support-button";
      button.formAction = "/requests/" + encodeURIComponent(hint.id) + "/support";
      button.formNoValidate = true;
      button.formEnctype = "application/x-www-form-urlencoded";  // never upload a chosen photo here
      button.textContent = section.dataset.support;
      li.appendChild(button);
      return li;
    }

    function show(hints, forKey) {
      list.replaceChildren.apply(list, hints.map(item));
      section.hidden = hints.length === 0;
      if (notice) notice.hidden = hints.length === 0;
      // The resident has now seen what is near this point: the server need not stop the post.
      seen.value = forKey;
    }

    function ask() {
      var wanted = key();
      var la = parseFloat(lat.value.replace(",", ".")), lo = parseFloat(lon.value.replace(",", "."));
      if (!service.value || isNaN(la) || isNaN(lo) || wanted === asked) return;
      asked = wanted;
      if (pending) pending.abort();
      pending = new AbortController();
      var params = new URLSearchParams({
        city: section.dataset.city, service: service.value, lat: String(la), long: String(lo),
        text: (description ? description.value : "").slice(0, 4000)
      });
      fetch(section.dataset.url + "?" + params.toString(), {
        headers: { Accept: "application/json" }, signal: pending.signal, credentials: "same-origin"
      })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (data) { if (data && key() === wanted) show(data.requests || [], wanted); })
        .catch(function () { asked = ""; /* the server still shows the hints before filing */ });
    }

    function soon() {
      clearTimeout(timer);
      timer = setTimeout(ask, 150);
    }

    service.addEventListener("change", soon);
    lat.addEventListener("change", soon);
    lon.addEventListener("change", soon);
    // The map pick (qala.js) writes the fields without a change event.
    document.querySelectorAll("svg.map-pick").forEach(function (svg) {
      svg.addEventListener("click", soon);
      svg.addEventListener("keydown", soon);
    });
    soon();
  });
})();
