// #/teams/<id> (or #/teams/me): the topics of a team, or the user's own; create one.
import { confirmButton, field, guarded, h, row } from "../dom.js";

export async function render(container, params, app) {
  const mine = params.teamId === "me";
  const heading = h("h1", {}, mine ? "My topics" : "Topics");
  const list = h("ul", { class: "list", "aria-label": "Topics" });
  const name = h("input", { name: "name", required: true, maxlength: 200 });
  const create = h("form", { class: "inline", "aria-label": "Create a topic" },
    field("New topic name", name), h("button", { type: "submit" }, "Create topic"));
  create.addEventListener("submit", guarded(app, async () => {
    const owner = mine ? { userId: app.user.id } : { teamId: params.teamId };
    const topic = await app.api.post("/topics", { name: name.value.trim(), description: "", config: { defaults: {} } }, owner);
    app.navigate(`#/topics/${topic.id}`);
  }));
  container.replaceChildren(h("p", {}, h("a", { href: "#/teams" }, "← Teams")), heading, create, list);
  if (!mine) heading.after(h("p", {}, h("a", { href: `#/sharing/team/${params.teamId}` }, "Share this team"), " · ", h("a", { href: `#/documents?teamId=${params.teamId}` }, "Team documents")));

  if (!mine) {
    const team = (await app.api.all("/teams")).find((t) => t.id === params.teamId);
    if (team) heading.textContent = `Topics of ${team.name}`;
  }
  const topics = (await app.api.all("/topics")).filter((t) => (mine ? !t.teamId && t.createdBy === app.user.id : t.teamId === params.teamId));
  if (!topics.length) list.append(h("li", { class: "row muted" }, "No topic yet."));
  for (const topic of topics) {
    list.append(row(
      [h("a", { href: `#/topics/${topic.id}` }, topic.name), topic.description ? h("span", { class: "muted" }, ` ${topic.description}`) : null],
      confirmButton(app, "Delete", async () => {
        await app.api.del(`/topics/${topic.id}`);
        list.querySelector(`a[href="#/topics/${topic.id}"]`).closest("li").remove();
      }),
    ));
  }
}
