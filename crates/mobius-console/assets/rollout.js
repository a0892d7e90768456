// Follows a rollout in flight: every few seconds the page is fetched again and each live part
// (`[data-part]`, by id) whose markup changed is swapped in — parts that did not change stay,
// so a focused button keeps its focus. The markup is the server's own, escaped as rendered.
// Once the rollout is over the whole page is taken as it now is, and following stops.
const live = document.querySelector("[data-live]");
if (live) {
  const every = Number(live.dataset.live) || 3000;
  const follow = async () => {
    let text;
    try {
      const response = await fetch(window.location.href, { headers: { Accept: "text/html" }, credentials: "same-origin" });
      if (!response.ok || response.redirected) return false;
      text = await response.text();
    } catch {
      return true; // A dropped connection: try again at the next tick.
    }
    const next = new DOMParser().parseFromString(text, "text/html");
    const fresh = next.querySelector(".rollout");
    if (!fresh) return false;
    if (!fresh.hasAttribute("data-live")) {
      document.querySelector(".rollout").replaceWith(document.adoptNode(fresh));
      return false;
    }
    for (const part of fresh.querySelectorAll("[data-part][id]")) {
      const old = document.getElementById(part.id);
      if (old && old.outerHTML !== part.outerHTML) old.replaceWith(document.adoptNode(part));
    }
    return true;
  };
  const tick = async () => {
    if (await follow()) window.setTimeout(tick, every);
  };
  window.setTimeout(tick, every);
}
