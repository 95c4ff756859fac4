// Export a convo by email (POST /exports, html-email), then its outcome (GET /exports/{id}: queued,
// sent or failed). Recipients must be the verified addresses of Kallo users who may view the convo
// (else 422 recipient_not_allowed); shown on the convo's sharing page.
import { field, guarded, h } from "../dom.js";
import { pollUntil } from "../poll.js";

const MAX_ADDRESSES = 5;
const OUTCOME = {
  queued: "queued: the email is being written",
  sent: "sent",
  failed: "failed",
};

export function exportSection(app, convoId, convoName) {
  const addresses = h("input", { name: "addresses", type: "email", multiple: true, required: true, autocomplete: "off", value: app.user.emailAddress || "" });
  const outcome = h("p", { class: "export-outcome", role: "status", "aria-live": "polite" });
  const send = h("button", { type: "submit" }, "Send export");
  const form = h("form", { "aria-label": "Export by email" },
    field(`Email addresses (at most ${MAX_ADDRESSES}, comma-separated)`, addresses),
    h("p", {}, send), outcome);
  form.addEventListener("submit", guarded(app, async () => {
    const list = addresses.value.split(",").map((a) => a.trim()).filter(Boolean);
    if (list.length > MAX_ADDRESSES) throw new Error(`At most ${MAX_ADDRESSES} addresses.`);
    send.disabled = true;
    try {
      const started = await app.api.post("/exports", {
        format: "html-email",
        sources: { convoIds: [convoId] },
        destinations: list.map((address) => ({ type: "email", address })),
      });
      show(started);
      await follow(started);
    } finally {
      send.disabled = false;
    }
  }));

  function show(exported) {
    outcome.dataset.status = exported.status;
    const error = exported.error ? `: ${exported.error.message}` : "";
    outcome.textContent = `Export to ${exported.destinations.map((d) => d.address).join(", ")} ${OUTCOME[exported.status] || exported.status}${error}.`;
  }

  // The worker sends within moments; ask until it says sent or failed, while the page is open.
  async function follow(started) {
    await pollUntil(async () => {
      let now;
      try {
        now = await app.api.get(`/exports/${started.id}`);
      } catch (error) {
        // The creator's own export answers 404 only where the API has no GET /exports/{id} yet.
        if (error.status === 404) return started;
        throw error;
      }
      show(now);
      return now.status === "queued" ? undefined : now;
    }, { alive: () => form.isConnected, cap: 4 });
  }

  return h("section", { "aria-labelledby": "export-title" },
    h("h2", { id: "export-title" }, "Export by email"),
    h("p", { class: "hint" }, `Sends ${convoName ? `“${convoName}”` : "this convo"} as an HTML email. Each address must be the verified email of a Kallo user who may view the convo.`),
    form);
}
