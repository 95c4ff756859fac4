// The API from the page: REST calls with the current credential, and one WebSocket per open convo.
// The REST base is everything before /console/ in the page's address, so a stage prefix works.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export function restBase(location) {
  const path = location.pathname;
  return location.origin + path.slice(0, path.lastIndexOf("/console/"));
}

export class Api {
  constructor(base, webSocketUrl) {
    this.base = base;
    this.webSocketUrl = webSocketUrl;
    this.credential = null; // {token} or {apiKey}
  }

  headers(extra = {}) {
    const c = this.credential || {};
    if (c.token) return { authorization: `Bearer ${c.token}`, ...extra };
    if (c.apiKey) return { "x-api-key": c.apiKey, ...extra };
    return extra;
  }

  // request("GET", "/teams", {query: {userId}, body}) -> the JSON answer (null for 204);
  // throws ApiError {status, code, message}. `raw: true` gives the Response (status 2xx).
  async request(method, path, { query, body, raw, headers } = {}) {
    const url = new URL(this.base + path);
    for (const [k, v] of Object.entries(query || {})) if (v != null) url.searchParams.set(k, v);
    const init = { method, headers: this.headers(headers), cache: "no-store" };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers["content-type"] = "application/json";
    }
    let response;
    try {
      response = await fetch(url, init);
    } catch (e) {
      throw new ApiError(0, "network_error", "The API cannot be reached.");
    }
    if (!response.ok) {
      let error = {};
      try {
        error = await response.json();
      } catch (e) {}
      throw new ApiError(response.status, error.code || `http_${response.status}`, error.message || response.statusText);
    }
    if (raw) return response;
    return response.status === 204 ? null : response.json();
  }

  get(path, query) { return this.request("GET", path, { query }); }
  post(path, body, query) { return this.request("POST", path, { body, query }); }
  put(path, body, query) { return this.request("PUT", path, { body, query }); }
  patch(path, body, query) { return this.request("PATCH", path, { body, query }); }
  del(path, query) { return this.request("DELETE", path, { query }); }

  // Every page of a list that pages with `nextToken` (x-next-token header).
  async all(path, query = {}) {
    const items = [];
    let next = null;
    do {
      const response = await this.request("GET", path, { query: { ...query, nextToken: next }, raw: true });
      items.push(...(await response.json()));
      next = response.headers.get("x-next-token");
    } while (next);
    return items;
  }

  // A WebSocket on one convo, authenticated by the access token (browsers can only send it in the
  // query). onMessage({type, payload, requestId}); onState("open" | "closed", event).
  connectConvo(convoId, { onMessage, onState }) {
    const url = new URL(this.webSocketUrl);
    url.searchParams.set("convoId", convoId);
    url.searchParams.set("token", this.credential.token);
    const socket = new WebSocket(url);
    let requests = 0;
    socket.onmessage = (event) => {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch (e) {
        return; // API Gateway's own plain-text answers ("Forbidden")
      }
      onMessage(message);
    };
    socket.onopen = () => onState && onState("open");
    socket.onclose = (event) => onState && onState("closed", event);
    return {
      socket,
      send(type, payload, requestId = `c${++requests}`) {
        if (socket.readyState !== WebSocket.OPEN) throw new ApiError(0, "not_connected", "Not connected: try again in a moment.");
        socket.send(JSON.stringify({ type, payload, requestId }));
        return requestId;
      },
      close() {
        socket.onclose = null;
        socket.close(1000);
      },
    };
  }
}
