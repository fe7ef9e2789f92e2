"""Accessibility checks run in the page (no extra library): WCAG 2.2 success criteria that a script can judge.

* 1.3.1 / 4.1.2: every visible form control has a label, every button and link an accessible name, every image
  a text alternative, the page a ``lang``;
* 1.4.3: text contrast at least 4.5:1 (3:1 for large text) against the first opaque background behind it;
* 1.4.10 reflow: no horizontal scrolling at the page's width (the wallet at 360 CSS px);
* and no message key left untranslated on the screen.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import Page

_CHECKS = r"""
() => {
  const problems = [];
  const visible = (e) => !!(e.offsetWidth || e.offsetHeight || e.getClientRects().length)
    && getComputedStyle(e).visibility !== "hidden";
  const name = (e) => (e.getAttribute("aria-label") || "").trim() || (e.textContent || "").trim()
    || (e.getAttribute("aria-labelledby") ? "x" : "");
  const describe = (e) => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "");
  if (!document.documentElement.lang) problems.push("html without lang");
  for (const e of document.querySelectorAll("input, select, textarea")) {
    if (!visible(e) || e.type === "hidden") continue;
    const labelled = (e.labels && e.labels.length) || e.getAttribute("aria-label") || e.getAttribute("aria-labelledby");
    if (!labelled) problems.push("unlabelled " + describe(e));
  }
  for (const e of document.querySelectorAll("button, a[href]")) {
    if (visible(e) && !name(e)) problems.push("nameless " + describe(e));
  }
  for (const e of document.querySelectorAll("img")) {
    if (visible(e) && !(e.getAttribute("alt") || "").trim()) problems.push("img without alt " + describe(e));
  }
  const rgb = (c) => (c.match(/[\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = (e) => {
    for (let n = e; n; n = n.parentElement) {
      const c = rgb(getComputedStyle(n).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] === 1)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  for (const e of document.querySelectorAll("body *")) {
    const own = Array.from(e.childNodes).some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!own || !visible(e)) continue;
    const style = getComputedStyle(e);
    const fg = rgb(style.color).slice(0, 3), bg = background(e);
    const [hi, lo] = [lum(fg), lum(bg)].sort((a, b) => b - a);
    const ratio = (hi + 0.05) / (lo + 0.05);
    const size = parseFloat(style.fontSize), bold = Number(style.fontWeight) >= 700;
    const large = size >= 24 || (bold && size >= 18.66);
    const opacity = e.closest("button:disabled") ? 0.6 : 1;
    if (opacity === 1 && ratio < (large ? 3 : 4.5)) problems.push(`contrast ${ratio.toFixed(2)} ${describe(e)}`);
  }
  const spaces = "app|camera|claim|consent|counter|field|history|kiosk|outcome|passkey|problem|purpose|type|value|wallet";
  const keys = new RegExp("\\b(" + spaces + ")\\.[a-z][\\w.-]*");
  const text = document.body.innerText;
  if (keys.test(text)) problems.push("untranslated key: " + text.match(keys)[0]);
  const root = document.documentElement;
  if (root.scrollWidth > root.clientWidth + 1) {
    problems.push(`horizontal scroll: ${root.scrollWidth} > ${root.clientWidth}`);
  }
  return problems;
}
"""


def problems(page: Page) -> list[str]:
    found: list[str] = page.evaluate(_CHECKS)
    return found


def assert_accessible(page: Page) -> None:
    found = problems(page)
    assert not found, f"{page.url}: {found}"
