// The panel's styles, scoped by the Shadow DOM. Colours are CSS custom properties (--ac-*),
// set from the embed's theme; light and dark defaults follow the visitor's colour scheme.
export const CSS = `
:host{all:initial;--ac-accent:#2563eb;--ac-accent-text:#fff;--ac-background:#fff;--ac-text:#111827;
--ac-muted:#6b7280;--ac-border:#e5e7eb;--ac-bubble:#f3f4f6;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--ac-text)}
@media (prefers-color-scheme:dark){:host{--ac-background:#111827;--ac-text:#f9fafb;--ac-muted:#9ca3af;--ac-border:#374151;--ac-bubble:#1f2937}}
*{box-sizing:border-box}
[hidden]{display:none!important}
.launcher{position:fixed;bottom:20px;right:20px;z-index:2147483000;width:56px;height:56px;border-radius:50%;border:0;
background:var(--ac-accent);color:var(--ac-accent-text);cursor:pointer;box-shadow:0 4px 14px rgba(0,0,0,.25);display:grid;place-items:center;transition:transform .15s}
.launcher:hover{transform:scale(1.06)}
.left .launcher{right:auto;left:20px}
.panel{position:fixed;bottom:88px;right:20px;z-index:2147483000;width:380px;max-width:calc(100vw - 40px);height:560px;max-height:calc(100vh - 120px);
display:flex;flex-direction:column;background:var(--ac-background);color:var(--ac-text);border:1px solid var(--ac-border);border-radius:14px;
box-shadow:0 12px 40px rgba(0,0,0,.2);overflow:hidden;animation:ac-in .18s ease-out}
.left .panel{right:auto;left:20px}
.inline .panel{position:static;width:100%;max-width:none;height:100%;min-height:360px;max-height:none;box-shadow:none;animation:none}
@keyframes ac-in{from{opacity:0;transform:translateY(8px)}to{opacity:1;transform:none}}
header{display:flex;align-items:center;gap:8px;padding:12px 14px;background:var(--ac-accent);color:var(--ac-accent-text)}
header h2{flex:1;margin:0;font-size:15px;font-weight:600}
button{font:inherit;color:inherit}
.icon{background:none;border:0;cursor:pointer;padding:4px;border-radius:6px;line-height:0}
.log{flex:1;overflow-y:auto;padding:14px;display:flex;flex-direction:column;gap:10px}
.msg{max-width:88%;padding:8px 12px;border-radius:12px;background:var(--ac-bubble);overflow-wrap:anywhere}
.msg.user{align-self:flex-end;background:var(--ac-accent);color:var(--ac-accent-text)}
.msg p{margin:0 0 6px}.msg p:last-child{margin-bottom:0}.msg .heading{font-weight:600}
.msg ul,.msg ol{margin:4px 0;padding-left:20px}
.msg pre{margin:6px 0;padding:8px;border-radius:8px;background:rgba(0,0,0,.08);overflow-x:auto;white-space:pre-wrap}
.msg code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12.5px}
.msg a{color:inherit}
.cite{font-size:11px;vertical-align:super;text-decoration:none;margin:0 1px}
.sources{margin:8px 0 0;padding:8px 0 0 18px;border-top:1px solid var(--ac-border);font-size:12.5px}
.sources li{margin:2px 0}.sources .snippet{display:block;color:var(--ac-muted)}
.msg.wide{max-width:100%}
.table{margin-top:8px;max-height:220px;overflow:auto;border:1px solid var(--ac-border);border-radius:8px}
.table table{border-collapse:collapse;width:100%;font-size:12.5px}
.table th,.table td{padding:4px 8px;text-align:left;border-bottom:1px solid var(--ac-border);white-space:nowrap}
.table th{position:sticky;top:0;background:var(--ac-bubble);font-weight:600}
.more{margin:4px 0 0;font-size:12px;color:var(--ac-muted)}
.chart{display:block;max-width:100%;height:auto;margin-top:8px;border-radius:8px;background:#fff}
.actions{display:flex;gap:4px;margin-top:6px}
.actions button{background:none;border:1px solid var(--ac-border);border-radius:6px;padding:2px 8px;cursor:pointer;font-size:12px}
.actions button[aria-pressed=true]{background:var(--ac-accent);color:var(--ac-accent-text);border-color:var(--ac-accent)}
.notice{margin:0 14px;padding:8px 10px;border-radius:8px;background:#fef3c7;color:#78350f;font-size:13px}
.notice button{margin-left:8px;background:none;border:1px solid currentColor;border-radius:6px;padding:1px 8px;cursor:pointer}
form{display:flex;gap:8px;padding:12px;border-top:1px solid var(--ac-border)}
textarea{flex:1;resize:none;height:40px;padding:9px 10px;border:1px solid var(--ac-border);border-radius:10px;background:var(--ac-background);color:var(--ac-text);font:inherit}
textarea:focus-visible,button:focus-visible,a:focus-visible{outline:2px solid var(--ac-accent);outline-offset:2px}
.send{border:0;border-radius:10px;padding:0 14px;background:var(--ac-accent);color:var(--ac-accent-text);cursor:pointer}
.send:disabled{opacity:.5;cursor:default}
.typing::after{content:"▍";animation:ac-blink 1s steps(2) infinite}
@keyframes ac-blink{50%{opacity:0}}
@media (max-width:480px){.bubble .panel{inset:0;width:100vw;max-width:none;height:100%;max-height:none;border-radius:0}
.bubble.open .launcher{display:none}}
@media (prefers-reduced-motion:reduce){*{animation:none!important;transition:none!important}}
`;
