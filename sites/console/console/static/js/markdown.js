// Markdown from steps (anyone in the convo, or a model, wrote it) to safe HTML: marked renders, then
// DOMPurify removes scripts, event handlers and dangerous URLs. Links keep only http(s) and mailto
// and open in a new tab without a referrer or an opener.
import { Marked } from "../vendor/marked.min.js";
import "../vendor/purify.min.js";

const DOMPurify = globalThis.DOMPurify;
const marked = new Marked({ gfm: true, breaks: true });
const SAFE_LINK = /^(https?:|mailto:)/i;

DOMPurify.addHook("afterSanitizeAttributes", (node) => {
  if (node.tagName === "A") {
    const href = node.getAttribute("href") || "";
    if (!SAFE_LINK.test(href.trim())) node.removeAttribute("href");
    node.setAttribute("target", "_blank");
    node.setAttribute("rel", "noopener noreferrer");
  }
  // Images would fetch from anywhere as the page loads; the content policy blocks them too.
  if (node.tagName === "IMG" && !/^data:image\//i.test(node.getAttribute("src") || "")) node.removeAttribute("src");
});

export function renderMarkdown(text) {
  return DOMPurify.sanitize(marked.parse(text || ""), {
    FORBID_TAGS: ["style", "form", "input", "button", "textarea", "select"],
    FORBID_ATTR: ["style"],
  });
}
