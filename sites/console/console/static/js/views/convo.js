// #/convos/<id>: the live convo. Steps over REST, then one WebSocket for everything that happens:
// new steps from everyone, answers streaming in as deltas, edits, deletions, regens, status.
//
// Deltas follow the documented rule: an update with `content` replaces the text (lastSeq = its seq);
// a `delta` with seq == lastSeq + 1 appends; seq <= lastSeq is a duplicate; seq > lastSeq + 1 is a
// gap, and the view asks for a snapshot with `convoSync` (also sent on every open). A server that
// does not know convoSync answers `error`: the view then applies the deltas it gets, and the
// answer's final update (its whole text) completes it.
//
// Alternates: the steps of a group (groupId) page as ‹ 1/2 ›, the primary first; a regen replaces
// an answer on the server, so the answers it replaced are kept here, for this page, to page back to.
import { confirmButton, guarded, h, renameButton } from "../dom.js";
import { renderMarkdown } from "../markdown.js";

const REGENERABLE = new Set(["completed", "failed", "stopped"]);
const LINK_MAX_AGE_MS = 4 * 60 * 1000; // download URLs are signed for 5 minutes

export async function render(container, params, app) {
  const convoId = params.convoId;
  const me = app.user.id;
  const convo = await app.api.get(`/convos/${convoId}`);

  const steps = new Map(); // id -> step (`_n`: arrival order)
  const lastSeq = new Map();
  const replaced = new Map(); // replyToStepId -> answers a regen replaced (this page only)
  const shown = new Map(); // slot -> index of the version shown
  const items = new Map(); // slot -> <li>
  const bodies = new Map(); // step id -> its rendered body element
  const ratings = new Map(); // step id -> this user's "like" | "dislike"
  const suggestions = new Map(); // step id -> [text]
  const links = new Map(); // data source id -> {url, at}
  const syncRequests = new Set();
  let arrivals = 0;
  let socket = null;
  let syncUnsupported = false;
  let syncing = false;
  let left = false;
  let retry = 1000;
  let pending = new Set();

  // ---------------------------------------------------------------- the page
  const title = h("h1", {}, convo.name || "(unnamed convo)");
  const status = h("p", { class: "status", role: "status", "aria-live": "polite" }, "Connecting…");
  const list = h("ol", { class: "steps", "aria-label": "Steps", "aria-live": "off" });
  const input = h("textarea", { id: "ask", name: "ask", rows: 2, placeholder: "Ask something (Enter sends, Shift+Enter: new line)", required: true });
  const wantAnswer = h("input", { type: "checkbox", name: "reply", checked: true });
  const form = h("form", { class: "ask", "aria-label": "Ask" },
    h("div", { class: "field" }, h("label", { for: "ask" }, "Your message"), input,
      h("label", { class: "check" }, wantAnswer, "Ask for an answer")),
    h("button", { type: "submit" }, "Send"));
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  form.addEventListener("submit", guarded(app, async () => {
    const text = input.value.trim();
    if (!text) return;
    ask(text);
    input.value = "";
  }));
  const back = convo.topicId ? `#/topics/${convo.topicId}` : "#/teams";
  container.replaceChildren(
    h("p", {}, h("a", { href: back }, "← Convos")),
    h("div", { class: "convo-head" }, title,
      h("a", { href: `#/sharing/convo/${convoId}` }, "Share"),
      renameButton(app, "convo", () => title.textContent, async (name) => {
        title.textContent = (await app.api.patch(`/convos/${convoId}`, { name })).name;
      }),
      confirmButton(app, "Delete convo", async () => {
        await app.api.del(`/convos/${convoId}`);
        app.navigate(back);
      })),
    status, list, form);

  function ask(text) {
    // reply is always said: a topic whose defaults answer would otherwise answer an unticked box.
    socket.send("convoNewStep", { content: { text }, config: { reply: wantAnswer.checked } });
  }

  // ---------------------------------------------------------------- versions and slots
  function slotOf(step) {
    if (step.authorType === "llm" && step.replyToStepId) return `r:${step.replyToStepId}`;
    if (step.groupId) return `g:${step.groupId}`;
    return `s:${step.id}`;
  }

  function versions(slot) {
    const current = [...steps.values()].filter((s) => slotOf(s) === slot).sort((a, b) => a._n - b._n);
    if (slot.startsWith("r:")) return [...(replaced.get(slot.slice(2)) || []), ...current];
    return current.sort((a, b) => a.isAlternate - b.isAlternate);
  }

  function shownIndex(slot, count) {
    const chosen = shown.get(slot);
    if (chosen != null && chosen < count) return chosen;
    return slot.startsWith("r:") ? count - 1 : 0; // the newest answer; a group's primary
  }

  // Slots stay in the order of their first version's createdAt (then arrival).
  function place(slot, li) {
    const first = versions(slot)[0];
    for (const other of list.children) {
      const [o] = versions(other.dataset.slot);
      if (o && (o.createdAt > first.createdAt || (o.createdAt === first.createdAt && o._n > first._n))) {
        list.insertBefore(li, other);
        return;
      }
    }
    list.append(li);
  }

  function renderSlot(slot) {
    const all = versions(slot);
    let li = items.get(slot);
    if (!all.length) {
      if (li) li.remove();
      items.delete(slot);
      return;
    }
    const index = shownIndex(slot, all.length);
    const step = all[index];
    const fresh = !li;
    if (fresh) {
      li = h("li", { "data-slot": slot });
      items.set(slot, li);
    }
    const historic = !steps.has(step.id); // an answer a regen replaced
    li.className = `step${step.authorId === me && step.authorType === "user" ? " mine" : ""}${step.status === "running" ? " running" : ""}`;
    li.dataset.stepId = step.id;
    li.dataset.status = step.status || "completed";
    li.dataset.author = step.authorType;
    const body = h("div", { class: "body" });
    body.innerHTML = renderMarkdown(step.content && step.content.text);
    bodies.set(step.id, body);
    li.replaceChildren(...[
      h("div", { class: "meta" }, h("span", { class: "who" }, author(step)),
        all.length > 1 ? pager(slot, index, all.length) : null,
        step.status && step.status !== "completed" ? h("span", {}, step.status) : null,
        step.usage ? h("span", { class: "usage" }, `${step.usage.model} · ${step.usage.inputTokens} in, ${step.usage.outputTokens} out tokens`) : null),
      body,
      step.error ? h("p", { class: "error" }, step.error.message || "The answer failed.") : null,
      citations(step),
      historic ? null : actions(step),
      chips(step)].filter(Boolean));
    if (fresh) place(slot, li);
  }

  function author(step) {
    if (step.authorType === "llm") return "Answer";
    if (step.authorId === me) return "You";
    return `User ${String(step.authorId || "").slice(0, 8)}`;
  }

  function pager(slot, index, count) {
    const go = (to) => () => {
      shown.set(slot, to);
      renderSlot(slot);
      items.get(slot).querySelector(".pager button:not(:disabled)")?.focus();
    };
    return h("span", { class: "pager" },
      h("button", { type: "button", class: "link", "aria-label": "Previous version", disabled: index === 0, onclick: go(index - 1) }, "‹"),
      h("span", { class: "version" }, `${index + 1}/${count}`),
      h("button", { type: "button", class: "link", "aria-label": "Next version", disabled: index === count - 1, onclick: go(index + 1) }, "›"));
  }

  function citations(step) {
    const cited = (step.annotations || []).filter((a) => a.type === "citation");
    if (!cited.length) return null;
    return h("ul", { class: "citations", "aria-label": "Citations" }, cited.map((a) => {
      const link = h("a", { class: "source", target: "_blank", rel: "noopener noreferrer" }, `Open ${a.dataSourceName || "the source"}`);
      link.addEventListener("click", guarded(app, async (event) => {
        const known = links.get(a.dataSourceId);
        if (known && Date.now() - known.at < LINK_MAX_AGE_MS) {
          window.open(known.url, "_blank", "noopener");
          return;
        }
        event.preventDefault();
        window.open(await downloadUrl(a.dataSourceId), "_blank", "noopener");
      }));
      downloadUrl(a.dataSourceId).then((url) => link.setAttribute("href", url), () => link.replaceWith(h("span", { class: "muted" }, "(source no longer available)")));
      return h("li", {}, h("blockquote", {}, a.text), link);
    }));
  }

  async function downloadUrl(dataSourceId) {
    const known = links.get(dataSourceId);
    if (known && Date.now() - known.at < LINK_MAX_AGE_MS) return known.url;
    const url = await app.api.get(`/data-sources/${dataSourceId}/download-url`);
    links.set(dataSourceId, { url, at: Date.now() });
    return url;
  }

  function actions(step) {
    const bar = h("div", { class: "meta actions" });
    const send = (type, payload) => guarded(app, () => socket.send(type, payload));
    if (step.authorType === "llm") {
      if (step.status === "running") bar.append(h("button", { type: "button", onclick: send("convoStopStep", { id: step.id }) }, "Stop"));
      if (REGENERABLE.has(step.status)) bar.append(h("button", { type: "button", onclick: send("convoStepRegen", { id: step.id }) }, "Regenerate"));
      if (step.status !== "running") {
        const counts = step.feedback || { likes: 0, dislikes: 0 };
        for (const [rating, label, count] of [["like", "Like", counts.likes], ["dislike", "Dislike", counts.dislikes]]) {
          bar.append(h("button", { type: "button", "aria-pressed": String(ratings.get(step.id) === rating), onclick: guarded(app, () => rate(step, rating)) }, `${label} (${count || 0})`));
        }
      }
      if (step.status === "completed" && !suggestions.has(step.id)) {
        bar.append(h("button", { type: "button", onclick: guarded(app, () => suggest(step)) }, "Suggest follow-ups"));
      }
    } else if (step.authorId === me) {
      bar.append(h("button", { type: "button", onclick: () => edit(step) }, "Edit"),
        confirmButton(app, "Delete", async () => socket.send("convoStepDeletion", { id: step.id })));
    }
    return bar.children.length ? bar : null;
  }

  function chips(step) {
    const list = suggestions.get(step.id);
    if (!list || !list.length) return null;
    return h("div", { class: "chips", role: "group", "aria-label": "Follow-up questions" },
      list.map((text) => h("button", { type: "button", onclick: guarded(app, () => ask(text)) }, text)));
  }

  async function rate(step, rating) {
    if (ratings.get(step.id) === rating) {
      await app.api.del(`/steps/${step.id}/feedback`);
      ratings.delete(step.id);
    } else {
      await app.api.put(`/steps/${step.id}/feedback`, { rating });
      ratings.set(step.id, rating);
    }
    renderSlot(slotOf(step));
  }

  async function suggest(step) {
    for (let tries = 0; tries < 20 && !left; tries++) {
      const response = await app.api.request("GET", `/steps/${step.id}/suggestions`, { raw: true });
      const body = await response.json();
      if (response.status === 200) {
        suggestions.set(step.id, body.suggestions || []);
        if (!body.suggestions || !body.suggestions.length) app.toast("No follow-up question to suggest.");
        renderSlot(slotOf(step));
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 1000 * (body.retryAfter || 2)));
    }
  }

  function edit(step) {
    const body = bodies.get(step.id);
    const text = h("textarea", { "aria-label": "Edit your message", rows: 3 }, step.content.text);
    const editor = h("form", {}, text, h("div", { class: "meta" },
      h("button", { type: "submit" }, "Save"),
      h("button", { type: "button", onclick: () => renderSlot(slotOf(step)) }, "Cancel")));
    editor.addEventListener("submit", guarded(app, async () => {
      socket.send("convoStepUpdate", { id: step.id, content: { text: text.value } });
    }));
    body.replaceWith(editor);
    text.focus();
  }

  // ---------------------------------------------------------------- what the server says
  function upsert(step) {
    const known = steps.get(step.id);
    steps.set(step.id, { ...known, ...step, _n: known ? known._n : ++arrivals });
    if (step.seq != null && !(lastSeq.get(step.id) > step.seq)) lastSeq.set(step.id, step.seq);
  }

  function sync(since) {
    if (syncUnsupported || syncing || !socket) return;
    syncing = true;
    setTimeout(() => (syncing = false), 2000);
    try {
      syncRequests.add(socket.send("convoSync", since ? { since } : {}));
    } catch (e) {
      syncing = false;
    }
  }

  function paint(id) {
    pending.add(id);
    if (pending.size > 1) return;
    requestAnimationFrame(() => {
      for (const stepId of pending) {
        const step = steps.get(stepId);
        const body = bodies.get(stepId);
        if (step && body && body.isConnected) body.innerHTML = renderMarkdown(step.content.text);
      }
      pending = new Set();
    });
  }

  function update(payload) {
    const step = steps.get(payload.id);
    if (!step) {
      if (payload.delta != null) sync(); // an answer this page has not heard of
      return;
    }
    if (payload.delta != null) {
      const last = lastSeq.get(step.id) ?? 0;
      if (payload.seq <= last) return; // a duplicate
      if (payload.seq > last + 1 && !syncUnsupported) {
        sync({ stepId: step.id, seq: last });
        return;
      }
      step.content = { text: ((step.content && step.content.text) || "") + payload.delta };
      lastSeq.set(step.id, payload.seq);
      paint(step.id);
      return;
    }
    const { delta, seq, id, ...changed } = payload;
    Object.assign(step, changed);
    if (payload.content && seq != null) lastSeq.set(id, seq);
    if (changed.isAlternate === false) shown.delete(slotOf(step)); // the new primary shows first
    renderSlot(slotOf(step));
  }

  function onMessage({ type, payload, requestId }) {
    if (!payload) return;
    if (type === "convoNewStep") {
      upsert(payload);
      if (payload.authorType === "llm") shown.delete(slotOf(payload)); // show the newest answer
      renderSlot(slotOf(steps.get(payload.id)));
      if (payload.authorId === me && payload.authorType === "user") list.lastElementChild?.scrollIntoView({ block: "nearest" });
    } else if (type === "convoStepUpdate") {
      if (syncRequests.delete(requestId)) syncing = false;
      update(payload);
    } else if (type === "convoStepDeletion") {
      const step = steps.get(payload.id);
      if (step) {
        steps.delete(payload.id);
        renderSlot(slotOf(step));
      }
    } else if (type === "convoStepRegen") {
      const step = steps.get(payload.id);
      if (step) {
        steps.delete(step.id);
        const key = step.replyToStepId;
        if (key) replaced.set(key, [...(replaced.get(key) || []), step]);
        renderSlot(slotOf(step));
      }
    } else if (type === "convoStatus") {
      if (syncRequests.delete(requestId)) syncing = false;
      status.textContent = payload.status === "running" ? "Answering…" : "Connected";
    } else if (type === "convoUpdate") {
      if (payload.name != null) title.textContent = payload.name;
    } else if (type === "convoDeleted") {
      left = true;
      status.textContent = "This convo was deleted.";
      form.querySelectorAll("textarea, input, button").forEach((control) => (control.disabled = true));
    } else if (type === "error") {
      if (syncRequests.delete(requestId)) {
        syncUnsupported = true; // an API without convoSync: carry on with what arrives
        syncing = false;
        return;
      }
      app.toast(payload.message || payload.code);
    }
  }

  async function load() {
    const stored = await app.api.all(`/convos/${convoId}/steps`);
    const ids = new Set(stored.map((s) => s.id));
    for (const [id, step] of steps) if (!ids.has(id)) { steps.delete(id); renderSlot(slotOf(step)); }
    for (const step of stored) upsert(step);
    for (const slot of new Set(stored.map(slotOf))) renderSlot(slot);
  }

  function connect(reconnecting) {
    socket = app.api.connectConvo(convoId, {
      onMessage,
      onState: async (state) => {
        if (left) return;
        if (state === "open") {
          retry = 1000;
          status.textContent = "Connected";
          if (!reconnecting) performance.mark("kallo:convo-connected");
          if (reconnecting) await load(); // what happened while the socket was closed
          const running = [...steps.values()].find((s) => s.status === "running");
          sync(running ? { stepId: running.id, seq: lastSeq.get(running.id) ?? 0 } : null);
        } else {
          status.textContent = "Disconnected; reconnecting…";
          setTimeout(() => !left && connect(true), retry);
          retry = Math.min(retry * 2, 15000);
        }
      },
    });
  }

  await load();
  performance.mark("kallo:convo-rendered"); // bench/console.py
  connect(false);
  return () => {
    left = true;
    if (socket) socket.close();
  };
}
