// #/sharing/<objectType>/<objectId>: who holds which role on a team, topic, convo or document (Query
// Grantees), changing a role, removing one, adding a user by id or a team, inviting by email (teams and
// convos), the pending invitations, and for a convo its export by email.
import { confirmButton, field, guarded, h, when } from "../dom.js";
import { exportSection } from "./export.js";

// The roles the API grants through Add Grantee, by object type and grantee type (owners change only by
// PUT, `dependent` only by linking): the policy's ALLOWED_GRANTS without those two.
const ROLES = {
  team: { user: ["admin", "member", "viewer"] },
  topic: { user: ["admin", "member", "participant", "viewer"], team: ["admin", "member", "participant", "viewer"] },
  convo: { user: ["admin", "participant", "viewer"], team: ["admin", "participant", "viewer"] },
  data_source: { user: ["admin", "viewer"], team: ["admin", "member", "viewer"] },
  prompt: { user: ["admin", "viewer"], team: ["admin", "member", "viewer"] },
};
const DEFAULT_ROLE = { team: "member", topic: "participant", convo: "participant", data_source: "viewer", prompt: "viewer" };
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const INVITABLE = new Set(["team", "convo"]);
const NOUN = { team: "team", topic: "topic", convo: "convo", data_source: "document", prompt: "prompt" };
const PAGE = { team: "#/teams/", topic: "#/topics/", convo: "#/convos/", data_source: "#/documents" };

function roleSelect(roles, selected, attributes) {
  return h("select", attributes, roles.map((role) => h("option", { value: role, selected: role === selected }, role)));
}

async function objectName(app, type, id) {
  try {
    if (type === "convo") return (await app.api.get(`/convos/${id}`)).name;
    if (type === "topic") return (await app.api.get("/topics", { topicIds: id }))[0]?.name;
    if (type === "team") return (await app.api.all("/teams")).find((t) => t.id === id)?.name;
    if (type === "data_source") return (await app.api.get(`/data-sources/${id}`)).name;
  } catch (e) {
    if (e.status !== 404) throw e;
  }
  return undefined;
}

export async function render(container, params, app) {
  const { objectType: type, objectId: id } = params;
  // Both come from the address, which anyone can send in a link: only a known type and a UUID.
  if (!ROLES[type] || !UUID.test(id)) throw new Error("Nothing to share here: this address names no shareable object.");
  const object = { objectType: type, objectId: id };
  const noun = NOUN[type];
  const [name, teams] = await Promise.all([objectName(app, type, id), app.api.all("/teams")]);
  const title = name ? `${noun[0].toUpperCase()}${noun.slice(1)} ${name}` : `This ${noun}`;
  const teamName = (teamId) => teams.find((t) => t.id === teamId)?.name;

  const grantees = h("ul", { class: "list", "aria-label": "Grantees" });
  const invitations = h("ul", { class: "list", "aria-label": "Pending invitations" });

  function describe(grantee) {
    if (grantee.type === "user") return grantee.id === app.user.id ? `User ${grantee.id} (you)` : `User ${grantee.id}`;
    if (grantee.type === "team") return `Team ${teamName(grantee.id) || grantee.id}`;
    return `${grantee.type[0].toUpperCase()}${grantee.type.slice(1)} ${grantee.id}`;
  }

  async function showGrantees() {
    const found = await app.api.all("/auth/grantees", object);
    grantees.replaceChildren();
    for (const grantee of found) {
      const label = describe(grantee);
      const roles = ROLES[type][grantee.type];
      let role;
      if (roles && roles.includes(grantee.role)) {
        role = roleSelect(roles, grantee.role, { "aria-label": `Role of ${label}` });
        // Add Grantee with another role changes the grantee's role.
        role.addEventListener("change", guarded(app, async () => {
          try {
            await app.api.post("/auth/grantees", { id: grantee.id, type: grantee.type, role: role.value }, object);
            app.toast(`${label} is now ${role.value}.`);
          } finally {
            await showGrantees();
          }
        }));
      } else {
        role = h("span", { class: "badge" }, grantee.role === "dependent" ? "linked" : grantee.role);
      }
      const remove = roles && roles.includes(grantee.role)
        ? confirmButton(app, "Remove", async () => {
          await app.api.del("/auth/grantees", { ...object, granteeId: grantee.id, granteeType: grantee.type, granteeRole: grantee.role });
          app.toast(`${label} removed.`);
          await showGrantees();
        })
        : null;
      grantees.append(h("li", { class: "row" }, h("span", { class: "grow" }, label), role, remove));
    }
    if (!found.length) grantees.append(h("li", { class: "row muted" }, "No direct grantee."));
  }

  async function showInvitations() {
    let pending;
    try {
      pending = await app.api.get("/invitations", object);
    } catch (error) {
      if (error.status === 403 || error.status === 404) {
        invitations.replaceChildren(h("li", { class: "row muted" }, "Only those who may invite see the pending invitations."));
        return;
      }
      throw error;
    }
    invitations.replaceChildren();
    for (const invitation of pending) {
      invitations.append(h("li", { class: "row" },
        h("span", { class: "grow" }, `${invitation.inviteEmail} as ${invitation.role}`, h("span", { class: "muted" }, ` since ${when(invitation.createdAt)}`)),
        confirmButton(app, "Withdraw", async () => {
          await app.api.del("/invitations", { ...object, inviteEmail: invitation.inviteEmail });
          app.toast(`Invitation of ${invitation.inviteEmail} withdrawn.`);
          await showInvitations();
        })));
    }
    if (!pending.length) invitations.append(h("li", { class: "row muted" }, "No pending invitation."));
  }

  // Add a user of this service account (or oneself) by id.
  const userId = h("input", { name: "userId", required: true, pattern: "[0-9a-fA-F-]{36}", autocomplete: "off", placeholder: "00000000-0000-0000-0000-000000000000" });
  const userRole = roleSelect(ROLES[type].user, DEFAULT_ROLE[type], { name: "role" });
  const addUser = h("form", { class: "inline", "aria-label": "Add a user" },
    field("User id", userId), field("Role", userRole), h("button", { type: "submit" }, "Add user"));
  addUser.addEventListener("submit", guarded(app, async () => {
    await app.api.post("/auth/grantees", { id: userId.value.trim(), type: "user", role: userRole.value }, object);
    app.toast(`User ${userId.value.trim()} added as ${userRole.value}.`);
    addUser.reset();
    await showGrantees();
  }));

  let addTeam = null;
  if (ROLES[type].team && teams.length) {
    const team = h("select", { name: "teamId", required: true }, teams.map((t) => h("option", { value: t.id }, t.name)));
    const teamRole = roleSelect(ROLES[type].team, DEFAULT_ROLE[type], { name: "role" });
    addTeam = h("form", { class: "inline", "aria-label": "Add a team" },
      field("Team", team), field("Team's role", teamRole), h("button", { type: "submit" }, "Add team"));
    addTeam.addEventListener("submit", guarded(app, async () => {
      await app.api.post("/auth/grantees", { id: team.value, type: "team", role: teamRole.value }, object);
      app.toast(`Team ${teamName(team.value)} added as ${teamRole.value}.`);
      await showGrantees();
    }));
  }

  let invite = null;
  if (INVITABLE.has(type)) {
    const email = h("input", { name: "inviteEmail", type: "email", required: true, autocomplete: "off" });
    const inviteRole = roleSelect(ROLES[type].user, DEFAULT_ROLE[type], { name: "role" });
    invite = h("form", { class: "inline", "aria-label": "Invite by email" },
      field("Email address", email), field("Invited role", inviteRole), h("button", { type: "submit" }, "Invite"));
    invite.addEventListener("submit", guarded(app, async () => {
      const address = email.value.trim();
      await app.api.post("/auth/grantees", { type: "user", role: inviteRole.value }, { ...object, inviteEmail: address });
      app.toast(`${address} invited as ${inviteRole.value}.`);
      invite.reset();
      await showInvitations();
    }));
  }

  const back = PAGE[type] ? h("p", {}, h("a", { href: type === "data_source" ? PAGE[type] : PAGE[type] + id }, `← ${title}`)) : null;
  container.replaceChildren(back,
    h("h1", {}, `Sharing: ${title}`),
    h("section", { "aria-labelledby": "grantees-title" },
      h("h2", { id: "grantees-title" }, "Who has access"),
      h("p", { class: "hint" }, "Direct grants only: members of the teams that own it, and of the topic that owns a convo, have access too."),
      grantees, addUser, addTeam),
    invite && h("section", { "aria-labelledby": "invitations-title" },
      h("h2", { id: "invitations-title" }, "Invitations"),
      h("p", { class: "hint" }, "People outside this account are invited by email; they accept after signing in with that verified address."),
      invitations, invite),
    type === "convo" ? exportSection(app, id, name) : null);
  await Promise.all([showGrantees(), invite ? showInvitations() : null]);
}
