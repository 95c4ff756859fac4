// #/invitations[?accept=<objectType>:<objectId>]: the invitations sent to the signed-in user's verified
// email address (GET /invitations/mine), each accepted with POST /invitations/accept. The emailed link
// carries `accept=`: that invitation is accepted as soon as its person has signed in, and the page
// then opens the team or convo.
import { guarded, h, when } from "../dom.js";

const PAGE = { team: "#/teams/", convo: "#/convos/" };
const NOT_OPEN = "This invitation is not open to this account: it may be for another email address (sign in as the person invited), already accepted, withdrawn or expired.";

export async function render(container, params, app) {
  const outcome = h("p", { role: "status", "aria-live": "polite" });
  const list = h("ul", { class: "list", "aria-label": "Invitations" });
  container.replaceChildren(h("h1", {}, "Invitations"), outcome, list,
    h("p", { class: "hint" }, "Invitations go to email addresses. You see those sent to the verified address of the identity you signed in with."));

  async function accept(objectType, objectId) {
    const grant = await app.api.post("/invitations/accept", undefined, { objectType, objectId });
    return `You are now ${grant.role} of this ${objectType}.`;
  }

  if (params.accept) {
    // Once: the address loses `accept=` so that going back or reloading does not ask again.
    history.replaceState(null, "", "#/invitations");
    const [objectType, objectId] = params.accept.split(":");
    try {
      if (!PAGE[objectType] || !objectId) throw Object.assign(new Error(NOT_OPEN), { status: 404 });
      app.toast(await accept(objectType, objectId));
      app.navigate(PAGE[objectType] + objectId);
      return;
    } catch (error) {
      if (error.status !== 404) throw error;
      outcome.className = "error";
      outcome.setAttribute("role", "alert");
      outcome.textContent = NOT_OPEN;
    }
  }

  const pending = await app.api.get("/invitations/mine");
  if (!pending.length) list.append(h("li", { class: "row muted" }, "No invitation waiting for you."));
  for (const invitation of pending) {
    const { objectType, objectId } = invitation;
    const button = h("button", { type: "button" }, "Accept");
    const item = h("li", { class: "row" },
      h("span", { class: "grow" }, `${objectType === "team" ? "Team" : "Convo"} ${objectId} as ${invitation.role}`,
        h("span", { class: "muted" }, ` (invited ${when(invitation.createdAt)})`)),
      button);
    button.addEventListener("click", guarded(app, async () => {
      button.disabled = true;
      try {
        const message = await accept(objectType, objectId);
        item.replaceChildren(h("span", { class: "grow" }, `${message} `, h("a", { href: PAGE[objectType] + objectId }, `Open the ${objectType}`)));
        item.querySelector("a").focus();
      } catch (error) {
        button.disabled = false;
        throw error.status === 404 ? new Error(NOT_OPEN) : error;
      }
    }));
    list.append(item);
  }
}
