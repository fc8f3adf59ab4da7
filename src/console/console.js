// callrelay console: refreshes live parts in place and previews the playground as you type.
// Everything it inserts is HTML the console rendered (and escaped) itself.
"use strict";

document.querySelectorAll("[data-refresh]").forEach((el) => {
  const refresh = async () => {
    try {
      const answer = await fetch(el.dataset.refresh, { credentials: "same-origin" });
      if (answer.ok) el.innerHTML = await answer.text();
    } catch (_) { /* offline for a moment: try again next time */ }
  };
  setInterval(refresh, 2000);
});

const playground = document.getElementById("playground");
if (playground) {
  const preview = document.getElementById("preview");
  let timer = null;
  let latest = 0;
  const update = async () => {
    const asked = ++latest;
    const answer = await fetch(playground.dataset.preview, {
      method: "POST",
      credentials: "same-origin",
      body: new URLSearchParams(new FormData(playground)),
    });
    if (asked === latest) preview.innerHTML = await answer.text();
  };
  playground.addEventListener("input", (e) => {
    if (e.target.tagName !== "TEXTAREA") return;
    clearTimeout(timer);
    timer = setTimeout(update, 250);
  });
  // "Send test" posts what the preview shows and reports the platform's answers in place.
  const send = playground.querySelector("[formaction='/playground/send']");
  if (send) {
    send.addEventListener("click", async (e) => {
      e.preventDefault();
      const answer = await fetch("/playground/send?fragment=1", {
        method: "POST",
        credentials: "same-origin",
        body: new URLSearchParams(new FormData(playground)),
      });
      document.getElementById("sent").innerHTML = await answer.text();
    });
  }
  // A new channel or sample starts from its own template: reload the page for it.
  playground.querySelectorAll("select").forEach((s) =>
    s.addEventListener("change", () => {
      const params = new URLSearchParams({
        channel: playground.elements.channel.value,
        sample: playground.elements.sample.value,
      });
      window.location.search = params.toString();
    }),
  );
}
