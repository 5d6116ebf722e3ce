// Replaces each panel's content with what the server pushes; the server renders everything.
(function () {
  "use strict";
  var token = new URLSearchParams(location.search).get("token");
  var url = "events" + (token ? "?token=" + encodeURIComponent(token) : "");
  var updates = 0;
  function apply(panels) {
    Object.keys(panels).forEach(function (id) {
      var el = document.getElementById(id);
      if (el) { el.innerHTML = panels[id]; }
    });
    updates += 1;
    document.body.dataset.updates = String(updates);
  }
  var source = new EventSource(url);
  source.addEventListener("panels", function (e) { apply(JSON.parse(e.data)); });
  source.onerror = function () { document.body.dataset.disconnected = "true"; };
  source.onopen = function () { delete document.body.dataset.disconnected; };
})();
