// #/documents[?teamId=]: the data sources the user can use (or one team's): upload with a progress bar,
// status until `ready`, the summary, links to topics and convos, download, share and delete.
import { confirmButton, field, guarded, h, when } from "../dom.js";
import { renderMarkdown } from "../markdown.js";
import { pollUntil } from "../poll.js";
import { ACCEPT, uploadFile } from "../upload.js";

const SETTLED = new Set(["ready", "failed"]);
const STATUS_TEXT = {
  awaiting_upload: "waiting for the file",
  processing: "processing",
  ready: "ready",
  failed: "failed",
};

function size(bytes) {
  if (bytes == null) return "";
  if (bytes < 1000) return `${bytes} B`;
  if (bytes < 1e6) return `${(bytes / 1e3).toFixed(1)} KB`;
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

export async function render(container, params, app) {
  let alive = true;
  const live = () => alive; // false once the view is left (the function render returns)
  const teamId = params.teamId || null;
  const heading = h("h1", {}, "Documents");
  const announce = h("p", { class: "muted", role: "status", "aria-live": "polite" });
  const list = h("ul", { class: "list documents", "aria-label": "Documents" });
  const items = new Map(); // data source id -> {source, item, refresh(source)}

  const [teams, everything] = await Promise.all([app.api.all("/teams"), app.api.all("/data-sources")]);
  const teamName = (id) => (teams.find((t) => t.id === id) || { name: `team ${id.slice(0, 8)}` }).name;
  if (teamId) heading.textContent = `Documents of ${teamName(teamId)}`;

  // The topics and convos a document may be linked to, read once, when a document is first opened.
  let targets = null;
  const linkTargets = () => {
    targets = targets || Promise.all([app.api.all("/topics"), app.api.all("/convos")]);
    return targets;
  };

  // Upload: one progress bar per file, kept, ending with the status its document settles on.
  const files = h("input", { type: "file", name: "file", multiple: true, accept: ACCEPT, required: true });
  const owner = h("select", { name: "owner" },
    h("option", { value: "" }, "Me"),
    teams.map((t) => h("option", { value: t.id, selected: t.id === teamId }, `Team ${t.name}`)));
  const uploads = h("div", { class: "uploads" });
  const form = h("form", { class: "card", "aria-label": "Upload documents" },
    h("div", { class: "grid" }, field("Files (text, Markdown, CSV, JSON, HTML or PDF; up to 50 MB)", files), field("Owner", owner)),
    h("p", {}, h("button", { type: "submit" }, "Upload")), uploads);
  form.addEventListener("submit", guarded(app, async () => {
    const chosen = [...files.files];
    const ownerQuery = owner.value ? { teamId: owner.value } : {};
    form.reset();
    owner.value = ownerQuery.teamId || "";
    // One after the other; a file that fails says why and the next one goes on.
    for (const file of chosen) await upload(file, ownerQuery).catch((error) => app.toast(error.message));
  }));

  async function upload(file, ownerQuery) {
    const bar = h("progress", { max: 100, value: 0 });
    const label = h("label", {}, `Uploading ${file.name}`);
    const percent = h("span", { class: "muted" }, "0 %");
    bar.id = `upload-${Math.random().toString(36).slice(2)}`;
    label.setAttribute("for", bar.id);
    const entry = h("div", { class: "upload" }, label, h("div", { class: "bar" }, bar, percent));
    uploads.append(entry);
    try {
      const source = await uploadFile(app.api, file, ownerQuery, (fraction, way) => {
        bar.value = Math.round(fraction * 100);
        entry.dataset.way = way;
        percent.textContent = `${bar.value} %${way === "presigned" ? " (straight to storage)" : ""}`;
      });
      bar.value = 100;
      label.textContent = `Uploaded ${file.name}`;
      percent.textContent = "100 %, now processing";
      announce.textContent = `${file.name} uploaded; it is being processed.`;
      show(source, true);
      watch(source.id).then((settled) => {
        if (settled) percent.textContent = `100 %, ${STATUS_TEXT[settled.status]}`;
      }, (error) => app.toast(error.message));
    } catch (error) {
      entry.classList.add("error");
      label.textContent = `${file.name} was not uploaded`;
      percent.textContent = error.message;
      throw error;
    }
  }

  // Status until ready (or failed): asks again with a growing pause; stops when the view is left.
  async function watch(id) {
    const settled = await pollUntil(async () => {
      const source = await app.api.get(`/data-sources/${id}`);
      items.get(id)?.refresh(source);
      return SETTLED.has(source.status) ? source : undefined;
    }, { alive: live });
    if (!settled) return undefined;
    announce.textContent = settled.status === "ready" ? `${settled.name} is ready.` : `${settled.name} failed: ${settled.error?.message || "unreadable"}.`;
    return settled;
  }

  function show(source, first = false) {
    if (teamId && source.teamId !== teamId) return;
    list.querySelector(".empty")?.remove();
    const name = h("span", { class: "name" }, source.name);
    const status = h("span", { class: "badge" });
    const facts = h("span", { class: "muted" });
    const summary = h("summary", {}, name, " ", status, " ", facts);
    const body = h("div", { class: "document-body" });
    const details = h("details", {}, summary, body);
    const item = h("li", { class: "document", "data-id": source.id }, details);
    const state = { source, item };
    state.refresh = (next) => {
      const changed = state.source.status !== next.status;
      state.source = next;
      name.textContent = next.name;
      status.textContent = STATUS_TEXT[next.status] || next.status;
      status.dataset.status = next.status;
      facts.textContent = [size(next.size), next.teamId ? `team ${teamName(next.teamId)}` : "", when(next.createdAt)].filter(Boolean).join(" · ");
      if (changed && details.open) guarded(app, () => fill(state, body))();
    };
    state.refresh(source);
    details.addEventListener("toggle", () => {
      if (details.open && !body.childElementCount) guarded(app, () => fill(state, body))();
    });
    items.set(source.id, state);
    if (first) list.prepend(item);
    else list.append(item);
  }

  // The panel of an opened document: download, summary, links, share, delete.
  async function fill(state, body) {
    const source = state.source;
    const download = h("p", {});
    const summary = h("div", { class: "summary" });
    const links = h("ul", { class: "list", "aria-label": `Topics and convos ${source.name} is linked to` });
    const error = source.status === "failed" ? h("p", { class: "error" }, `Processing failed: ${source.error?.message || "unreadable"}`) : null;
    body.replaceChildren(error, download,
      h("h2", {}, "Summary"), summary,
      h("h2", {}, "Linked to"), links, await linkForm(source, links),
      h("p", { class: "actions" },
        h("a", { href: `#/sharing/data_source/${source.id}` }, `Share ${source.name}`), " ",
        confirmButton(app, "Delete", async () => {
          await app.api.del(`/data-sources/${source.id}`);
          items.delete(source.id);
          state.item.remove();
          app.toast(`${source.name} deleted.`);
        })));
    if (source.status !== "ready") {
      download.append(h("span", { class: "muted" }, source.status === "failed" ? "A file that failed its checks is never served." : "Download and summary come once the document is ready."));
      summary.append(h("span", { class: "muted" }, "—"));
    } else {
      // A signed URL, valid a few minutes: fetched when the document is opened.
      const url = await app.api.get(`/data-sources/${source.id}/download-url`);
      download.append(h("a", { href: url, class: "download" }, `Download ${source.name}`), h("span", { class: "muted" }, " (link valid 5 minutes)"));
      const ask = h("button", { type: "button" }, "Summarise");
      ask.addEventListener("click", guarded(app, () => summarise(source, summary, ask)));
      summary.append(ask);
    }
    await showLinks(source, links);
  }

  async function summarise(source, slot, button) {
    button.disabled = true;
    button.textContent = "Writing the summary…";
    const written = await pollUntil(async () => {
      const answer = await app.api.post(`/data-sources/${source.id}/summary`);
      if (answer.content) return answer;
      return { wait: (Date.parse(answer.retryAfter) - Date.now()) / 1000 }; // 202 {retryAfter}
    }, { alive: live });
    if (!written) return;
    const text = h("div", { class: "markdown" });
    text.innerHTML = renderMarkdown(written.content.text); // sanitised: a model wrote it
    const quotes = (written.annotations || []).map((a) => h("li", {}, h("blockquote", {}, a.text)));
    slot.replaceChildren(text, quotes.length ? h("details", {}, h("summary", {}, `Sources (${quotes.length} passages)`), h("ul", { class: "citations" }, quotes)) : null);
  }

  // Links are `dependent` grants of the document to a topic or convo (Query Grantees lists them).
  async function showLinks(source, links) {
    const [grantees, [topics, convos]] = await Promise.all([
      app.api.all("/auth/grantees", { objectType: "data_source", objectId: source.id }),
      linkTargets(),
    ]);
    const linked = grantees.filter((g) => g.role === "dependent" && (g.type === "topic" || g.type === "convo"));
    links.replaceChildren();
    if (!linked.length) links.append(h("li", { class: "row muted" }, "Not linked: answers use it only where it is linked."));
    for (const link of linked) {
      const known = (link.type === "topic" ? topics : convos).find((o) => o.id === link.id);
      const label = `${link.type === "topic" ? "Topic" : "Convo"} ${known ? known.name || "(unnamed)" : link.id}`;
      const unlink = h("button", { type: "button" }, "Unlink");
      unlink.addEventListener("click", guarded(app, async () => {
        await app.api.del(`/${link.type}s/${link.id}/data-sources/${source.id}`);
        app.toast(`${source.name} unlinked from ${label}.`);
        await showLinks(source, links);
      }));
      links.append(h("li", { class: "row" }, h("a", { class: "grow", href: `#/${link.type}s/${link.id}` }, label), unlink));
    }
  }

  async function linkForm(source, links) {
    const [topics, convos] = await linkTargets();
    const target = h("select", { name: "target", required: true },
      h("option", { value: "" }, "Choose…"),
      h("optgroup", { label: "Topics" }, topics.map((t) => h("option", { value: `topics/${t.id}` }, t.name))),
      h("optgroup", { label: "Convos" }, convos.map((c) => h("option", { value: `convos/${c.id}` }, c.name || "(unnamed)"))));
    const form = h("form", { class: "inline", "aria-label": `Link ${source.name}` },
      field(`Link ${source.name} to a topic or convo`, target), h("button", { type: "submit" }, "Link"));
    form.addEventListener("submit", guarded(app, async () => {
      await app.api.put(`/${target.value}/data-sources/${source.id}`);
      app.toast(`${source.name} linked.`);
      form.reset();
      await showLinks(source, links);
    }));
    return form;
  }

  container.replaceChildren(
    teamId ? h("p", {}, h("a", { href: `#/teams/${teamId}` }, "← Team")) : null,
    heading, form, announce, h("h2", {}, "Documents you can use"), list);
  const shown = everything.filter((s) => !teamId || s.teamId === teamId);
  if (!shown.length) list.append(h("li", { class: "row muted empty" }, "No document yet."));
  for (const source of shown) {
    show(source);
    if (!SETTLED.has(source.status)) watch(source.id).catch((error) => app.toast(error.message));
  }
  return () => { alive = false; };
}
