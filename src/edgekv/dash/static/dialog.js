// A confirmation dialog (role="dialog", modal): resolves true when its action button is
// pressed, false on Cancel or Escape.
import { h } from "./dom.js";

let counter = 0;

export function confirmDialog({ title, text, action = "Delete" }) {
  return new Promise((resolve) => {
    counter += 1;
    const titleId = `dialog-title-${counter}`;
    const dialog = h(
      "dialog",
      { role: "dialog", "aria-modal": "true", "aria-labelledby": titleId },
      h("h2", { id: titleId }, title),
      h("p", {}, text),
    );
    const finish = (answer) => {
      dialog.close();
      dialog.remove();
      resolve(answer);
    };
    dialog.append(
      h(
        "div",
        { class: "actions" },
        h("button", { type: "button", onclick: () => finish(false) }, "Cancel"),
        h("button", { type: "button", class: "danger", onclick: () => finish(true) }, action),
      ),
    );
    dialog.addEventListener("cancel", (event) => {
      event.preventDefault();
      finish(false);
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}
