// Follows a live run's log over server-sent events: each line is appended as text (never as
// markup), and the page reloads once the run ends to show its final states.
const log = document.querySelector("pre.log[data-follow]");
if (log) {
  const source = new EventSource(log.dataset.follow);
  source.onmessage = (event) => {
    const line = JSON.parse(event.data);
    const where = document.createElement("span");
    where.className = "where";
    where.textContent = `${line.job} › ${line.step}`;
    log.append(where, ` ${line.text}\n`);
    log.dataset.lines = String(Number(log.dataset.lines || "0") + 1);
  };
  source.addEventListener("end", () => {
    source.close();
    window.location.reload();
  });
}
