// The chat panel inside the widget's shadow root: launcher, log, composer, notices.
import { ApiError } from "./client.js";
import { render } from "./markdown.js";
import { messageFor, STRINGS } from "./strings.js";
import { CSS } from "./styles.js";

const COLOR = /^(#[0-9a-fA-F]{3,8}|(rgb|hsl)a?\([0-9., %/-]{1,60}\)|[a-zA-Z]{3,20})$/;
const CHAT_ICON =
  "M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H8l-4 4V6a2 2 0 0 1 2-2z";
const CLOSE_ICON = "M6 6l12 12M18 6L6 18";
// Only a server-rendered SVG as a data: URL is shown as a chart (an <img> runs no script).
const CHART_URL = /^data:image\/svg\+xml;base64,[A-Za-z0-9+/=]+$/;

function el(tag, attributes = {}, text) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

function icon(path) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("width", "22");
  svg.setAttribute("height", "22");
  svg.setAttribute("aria-hidden", "true");
  const line = document.createElementNS(ns, "path");
  line.setAttribute("d", path);
  line.setAttribute("fill", "none");
  line.setAttribute("stroke", "currentColor");
  line.setAttribute("stroke-width", "2");
  line.setAttribute("stroke-linecap", "round");
  line.setAttribute("stroke-linejoin", "round");
  svg.append(line);
  return svg;
}

/** Custom properties of the theme's colours, as a style sheet text (only plain colours). */
function themeCss(theme) {
  const block = (colors) =>
    Object.entries(colors || {})
      .filter(([name, value]) => /^[a-z-]{1,20}$/.test(name) && COLOR.test(String(value)))
      .map(([name, value]) => `--ac-${name}:${value};`)
      .join("");
  return (
    `:host{${block(theme.colors)}}` +
    `@media (prefers-color-scheme:dark){:host{${block(theme.dark_colors)}}}`
  );
}

export class Panel {
  constructor(host, client, { inline }) {
    this.host = host;
    this.client = client;
    this.inline = inline;
    this.strings = { ...STRINGS };
    this.identity = null;
    this.busy = null; // the AbortController of the answer being streamed
    this.lastQuestion = null;
    this.available = true;
    this.root = host.attachShadow({ mode: "open" });
    this.build();
  }

  emit(name, detail) {
    this.host.dispatchEvent(
      new CustomEvent(`automate-chat:${name}`, { detail, bubbles: true, composed: true })
    );
  }

  build() {
    const s = this.strings;
    this.style = el("style");
    this.style.textContent = CSS;
    this.themeStyle = el("style");
    this.frame = el("div", { class: this.inline ? "inline" : "bubble" });
    this.launcher = el("button", {
      class: "launcher",
      type: "button",
      "aria-label": s.open,
      "aria-expanded": "false",
      "aria-controls": "ac-panel",
      "aria-haspopup": "dialog",
    });
    this.launcher.append(icon(CHAT_ICON));
    this.launcher.hidden = this.inline;
    this.launcher.addEventListener("click", () => (this.isOpen() ? this.close() : this.open()));

    this.panel = el("section", {
      class: "panel",
      id: "ac-panel",
      role: this.inline ? "region" : "dialog",
      "aria-labelledby": "ac-title",
    });
    this.panel.hidden = !this.inline;
    const header = el("header");
    this.title = el("h2", { id: "ac-title" }, "Chat");
    this.closeButton = el("button", { class: "icon", type: "button", "aria-label": s.close });
    this.closeButton.append(icon(CLOSE_ICON));
    this.closeButton.hidden = this.inline;
    this.closeButton.addEventListener("click", () => this.close());
    header.append(this.title, this.closeButton);

    this.log = el("div", { class: "log", role: "log", "aria-live": "polite" });
    this.notice = el("div", { class: "notice", role: "alert" });
    this.notice.hidden = true;

    this.form = el("form");
    this.input = el("textarea", { rows: "1", maxlength: "4000", "aria-label": s.placeholder });
    this.input.placeholder = s.placeholder;
    this.sendButton = el("button", { class: "send", type: "submit" }, s.send);
    this.stopButton = el("button", { class: "send stop", type: "button" }, s.stop);
    this.stopButton.hidden = true;
    this.stopButton.addEventListener("click", () => this.busy && this.busy.abort());
    this.input.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey) {
        event.preventDefault();
        this.form.requestSubmit();
      }
    });
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      const text = this.input.value.trim();
      if (text && !this.busy && this.available) {
        this.input.value = "";
        this.ask(text);
      }
    });
    this.form.append(this.input, this.sendButton, this.stopButton);
    this.panel.append(header, this.log, this.notice, this.form);
    this.panel.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && !this.inline) this.close();
    });
    this.frame.append(this.launcher, this.panel);
    this.root.append(this.style, this.themeStyle, this.frame);
  }

  applyConfig(config) {
    const theme = config.theme || {};
    Object.assign(this.strings, theme.strings || {});
    const s = this.strings;
    this.themeStyle.textContent = themeCss(theme);
    if (theme.position === "bottom-left") this.frame.classList.add("left");
    this.title.textContent = theme.title || config.name || "Chat";
    this.launcher.setAttribute("aria-label", s.open);
    this.closeButton.setAttribute("aria-label", s.close);
    this.input.placeholder = s.placeholder;
    this.input.setAttribute("aria-label", s.placeholder);
    this.sendButton.textContent = s.send;
    this.stopButton.textContent = s.stop;
    this.greeting = theme.greeting || "";
    if (this.greeting && !this.log.childElementCount) this.addMessage("assistant", this.greeting);
  }

  isOpen() {
    return !this.panel.hidden;
  }

  open() {
    if (this.inline || this.isOpen()) return;
    this.panel.hidden = false;
    this.frame.classList.add("open");
    this.launcher.setAttribute("aria-expanded", "true");
    this.input.focus();
    this.emit("open");
  }

  close() {
    if (this.inline || !this.isOpen()) return;
    this.panel.hidden = true;
    this.frame.classList.remove("open");
    this.launcher.setAttribute("aria-expanded", "false");
    this.launcher.focus();
    this.emit("close");
  }

  /** Show a notice; `retry` adds a button that runs it. */
  showNotice(text, retry) {
    this.notice.textContent = text;
    if (retry) {
      const button = el("button", { type: "button" }, this.strings.retry);
      button.addEventListener("click", () => {
        this.notice.hidden = true;
        retry();
      });
      this.notice.append(button);
    }
    this.notice.hidden = false;
  }

  fail(error, retry) {
    const code = error instanceof ApiError ? error.code : "error";
    this.showNotice(messageFor(code, this.strings), code === "network" ? retry : undefined);
    this.notice.dataset.code = code;
    if (code === "origin_not_allowed" || code === "embed_not_found") this.unavailable();
    this.emit("error", { code, message: error && error.message });
  }

  unavailable() {
    this.available = false;
    this.input.disabled = true;
    this.sendButton.disabled = true;
  }

  addMessage(role, text) {
    const node = el("div", { class: `msg ${role}` });
    const body = el("div", { class: "body" });
    node.append(body);
    this.fill(body, text, []);
    this.log.append(node);
    this.log.scrollTop = this.log.scrollHeight;
    return { node, body };
  }

  fill(body, text, citations) {
    const byMarker = new Map(citations.map((c) => [c.marker, c]));
    body.replaceChildren(
      render(text, (marker) => {
        const citation = byMarker.get(marker);
        if (!citation) return `[${marker}]`;
        const link = el("a", { class: "cite", href: citation.url || "#" }, `[${marker}]`);
        if (citation.url) {
          link.target = "_blank";
          link.rel = "noopener noreferrer nofollow";
        } else link.addEventListener("click", (event) => event.preventDefault());
        link.title = citation.title || "";
        return link;
      })
    );
  }

  addSources(node, citations) {
    if (!citations.length) return;
    const list = el("ol", { class: "sources", "aria-label": this.strings.sources });
    for (const citation of citations) {
      const item = el("li", { value: String(citation.marker) });
      const label = citation.title || `[${citation.marker}]`;
      if (citation.url) {
        const link = el("a", { href: citation.url, target: "_blank" }, label);
        link.rel = "noopener noreferrer nofollow";
        item.append(link);
      } else item.append(el("strong", {}, label));
      if (citation.snippet) item.append(el("span", { class: "snippet" }, citation.snippet));
      list.append(item);
    }
    node.append(list);
  }

  /** A data-chat answer's rows, as text cells. */
  addTable(node, table) {
    if (!table || !Array.isArray(table.columns)) return;
    const wrap = el("div", { class: "table", tabindex: "0", role: "region" });
    wrap.setAttribute("aria-label", this.strings.table);
    const grid = el("table");
    const head = el("tr");
    for (const name of table.columns) head.append(el("th", { scope: "col" }, String(name)));
    grid.append(el("thead"), el("tbody"));
    grid.tHead.append(head);
    for (const row of table.rows || []) {
      const line = el("tr");
      for (const value of row) line.append(el("td", {}, value === null ? "" : String(value)));
      grid.tBodies[0].append(line);
    }
    wrap.append(grid);
    node.classList.add("wide");
    node.append(wrap);
    if (table.truncated) {
      const shown = (table.rows || []).length;
      node.append(el("p", { class: "more" }, `${shown} / ${table.row_count}`));
    }
  }

  addChart(node, chart) {
    if (!chart || !CHART_URL.test(chart.image || "")) return;
    node.append(el("img", { class: "chart", src: chart.image, alt: this.strings.chart }));
  }

  addFeedback(node, messageId) {
    const actions = el("div", { class: "actions", role: "group" });
    for (const [rating, label] of [
      ["up", this.strings.thumbs_up],
      ["down", this.strings.thumbs_down],
    ]) {
      const button = el("button", { type: "button", "aria-pressed": "false" }, label);
      button.addEventListener("click", async () => {
        try {
          await this.client.feedback(messageId, rating);
          for (const other of actions.children) other.setAttribute("aria-pressed", "false");
          button.setAttribute("aria-pressed", "true");
        } catch (error) {
          this.fail(error);
        }
      });
      actions.append(button);
    }
    node.append(actions);
  }

  async boot() {
    try {
      this.applyConfig(await this.client.config());
    } catch (error) {
      this.fail(error, () => this.boot());
      return;
    }
    if (this.client.session && this.client.session.identity === this.identity) {
      try {
        for (const message of await this.client.history()) this.showStored(message);
      } catch (_) {
        this.client.save(null); // expired or from another site: start afresh
      }
    }
    this.emit("ready");
  }

  showStored(message) {
    const { node, body } = this.addMessage(message.role, message.text);
    if (message.role === "assistant") {
      this.fill(body, message.text, message.citations || []);
      this.addSources(node, message.citations || []);
      this.addTable(node, message.table);
      this.addChart(node, message.chart);
      if (message.status === "complete") this.addFeedback(node, message.id);
    }
  }

  identify(token) {
    if (token === this.identity) return;
    this.identity = token || null;
    if (this.client.session && this.client.session.identity !== this.identity) {
      this.client.save(null);
    }
  }

  async ensureConversation() {
    if (!this.client.session || this.client.session.identity !== this.identity) {
      await this.client.start(this.identity);
    }
  }

  async ask(text, { again = false } = {}) {
    this.notice.hidden = true;
    this.lastQuestion = text;
    if (!again) this.addMessage("user", text);
    const { node, body } = this.addMessage("assistant", "");
    body.classList.add("typing");
    this.setBusy(new AbortController());
    let received = "";
    let citations = [];
    let table = null;
    let chart = null;
    let frame = 0;
    const paint = () => {
      frame = 0;
      this.fill(body, received, citations);
      this.log.scrollTop = this.log.scrollHeight;
    };
    try {
      await this.ensureConversation();
      await this.askOnce(text, (name, data) => {
        if (name === "text") {
          received += data.text;
          if (!frame) frame = requestAnimationFrame(paint);
        } else if (name === "citations") {
          citations = data.citations || [];
        } else if (name === "table") {
          table = data;
        } else if (name === "chart") {
          chart = data;
        } else if (name === "done") {
          body.classList.remove("typing");
          paint();
          this.addSources(node, citations);
          this.addTable(node, table);
          this.addChart(node, chart);
          this.addFeedback(node, data.message);
          this.emit("answer", { message: data.message, text: received });
        } else if (name === "error") {
          throw new ApiError(data.code, data.message, data.details);
        }
      });
    } catch (error) {
      body.classList.remove("typing");
      if (error && error.name === "AbortError") {
        if (!received) body.textContent = this.strings.stopped;
      } else {
        if (!received) node.remove();
        this.fail(error, () => this.ask(text, { again: true }));
      }
    } finally {
      if (frame) cancelAnimationFrame(frame);
      if (received) this.fill(body, received, citations);
      this.setBusy(null);
    }
  }

  /** Ask once; an expired or refused conversation token starts a new conversation first. */
  async askOnce(text, onEvent) {
    try {
      await this.client.ask(text, onEvent, this.busy.signal);
    } catch (error) {
      const stale = ["token_expired", "invalid_token", "conversation_not_found"];
      if (!(error instanceof ApiError) || !stale.includes(error.code)) throw error;
      this.client.save(null);
      await this.ensureConversation();
      await this.client.ask(text, onEvent, this.busy.signal);
    }
  }

  setBusy(controller) {
    this.busy = controller;
    this.sendButton.hidden = Boolean(controller);
    this.stopButton.hidden = !controller;
    this.log.setAttribute("aria-busy", controller ? "true" : "false");
  }
}
