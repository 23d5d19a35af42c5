// The chat pages refresh their messages on their own: every few seconds the page is fetched
// again and each thread's message list is replaced by the new one, so a reply shows up
// without a reload and without touching what is being typed. Without JavaScript the page
// works the same, refreshed by hand.
(function () {
  "use strict";
  var every = 4000;
  function refresh() {
    fetch(window.location.pathname, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (answer) { return answer.ok ? answer.text() : null; })
      .then(function (html) {
        if (!html) { return; }
        var fresh = new DOMParser().parseFromString(html, "text/html");
        document.querySelectorAll("ol[data-thread]").forEach(function (list) {
          var next = fresh.querySelector('ol[data-thread="' + list.dataset.thread + '"]');
          if (next && next.innerHTML !== list.innerHTML) { list.innerHTML = next.innerHTML; }
        });
      })
      .catch(function () { /* offline for a moment: try again next time */ })
      .finally(function () { window.setTimeout(refresh, every); });
  }
  window.setTimeout(refresh, every);
})();
