// Live updates: the workspace's server-sent event stream while the tab is visible, polling every 5 s where
// the stream fails, nothing while the tab is hidden.
import { readEvents, workspacePath } from "./api.js";

const POLL_MS = 5000;
const RECONNECT_MS = 1000;

// onRows(body) gets each `jobs` event; poll() is called instead when the stream cannot be used.
export function liveUpdates({ onRows, poll, onError }) {
  const label = document.getElementById("live");
  const say = (text) => { if (label) label.textContent = text; };
  let stream = null;
  let timer = null;
  let polling = false;

  async function tick() {
    if (document.hidden) return;
    try {
      await poll();
    } catch (error) {
      onError?.(error);
    }
    timer = setTimeout(tick, POLL_MS);
  }

  async function follow() {
    if (stream || document.hidden) return;
    const controller = (stream = new AbortController());
    say("Live");
    try {
      await readEvents(workspacePath("/dashboard/stream"), (name, data) => {
        if (name === "jobs") onRows(data);
      }, controller.signal);
    } catch {
      if (controller.signal.aborted) return;
      polling = true;
      say(`Updating every ${POLL_MS / 1000} s`);
      timer = setTimeout(tick, POLL_MS);
      return;
    } finally {
      if (stream === controller) stream = null;
    }
    if (!controller.signal.aborted) setTimeout(follow, RECONNECT_MS); // the server ended the stream
  }

  document.addEventListener("visibilitychange", () => {
    if (document.hidden) {
      stream?.abort();
      stream = null;
      clearTimeout(timer);
      say("Paused while this tab is hidden");
    } else if (polling) {
      say(`Updating every ${POLL_MS / 1000} s`);
      tick();
    } else {
      follow();
    }
  });
  follow();
}
