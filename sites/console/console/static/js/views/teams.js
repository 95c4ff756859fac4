// #/teams: the signed-in user's teams (create, rename, delete), and a way to their own topics.
import { confirmButton, field, guarded, h, renameButton, row } from "../dom.js";

export async function render(container, params, app) {
  const list = h("ul", { class: "list", "aria-label": "Teams" });
  const name = h("input", { name: "name", required: true, maxlength: 200 });
  const create = h("form", { class: "inline", "aria-label": "Create a team" },
    field("New team name", name), h("button", { type: "submit" }, "Create team"));
  create.addEventListener("submit", guarded(app, async () => {
    const team = await app.api.post("/teams", { name: name.value.trim() });
    app.navigate(`#/teams/${team.id}`);
  }));
  container.replaceChildren(
    h("h1", {}, "Teams"),
    h("p", {}, h("a", { href: "#/teams/me" }, "My own topics"), " (not in a team)"),
    create, list,
  );

  const teams = await app.api.all("/teams");
  if (!teams.length) list.append(h("li", { class: "row muted" }, "No team yet."));
  for (const team of teams) {
    const link = h("a", { href: `#/teams/${team.id}` }, team.name);
    list.append(row(link,
      renameButton(app, "team", () => link.textContent, async (value) => {
        link.textContent = (await app.api.patch(`/teams/${team.id}`, { name: value })).name;
      }),
      confirmButton(app, "Delete", async () => {
        await app.api.del(`/teams/${team.id}`);
        link.closest("li").remove();
        app.toast(`Team ${team.name} deleted.`);
      }),
    ));
  }
}
