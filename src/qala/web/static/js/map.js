// Qala — the tiled city map (templates/_map.html). Leaflet (static/vendor/leaflet, from npm) draws
// the configured tiles in place of the offline SVG; the markers and their popups come from the
// hidden list the server wrote next to it, already in the page's language. No inline script, no
// HTML built from strings: popups are the list's own elements.
(function () {
  "use strict";

  var COLOURS = { request: "#b3261e", closed: "#2e7d32", project: "#6a4c93", district: "#00677f" };

  function text(value) {
    // The deployment's attribution as plain text (Leaflet puts attributions in as HTML).
    var holder = document.createElement("span");
    holder.textContent = value || "";
    return holder.innerHTML;
  }

  function draw(box) {
    var list = box.nextElementSibling;
    var bounds = box.dataset.bounds.split(",").map(parseFloat);
    box.textContent = "";  // the SVG gives way to the tiles
    var map = L.map(box, { zoomControl: false, attributionControl: false });
    L.control.zoom({ zoomInTitle: box.dataset.zoomIn, zoomOutTitle: box.dataset.zoomOut }).addTo(map);
    L.control.attribution({ prefix: false }).addAttribution(text(box.dataset.attribution)).addTo(map);
    L.tileLayer(box.dataset.tileUrl, { maxZoom: 18, crossOrigin: false }).addTo(map);
    map.fitBounds([[bounds[0], bounds[1]], [bounds[2], bounds[3]]]);
    if (!list || !list.classList.contains("map-markers")) return;
    Array.prototype.forEach.call(list.children, function (item) {
      var lat = parseFloat(item.dataset.lat), lon = parseFloat(item.dataset.lon);
      var kind = item.dataset.kind;
      if (isNaN(lat) || isNaN(lon)) return;
      if (kind === "district") {
        var label = document.createElement("span");
        label.textContent = item.textContent;
        L.circleMarker([lat, lon], { radius: 4, color: COLOURS.district, weight: 2, fillColor: "#fff", fillOpacity: 1 })
          .bindTooltip(label, { permanent: true, direction: "right", className: "district-label" })
          .addTo(map);
        return;
      }
      var content = document.createElement("div");
      content.className = "map-popup";
      while (item.firstChild) content.appendChild(item.firstChild);
      var colour = item.dataset.status === "closed" ? COLOURS.closed : (COLOURS[kind] || COLOURS.request);
      var marker = L.circleMarker([lat, lon], {
        radius: kind === "project" ? 9 : 7, color: "#fff", weight: 2, fillColor: colour, fillOpacity: 0.9,
        className: "marker-" + kind
      });
      marker.bindPopup(content);
      marker.on("popupopen", function (event) {
        var close = event.popup.getElement() && event.popup.getElement().querySelector(".leaflet-popup-close-button");
        if (close) { close.setAttribute("aria-label", box.dataset.close); close.title = box.dataset.close; }
      });
      marker.addTo(map);
    });
  }

  function start() {
    if (typeof L === "undefined") return;  // the vendored Leaflet was not built: the SVG stays
    document.querySelectorAll(".tile-map[data-tile-url]").forEach(draw);
  }

  if (document.readyState !== "loading") start(); else document.addEventListener("DOMContentLoaded", start);
})();
