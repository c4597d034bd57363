// Markdown to DOM nodes, never through HTML: model output is data. Every piece of text
// becomes a text node, so `<img onerror>` or `<script>` in an answer shows as text. Links
// keep only http(s) and mailto addresses; citation markers [n] become numbered links.

const SAFE_URL = /^(https?:\/\/|mailto:)/i;
const INLINE =
  /(`[^`\n]+`)|(\*\*[^*\n]+\*\*)|(\*[^*\n]+\*|(?<!\w)_[^_\n]+_(?!\w))|(\[[^\]\n]+\]\([^)\s]+\))|(\[\d{1,3}\](?!\())/;

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function inline(parent, text, cite) {
  let rest = text;
  while (rest) {
    const match = INLINE.exec(rest);
    if (!match) {
      parent.append(rest);
      return;
    }
    if (match.index) parent.append(rest.slice(0, match.index));
    const token = match[0];
    if (match[1]) parent.append(el("code", "", token.slice(1, -1)));
    else if (match[2]) inline(parent.appendChild(el("strong")), token.slice(2, -2), cite);
    else if (match[3]) inline(parent.appendChild(el("em")), token.slice(1, -1), cite);
    else if (match[4]) {
      const split = token.indexOf("](");
      const label = token.slice(1, split);
      const href = token.slice(split + 2, -1);
      if (SAFE_URL.test(href)) {
        const link = el("a", "", label);
        link.href = href;
        link.target = "_blank";
        link.rel = "noopener noreferrer nofollow";
        parent.append(link);
      } else parent.append(label);
    } else parent.append(cite(Number(token.slice(1, -1))));
    rest = rest.slice(match.index + token.length);
  }
}

/** A fragment for `source`; `cite(n)` makes the node of citation marker [n]. */
export function render(source, cite) {
  const root = document.createDocumentFragment();
  let fence = null;
  let open = null; // the paragraph or list that the next line continues
  const closeFence = () => {
    root.appendChild(el("pre")).append(el("code", "", fence.join("\n")));
    fence = null;
  };
  for (const line of source.replace(/\r\n?/g, "\n").split("\n")) {
    if (line.startsWith("```")) {
      if (fence === null) fence = [];
      else closeFence();
      open = null;
    } else if (fence !== null) fence.push(line);
    else open = block(root, open, line, cite);
  }
  if (fence !== null) closeFence();
  return root;
}

function block(root, open, line, cite) {
  if (!line.trim()) return null;
  const item = /^\s*(?:([-*+])|\d{1,3}[.)])\s+(.*)$/.exec(line);
  if (item) {
    const tag = item[1] ? "UL" : "OL";
    const list = open && open.tagName === tag ? open : root.appendChild(el(tag.toLowerCase()));
    inline(list.appendChild(el("li")), item[2], cite);
    return list;
  }
  const heading = /^#{1,6}\s+(.*)$/.exec(line);
  if (heading) {
    inline(root.appendChild(el("p", "heading")), heading[1], cite);
    return null;
  }
  if (open && open.tagName === "P") {
    open.append(el("br"));
    inline(open, line, cite);
    return open;
  }
  const paragraph = root.appendChild(el("p"));
  inline(paragraph, line, cite);
  return paragraph;
}
