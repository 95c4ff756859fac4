// The console's shell: sign-in, navigation and the hash router. Views live in views/*.js; each exports
// render(container, params, app) and may return a function that is called when the view is left.
//
// Credentials: an access token in the address (removed from it at once, see handOver), or a
// service account's API key plus a user's email, with which the console mints 15-minute user tokens
// and renews them before they expire. The key stays in memory, or in this tab's sessionStorage when
// the operator asks; nothing goes to localStorage or cookies. Sign-out clears both and reloads.
import { Api, restBase } from "./api.js";

const TOKEN_MINUTES = 15;
const RENEW_BEFORE_MS = 2 * 60 * 1000;
const KEY_ITEM = "kallo.key"; // sessionStorage: {apiKey, email}, only when "keep for this tab"
const TOKEN_ITEM = "kallo.token"; // sessionStorage: an access token given by #token= (this tab only)

// The route table: hash pattern -> view module. ":name" segments become params.name; a query after
// "?" in the hash adds its parameters too.
const ROUTES = [
  ["#/teams", () => import("./views/teams.js")],
  ["#/teams/:teamId", () => import("./views/team.js")],
  ["#/topics/:topicId", () => import("./views/topic.js")],
  ["#/convos/:convoId", () => import("./views/convo.js")],
  ["#/documents", () => import("./views/documents.js")],
  ["#/sharing/:objectType/:objectId", () => import("./views/sharing.js")],
  ["#/invitations", () => import("./views/invitations.js")],
];
const HOME = "#/teams";

const $ = (id) => document.getElementById(id);
let api;
let session = null; // {user, apiKey?, tokenId?, renewal?}
let leaveView = null;

const app = {
  get api() { return api; },
  get user() { return session && session.user; },
  navigate(hash) {
    if (location.hash === hash) route();
    else location.hash = hash;
  },
  toast(message) {
    const toast = $("toast");
    toast.textContent = message;
    toast.classList.add("shown");
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => toast.classList.remove("shown"), 5000);
  },
};

// An access token an embedding app hands over in the address, and the route to open with it: either
// `#token=<jwt>` (the home page), or a route carrying it among its parameters, e.g. the emailed
// invitation link plus the token, `#/invitations?accept=team:<id>&token=<jwt>`, which opens that route
// once signed in. Returns {token, route}, or null when the address carries no token.
function handOver(hash) {
  const decoded = (value) => {
    try {
      return decodeURIComponent(value);
    } catch (e) {
      return value; // a broken escape: sign-in then says the token is not valid
    }
  };
  const whole = /^#token=([^&]+)/.exec(hash);
  if (whole) return { token: decoded(whole[1]), route: HOME };
  const at = hash.indexOf("?");
  if (!hash.startsWith("#/") || at < 0) return null;
  const pairs = hash.slice(at + 1).split("&");
  const given = pairs.find((pair) => pair.startsWith("token="));
  if (!given) return null;
  const rest = pairs.filter((pair) => pair && !pair.startsWith("token=")).join("&");
  return { token: decoded(given.slice(6)), route: hash.slice(0, at) + (rest ? `?${rest}` : "") };
}

// Takes a handed-over token out of the address at once (it must not stay in history or be bookmarked)
// and keeps it for this tab; true when there was one.
function takeToken() {
  const given = handOver(location.hash);
  if (!given) return false;
  history.replaceState(null, "", location.pathname + given.route);
  sessionStorage.setItem(TOKEN_ITEM, given.token);
  return true;
}

function claims(jwt) {
  try {
    const part = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(part));
  } catch (e) {
    return {};
  }
}

async function mintToken(apiKey, user) {
  const expiresAt = new Date(Date.now() + TOKEN_MINUTES * 60 * 1000).toISOString();
  const minted = await api.request("POST", "/auth/access-tokens", {
    headers: { "x-api-key": apiKey },
    body: { userId: user.id, scopeObjects: [{ type: "user", id: user.id }], expiresAt },
  });
  api.credential = { token: minted.jwt };
  session.tokenId = minted.id;
  clearTimeout(session.renewal);
  session.renewal = setTimeout(() => renew(apiKey, user), TOKEN_MINUTES * 60 * 1000 - RENEW_BEFORE_MS);
}

async function renew(apiKey, user) {
  try {
    await mintToken(apiKey, user);
  } catch (error) {
    app.toast(`Could not renew the session: ${error.message}`);
    session.renewal = setTimeout(() => renew(apiKey, user), 15000);
  }
}

async function signInWithKey(apiKey, email) {
  api.credential = { apiKey };
  const user = await api.request("GET", "/users", { query: { email } });
  session = { user, apiKey };
  await mintToken(apiKey, user);
}

async function signInWithToken(token) {
  const { sub, exp } = claims(token);
  if (!sub || (exp && exp * 1000 < Date.now())) throw new Error("This access token is not valid any more.");
  api.credential = { token };
  let user = { id: sub };
  try {
    user = await api.get("/users", { userId: sub }); // 404 for a token narrower than its whole user
  } catch (e) {}
  session = { user };
  if (exp) session.renewal = setTimeout(() => signOut("Your access token has expired."), exp * 1000 - Date.now());
}

async function signOut(message) {
  clearTimeout(session && session.renewal);
  if (session && session.apiKey && session.tokenId) {
    try {
      await api.request("DELETE", `/auth/access-tokens/${session.tokenId}`, { headers: { "x-api-key": session.apiKey } });
    } catch (e) {}
  }
  sessionStorage.clear();
  session = null;
  api.credential = null;
  if (message) {
    if (leaveView) leaveView();
    leaveView = null;
    showSignIn();
    $("sign-in-error").textContent = message;
  } else {
    location.replace(location.pathname); // reload without the hash: nothing of the session survives
  }
}

function showSignIn() {
  $("sign-in").hidden = false;
  $("nav").hidden = $("sign-out").hidden = true;
  $("view").replaceChildren();
  $("api-key").focus();
}

function showShell() {
  $("sign-in").hidden = true;
  $("nav").hidden = $("sign-out").hidden = false;
  const user = session.user;
  $("who").textContent = user.emailAddress || user.displayName || `user ${user.id.slice(0, 8)}`;
  if (!location.hash.startsWith("#/")) history.replaceState(null, "", HOME);
  route();
}

function match(hash) {
  const [path, query] = hash.split("?");
  const parts = path.split("/");
  for (const [pattern, load] of ROUTES) {
    const want = pattern.split("/");
    if (want.length !== parts.length) continue;
    const params = {};
    if (want.every((w, i) => (w.startsWith(":") ? (params[w.slice(1)] = decodeURIComponent(parts[i])) : w === parts[i]))) {
      for (const [k, v] of new URLSearchParams(query || "")) params[k] = v;
      return [load, params];
    }
  }
  return null;
}

async function route() {
  if (!session) return;
  if (leaveView) leaveView();
  leaveView = null;
  const container = $("view");
  const found = match(location.hash || HOME);
  for (const link of document.querySelectorAll("#nav a")) {
    link.toggleAttribute("aria-current", location.hash.startsWith(link.getAttribute("href")));
  }
  if (!found) {
    container.replaceChildren(Object.assign(document.createElement("h1"), { textContent: "Not found" }));
    return;
  }
  const [load, params] = found;
  container.replaceChildren();
  container.setAttribute("aria-busy", "true");
  try {
    const view = await load();
    const left = await view.render(container, params, app);
    leaveView = typeof left === "function" ? left : null;
  } catch (error) {
    container.replaceChildren(Object.assign(document.createElement("p"), { className: "error", textContent: error.message }));
  } finally {
    container.removeAttribute("aria-busy");
  }
}

async function start() {
  const config = await (await fetch("config.json", { cache: "no-store" })).json();
  api = new Api(restBase(location), config.webSocketUrl);
  $("sign-out").addEventListener("click", () => signOut());
  window.addEventListener("hashchange", () => {
    // A token handed over to an open page (a link followed in this tab): start again as its user.
    if (takeToken()) return location.reload();
    route();
    $("main").focus({ preventScroll: true });
  });
  $("sign-in-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    const apiKey = form.apiKey.value.trim();
    const email = form.email.value.trim();
    $("sign-in-error").textContent = "";
    try {
      await signInWithKey(apiKey, email);
      if (form.keep.checked) sessionStorage.setItem(KEY_ITEM, JSON.stringify({ apiKey, email }));
      form.reset();
      showShell();
    } catch (error) {
      session = null;
      api.credential = null;
      $("sign-in-error").textContent = error.message;
    }
  });

  takeToken();
  try {
    const token = sessionStorage.getItem(TOKEN_ITEM);
    const kept = JSON.parse(sessionStorage.getItem(KEY_ITEM) || "null");
    if (token) await signInWithToken(token);
    else if (kept) await signInWithKey(kept.apiKey, kept.email);
  } catch (error) {
    sessionStorage.clear();
    session = null;
    api.credential = null;
    $("sign-in-error").textContent = error.message;
  }
  if (session) showShell();
  else showSignIn();
  document.body.dataset.ready = "true";
  performance.mark("kallo:ready"); // the sign-in form, or the shell, is usable (bench/console.py)
}

start();
