// The widget's calls to its server. Errors are thrown as {code, message, details}: the
// server's NormalizedError, or code "network" when no answer could be read.
import { readEvents } from "./sse.js";

export class ApiError extends Error {
  constructor(code, message, details) {
    super(message || code);
    this.code = code;
    this.details = details || {};
  }
}

export class Client {
  constructor(base, key, preview) {
    this.base = base;
    this.preview = preview; // the admin's live preview token, if any
    this.root = `${base}/widgets/v1/${encodeURIComponent(key)}`;
    this.key = key;
    this.session = null; // {conversation, token, identity}
    this.storageKey = `automate-chat:${key}`;
    try {
      this.session = JSON.parse(sessionStorage.getItem(this.storageKey) || "null");
    } catch (_) {
      this.session = null;
    }
  }

  save(session) {
    this.session = session;
    try {
      if (session) sessionStorage.setItem(this.storageKey, JSON.stringify(session));
      else sessionStorage.removeItem(this.storageKey);
    } catch (_) {
      /* storage may be blocked; the conversation then lasts as long as the page */
    }
  }

  async request(path, { method = "GET", body, signal, auth = true } = {}) {
    const headers = {};
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (auth && this.session) headers.Authorization = `Bearer ${this.session.token}`;
    if (this.preview) headers["X-Automate-Preview"] = this.preview;
    let response;
    try {
      response = await fetch(`${this.root}/${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
        credentials: "omit",
        mode: "cors",
      });
    } catch (error) {
      if (error && error.name === "AbortError") throw error;
      throw new ApiError(await this.unreachableReason(), "");
    }
    if (!response.ok) {
      let error = {};
      try {
        error = await response.json();
      } catch (_) {
        /* not a NormalizedError */
      }
      throw new ApiError(error.code || `http_${response.status}`, error.message, error.details);
    }
    return response;
  }

  /** Why a request got no readable answer: the server answers the script's address to any
   * page, so when it does, it refused this page's origin (its refusals carry no CORS
   * headers); when it does not, the network is down. */
  async unreachableReason() {
    try {
      await fetch(`${this.base}/widgets/v1/embed.js`, { method: "HEAD", cache: "no-store" });
      return "origin_not_allowed";
    } catch (_) {
      return "network";
    }
  }

  async config() {
    return (await this.request("config", { auth: false })).json();
  }

  async start(identity) {
    const body = identity ? { end_user_token: identity } : {};
    const response = await this.request("conversations", { method: "POST", body, auth: false });
    const started = await response.json();
    this.save({ conversation: started.conversation, token: started.token, identity });
    return started;
  }

  async history() {
    const path = `conversations/${this.session.conversation}/messages`;
    return (await (await this.request(path)).json()).messages;
  }

  /** Ask; onEvent(name, data) for each event of the answer. */
  async ask(text, onEvent, signal) {
    const path = `conversations/${this.session.conversation}/messages`;
    const response = await this.request(path, { method: "POST", body: { text }, signal });
    try {
      await readEvents(response.body, (name, data) => {
        if (name === "done" && data.token) this.save({ ...this.session, token: data.token });
        onEvent(name, data);
      });
    } catch (error) {
      if (error instanceof ApiError || (error && error.name === "AbortError")) throw error;
      throw new ApiError("network", "");
    }
  }

  async feedback(message, rating) {
    await this.request(`messages/${message}/feedback`, { method: "POST", body: { rating } });
  }
}
