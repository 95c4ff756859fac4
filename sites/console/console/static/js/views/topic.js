// #/topics/<id>: edit the topic (name, description, prompt text, answer defaults) and its convos.
import { confirmButton, field, guarded, h, renameButton, row, when } from "../dom.js";

const LOCAL_MODEL = "embedded:smollm2";

async function modelControl(app, current) {
  try {
    const models = await app.api.get("/models");
    const select = h("select", { name: "model" }, h("option", { value: "" }, "The deployment's default"),
      models.map((m) => h("option", { value: m.id, selected: m.id === current }, m.default ? `${m.id} (default)` : m.id)));
    return select;
  } catch (e) {
    // A deployment without GET /models: the name as text (<provider>:<model id>).
    return h("input", { name: "model", value: current || "", placeholder: LOCAL_MODEL });
  }
}

const number = (value) => (value === "" ? null : Number(value));

export async function render(container, params, app) {
  const id = params.topicId;
  const [topic] = await app.api.get("/topics", { topicIds: id });
  if (!topic) throw new Error("This topic does not exist, or you cannot see it.");
  let [prompt] = await app.api.get("/prompts", { topicId: id });
  const defaults = (topic.config && topic.config.defaults) || {};

  const name = h("input", { name: "name", value: topic.name, required: true, maxlength: 256 });
  const description = h("textarea", { name: "description", maxlength: 4096 }, topic.description || "");
  const promptText = h("textarea", { name: "prompt", rows: 4 }, prompt ? prompt.text : "");
  const model = await modelControl(app, defaults.model);
  const temperature = h("input", { name: "temperature", type: "number", min: 0, max: 2, step: 0.1, value: defaults.temperature ?? "" });
  const maxTokens = h("input", { name: "maxTokens", type: "number", min: 1, step: 1, value: defaults.maxTokens ?? "" });
  const reply = h("input", { name: "reply", type: "checkbox", checked: defaults.reply !== false });
  const heading = h("h1", {}, topic.name);

  const form = h("form", { class: "card", "aria-label": "Topic settings" },
    field("Name", name), field("Description", description), field("Prompt (the model's instructions)", promptText),
    h("div", { class: "grid" }, field("Model", model), field("Temperature (0-2)", temperature), field("Max tokens", maxTokens)),
    h("label", { class: "check" }, reply, "Answer every question (reply)"),
    h("p", {}, h("button", { type: "submit" }, "Save topic")));
  form.addEventListener("submit", guarded(app, async () => {
    const updated = await app.api.patch(`/topics/${id}`, {
      name: name.value.trim(),
      description: description.value,
      config: { defaults: { ...defaults, model: model.value.trim() || null, temperature: number(temperature.value),
        maxTokens: number(maxTokens.value), reply: reply.checked } },
    });
    heading.textContent = updated.name;
    prompt = await savePrompt(app, topic, prompt, promptText.value);
    app.toast("Topic saved.");
  }));

  const convos = h("ul", { class: "list", "aria-label": "Convos" });
  const convoName = h("input", { name: "convoName", maxlength: 256 });
  const create = h("form", { class: "inline", "aria-label": "Start a convo" },
    field("New convo name", convoName), h("button", { type: "submit" }, "Start convo"));
  create.addEventListener("submit", guarded(app, async () => {
    const convo = await app.api.post("/convos", convoName.value.trim() ? { name: convoName.value.trim() } : {}, { topicId: id });
    app.navigate(`#/convos/${convo.id}`);
  }));

  const back = topic.teamId ? `#/teams/${topic.teamId}` : "#/teams/me";
  container.replaceChildren(h("p", {}, h("a", { href: back }, "← Topics")), heading,
    h("p", {}, h("a", { href: `#/sharing/topic/${id}` }, "Share this topic")),
    h("h2", {}, "Convos"), create, convos, h("h2", {}, "Settings"), form);

  const items = await app.api.all("/convos", { topicId: id });
  if (!items.length) convos.append(h("li", { class: "row muted" }, "No convo yet."));
  for (const convo of items) {
    const link = h("a", { href: `#/convos/${convo.id}` }, convo.name || "(unnamed)");
    convos.append(row([link, h("span", { class: "muted" }, ` ${when(convo.updatedAt || convo.createdAt)}`)],
      renameButton(app, "convo", () => link.textContent, async (value) => {
        link.textContent = (await app.api.patch(`/convos/${convo.id}`, { name: value })).name;
      }),
      confirmButton(app, "Delete", async () => {
        await app.api.del(`/convos/${convo.id}`);
        link.closest("li").remove();
      })));
  }
}

// The prompt is an object of its own: edited in place, made and set when the topic has none, and
// unset when emptied.
async function savePrompt(app, topic, prompt, text) {
  if (prompt && text === prompt.text) return prompt;
  if (prompt && text.trim()) return app.api.patch(`/prompts/${prompt.id}`, { text });
  if (prompt) {
    await app.api.del(`/topics/${topic.id}/prompt`);
    return undefined;
  }
  if (!text.trim()) return undefined;
  const owner = topic.teamId ? { teamId: topic.teamId } : { userId: app.user.id };
  const made = await app.api.post("/prompts", { text }, owner);
  await app.api.put(`/topics/${topic.id}/prompts/${made.id}`);
  return made;
}
