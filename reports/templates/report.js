// Draw every figure from its embedded JSON, and open a run's <details> when a link targets it.
(function () {
  "use strict";
  var config = {displaylogo: false, responsive: true, toImageButtonOptions: {format: "svg", scale: 1}};
  document.querySelectorAll("script[type='application/json'][data-plot]").forEach(function (node) {
    var figure = JSON.parse(node.textContent);
    Plotly.newPlot(document.getElementById(node.dataset.plot), figure.data, figure.layout, config);
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
})();
