// The dashboard's entry point: the session (token in sessionStorage only) and the router.
// Views live in their own modules; each renders into <main id="view">.
//
//   #/                       namespaces
//   #/ns/<id>                keys of a namespace
//   #/ns/<id>/key/<key>      one key (the key percent-encoded)
//   #/ns/<id>/metrics        the namespace's last hour
import { Api } from "./api.js";
import { clearError, clearStaleStatus, replace, showError, status } from "./dom.js";
import { renderKey } from "./key.js";
import { renderKeys } from "./keys.js";
import { renderMetrics } from "./metrics.js";
import { renderNamespaces } from "./namespaces.js";
import { renderSignIn } from "./signin.js";

const TOKEN_KEY = "edgekv.token";
const body = document.body;
const view = document.getElementById("view");
const signOut = document.getElementById("sign-out");
const local = body.dataset.auth === "local";

export const session = { api: null, readOnly: false, namespaces: new Map() };

// Checks the token (GET /user/tokens/verify), learns its account (GET /accounts) and whether
// it may write (GET /memberships). Throws the API's error for a wrong token.
export async function signIn(token) {
  const api = new Api(body.dataset.api, token, local);
  if (!local) await api.result("GET", "/user/tokens/verify");
  const accounts = await api.result("GET", "/accounts");
  if (!accounts || !accounts.length) throw new Error("This token has no account.");
  api.account = accounts[0].id;
  let readOnly = false;
  if (!local) {
    const memberships = await api.result("GET", "/memberships");
    readOnly = memberships.some((m) => (m.roles || []).includes("Read Only"));
  }
  session.api = api;
  session.readOnly = readOnly;
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  document.getElementById("account").textContent = `account ${api.account}`;
  signOut.hidden = local;
  route();
}

function forget() {
  sessionStorage.removeItem(TOKEN_KEY);
  session.api = null;
  session.namespaces.clear();
  signOut.hidden = true;
  document.getElementById("account").textContent = "";
  clearError();
  status("");
  if (location.hash) history.replaceState(null, "", location.pathname);
  renderSignIn(view);
}

signOut.addEventListener("click", forget);

export function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

async function route() {
  if (!session.api) return;
  clearError();
  clearStaleStatus();
  const parts = (location.hash || "#/").slice(2).split("/");
  try {
    if (parts[0] === "ns" && parts[1]) {
      const id = parts[1];
      if (parts[2] === "key" && parts.length > 3) {
        await renderKey(view, id, decodeURIComponent(parts.slice(3).join("/")));
      } else if (parts[2] === "metrics") {
        await renderMetrics(view, id);
      } else {
        await renderKeys(view, id);
      }
    } else {
      await renderNamespaces(view);
    }
  } catch (err) {
    showError(err);
  }
}

window.addEventListener("hashchange", route);

async function start() {
  const saved = sessionStorage.getItem(TOKEN_KEY);
  if (local || saved) {
    try {
      await signIn(saved);
      return;
    } catch (err) {
      sessionStorage.removeItem(TOKEN_KEY);
      if (local) {
        replace(view);
        showError(err);
        return;
      }
    }
  }
  renderSignIn(view);
}

start();
