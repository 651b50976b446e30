// Draw every figure from its embedded JSON, and open a run's <details> when a link targets it.
(function () {
  "use strict";
  var config = {displaylogo: false, responsive: true, toImageButtonOptions: {format: "svg", scale: 1}};
  function draw(node) {
    var figure = JSON.parse(node.textContent);
    Plotly.newPlot(document.getElementById(node.dataset.plot), figure.data, figure.layout, config);
    node.removeAttribute("data-plot");
  }
  // A run's figures are drawn when its <details> first opens: a suite has hundreds of runs.
  document.querySelectorAll("script[type='application/json'][data-plot]").forEach(function (node) {
    var details = node.closest("details");
    if (node.hasAttribute("data-lazy") && details && !details.open) {
      details.addEventListener("toggle", function () { if (details.open && node.dataset.plot) { draw(node); } });
    } else {
      draw(node);
    }
  });
  function openTarget() {
    var id = decodeURIComponent(window.location.hash.slice(1));
    var target = id && document.getElementById(id);
    if (target && target.tagName === "DETAILS") {
      target.open = true;
      target.scrollIntoView();
    }
  }
  window.addEventListener("hashchange", openTarget);
  openTarget();
  // Pinned titles (dataset groups, blocks) start right of the sticky method column.
  document.querySelectorAll(".leaderboard-wrap").forEach(function (wrap) {
    var method = wrap.querySelector("th.method");
    if (method) { wrap.style.setProperty("--method-width", method.offsetWidth + "px"); }
  });
})();
