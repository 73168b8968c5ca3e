// What every page does first: find the token, ask whoami, say who is signed in, show only what the role may do.
import { can, session, whoami } from "./api.js";
import { viewerZone } from "./format.js";

let noticeTimer = null;

// Errors stay until the next message; news clears itself so it never describes a state long gone.
export function notice(text, kind = "info") {
  const node = document.getElementById("notice");
  node.textContent = text;
  node.dataset.kind = kind;
  clearTimeout(noticeTimer);
  if (kind === "info") noticeTimer = setTimeout(() => { node.textContent = ""; }, 10000);
}

export function showUnavailable(id) {
  document.getElementById(id).hidden = false;
}

// Reveals [data-needs=role] elements the role may use; they start hidden so a viewer never sees them.
export function revealFor(who, root = document) {
  for (const node of root.querySelectorAll("[data-needs]")) node.hidden = !can(who, node.dataset.needs);
}

export async function start() {
  if (!session.token()) {
    location.assign("/ui/signin");
    return null;
  }
  document.getElementById("sign-out").addEventListener("click", () => {
    session.clear();
    location.assign("/ui/signin");
  });
  let who;
  try {
    who = await whoami();
  } catch (error) {
    notice(`Could not check the token: ${error.message}`, "error");
    return null;
  }
  if (!who.admin) session.setWorkspace(who.workspaceId);
  const workspace = session.workspace();
  const text = document.getElementById("who-text");
  text.textContent = `${workspace ? `Workspace ${workspace}` : "No workspace chosen"} · role ${who.role}` +
    (who.name ? ` · token “${who.name}”` : "") + ` · times in ${viewerZone}`;
  if (who.admin) {
    for (const node of document.querySelectorAll("[data-admin-only]")) node.hidden = false;
    const form = document.getElementById("workspace-form");
    const input = document.getElementById("workspace-input");
    form.hidden = false;
    input.value = workspace || "";
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      session.setWorkspace(input.value.trim());
      location.reload();
    });
  }
  revealFor(who);
  if (!workspace && document.body.dataset.section !== "admin") {
    notice("An admin token is valid for every workspace: name one above to see its jobs.");
    return null;
  }
  return { who, workspace };
}
