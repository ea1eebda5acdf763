// Sign in: one password box for the API token. A wrong token shows the API's message and the
// form stays, to try again.
import { signIn } from "./app.js";
import { clearError, h, replace, showError } from "./dom.js";

export function renderSignIn(view) {
  const input = h("input", {
    id: "token",
    type: "password",
    autocomplete: "off",
    spellcheck: "false",
    required: true,
  });
  const button = h("button", { type: "submit", class: "primary" }, "Sign in");
  const form = h(
    "form",
    { class: "panel signin" },
    h("h1", {}, "Sign in"),
    h("p", { class: "muted" }, "With an API token of this server (edgekv token create)."),
    h("label", { for: "token" }, "API token"),
    input,
    h("div", { class: "actions" }, button),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearError();
    button.disabled = true;
    try {
      await signIn(input.value.trim());
    } catch (err) {
      showError(err);
      input.select();
    } finally {
      button.disabled = false;
    }
  });
  replace(view, form);
  input.focus();
}
