// <script src="https://HOST/widgets/v1/embed.js" data-embed="pk_…" async></script>
// renders a launcher bubble and the chat panel in a Shadow DOM; with data-mount="#id" the
// panel is mounted inline in that element. window.AutomateChat.identify(token), .open() and
// .close() drive it; "automate-chat:*" DOM events (ready, open, close, answer, error) report.
import { Client } from "./client.js";
import { Panel } from "./panel.js";

const script =
  document.currentScript ||
  Array.from(document.querySelectorAll("script[data-embed]")).find((s) =>
    /\/widgets\/v1\/embed\.js(\?|$)/.test(s.src)
  );

function start() {
  const key = script && script.dataset.embed;
  if (!key) return;
  const base = new URL(script.src, location.href).origin;
  const mountSelector = script.dataset.mount;
  const mount = mountSelector ? document.querySelector(mountSelector) : null;
  const host = document.createElement("automate-chat");
  (mount || document.body).append(host);
  const client = new Client(base, key, script.dataset.preview);
  const panel = new Panel(host, client, { inline: Boolean(mount) });
  const queued = (window.AutomateChat && window.AutomateChat.q) || [];
  const api = {
    identify: (token) => panel.identify(token),
    open: () => panel.open(),
    close: () => panel.close(),
  };
  window.AutomateChat = api;
  for (const [method, ...args] of queued) if (api[method]) api[method](...args);
  panel.boot();
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
else start();
