// Keeps a dashboard page live: re-fetch its <main> every few seconds and swap it in, unless the
// person is typing in a form or has a details panel open. Without JavaScript the page still reads.
(function () {
  "use strict";
  const main = document.querySelector("main[data-refresh]");
  if (!main) { return; }
  const seconds = Number(main.dataset.refresh) || 5;
  async function refresh() {
    const busy = main.contains(document.activeElement) && document.activeElement.tagName === "INPUT";
    if (document.hidden || busy || main.querySelector("details[open]")) { return; }
    try {
      const response = await fetch(window.location.href, { headers: { "X-Fragment": "1" }, credentials: "same-origin" });
      if (response.redirected || !response.ok) { return; }
      main.innerHTML = await response.text();
    } catch (error) {
      // Offline for a moment: try again at the next tick.
    }
  }
  window.setInterval(refresh, seconds * 1000);
}());
