// Building the page without innerHTML: text is always text. Only markdown.js produces HTML.

// h("button", {type: "button", onclick: f, class: "x"}, "Text", child, ...)
export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value == null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "class") node.className = value;
    else if (value === true) node.setAttribute(key, "");
    else node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child == null || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

// A labelled field: h("label") + control, with a generated id.
let fields = 0;
export function field(label, control) {
  const id = control.id || `f${++fields}`;
  control.id = id;
  return h("div", { class: "field" }, h("label", { for: id }, label), control);
}

// Runs `action` (async) and shows a failure as a toast instead of leaving the page half-done.
export function guarded(app, action) {
  return async (event) => {
    if (event && event.preventDefault) event.preventDefault();
    try {
      await action(event);
    } catch (error) {
      app.toast(error.message || String(error));
    }
  };
}

// A named item of a list with its links and buttons.
export function row(main, ...actions) {
  return h("li", { class: "row" }, h("span", { class: "grow" }, main), ...actions);
}

export function when(iso) {
  return iso ? new Date(iso).toLocaleString() : "";
}

// A delete button that asks once more in place (no window.confirm: the page opens no dialogs).
export function confirmButton(app, label, action) {
  const button = h("button", { type: "button", class: "danger" }, label);
  let armed = false;
  button.addEventListener("click", guarded(app, async () => {
    if (!armed) {
      armed = true;
      button.textContent = `Confirm: ${label.toLowerCase()}`;
      setTimeout(() => { armed = false; button.textContent = label; }, 4000);
      return;
    }
    button.disabled = true;
    await action();
  }));
  return button;
}

// A "Rename" button that turns `target` (an element showing the name) into a small form in place.
export function renameButton(app, what, current, save) {
  const button = h("button", { type: "button" }, "Rename");
  button.addEventListener("click", () => {
    const input = h("input", { value: current(), "aria-label": `New name of the ${what}`, required: true });
    const form = h("form", { class: "inline" }, input, h("button", { type: "submit" }, "Save"),
      h("button", { type: "button", onclick: () => form.replaceWith(button) }, "Cancel"));
    form.addEventListener("submit", guarded(app, async () => {
      await save(input.value.trim());
      form.replaceWith(button);
    }));
    button.replaceWith(form);
    input.focus();
  });
  return button;
}
