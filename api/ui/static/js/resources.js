// Data sources and destinations: list, create and edit as JSON. Secrets come back as *** and a *** sent back
// keeps the stored secret, so editing never reveals or loses one.
import { api, can, workspacePath } from "./api.js";
import { el } from "./format.js";
import { notice, start } from "./layout.js";

const $ = (id) => document.getElementById(id);
const READ_ONLY = new Set(["id", "workspaceId", "createdAt", "updatedAt", "version"]);
const TEMPLATES = {
  "data-sources": { name: "", type: "http", baseUrl: "https://", headers: {}, entities: [{ name: "", path: "/" }] },
  destinations: { name: "", type: "mongodb", database: "" },
};
let who = null;
let editing = null; // {kind, id, version} or {kind} for a new one

function details(resource) {
  if (resource.type === "http") return `${resource.baseUrl} · ${(resource.entities || []).map((e) => e.name).join(", ")}`;
  if (resource.type === "command") return (resource.argv || []).join(" ");
  return resource.database || resource.url || "";
}

async function loadKind(section) {
  const kind = section.dataset.kind;
  const body = await api(workspacePath(`/${kind}?limit=200`));
  section.querySelector("tbody").replaceChildren(...body.items.map((resource) => {
    const edit = can(who, "editor")
      ? el("button", { type: "button", "aria-label": `Edit ${resource.name}` }, "Edit")
      : el("span", { class: "muted" }, "read only");
    if (can(who, "editor")) edit.addEventListener("click", () => openEditor(kind, resource.id));
    return el("tr", {},
      el("th", { scope: "row", "data-label": "Name" }, resource.name),
      el("td", { "data-label": "Type" }, resource.type),
      el("td", { "data-label": "Details" }, details(resource)),
      el("td", { "data-label": "Edit" }, edit));
  }));
  section.querySelector(".empty").hidden = body.items.length > 0;
}

function showEditor(title, value) {
  $("editor").hidden = false;
  $("editor-heading").textContent = title;
  $("resource-json").value = JSON.stringify(value, null, 2);
  $("resource-errors").replaceChildren();
  $("editor-heading").focus();
}

async function openEditor(kind, id) {
  const resource = await api(workspacePath(`/${kind}/${encodeURIComponent(id)}`));
  editing = { kind, id, version: resource.version };
  // Nulls are the other type's fields (argv of an http source...), which a write refuses: leave them out.
  const fields = Object.fromEntries(Object.entries(resource).filter(([key, value]) => !READ_ONLY.has(key) && value !== null));
  showEditor(`Edit ${resource.name}`, fields);
}

async function save(event) {
  event.preventDefault();
  const errors = $("resource-errors");
  let body;
  try {
    body = JSON.parse($("resource-json").value);
  } catch (error) {
    errors.replaceChildren(el("li", {}, `Not JSON: ${error.message}`));
    return;
  }
  try {
    if (editing.id) {
      await api(workspacePath(`/${editing.kind}/${encodeURIComponent(editing.id)}`), { method: "PUT", body, ifMatch: editing.version });
    } else {
      await api(workspacePath(`/${editing.kind}`), { method: "POST", body });
    }
  } catch (error) {
    const items = (Array.isArray(error.details) ? error.details : []).map((d) => el("li", {}, `${d.field}: ${d.message}`));
    errors.replaceChildren(el("li", {}, error.message), ...items);
    return;
  }
  $("editor").hidden = true;
  notice("Saved.");
  await loadAll();
}

async function loadAll() {
  for (const section of document.querySelectorAll("section[data-kind]")) {
    try {
      await loadKind(section);
    } catch (error) {
      notice(`Could not load ${section.dataset.kind}: ${error.message}`, "error");
    }
  }
}

for (const section of document.querySelectorAll("section[data-kind]")) {
  section.querySelector(".new").addEventListener("click", () => {
    editing = { kind: section.dataset.kind };
    showEditor(`New ${section.dataset.kind === "destinations" ? "destination" : "data source"}`, TEMPLATES[section.dataset.kind]);
  });
}
$("resource-form").addEventListener("submit", save);
$("resource-cancel").addEventListener("click", () => { $("editor").hidden = true; });

const context = await start();
if (context) {
  who = context.who;
  await loadAll();
}
