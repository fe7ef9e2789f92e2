// The consent inbox of the wallet page: open a third party's request (link, imi-consent: QR text or id),
// grant all or part (sensitive items each with their own toggle, PIPL art. 29), refuse; later narrow,
// pause, resume or withdraw. Only shown when the consent API is wired (body data-consents="on").
"use strict";

const IMIConsents = (() => {
  const { t, has, api, $, $$, el, show, say, busy, problemText, claimLabel } = IMI;
  const enabled = document.body.dataset.consents === "on";
  const ID = "[A-Za-z0-9_-]{8,64}";
  const BASE = "/wallet/me/consents/";
  let opened = document.body.dataset.openConsent || "";

  function idFrom(text) {
    const value = String(text || "").trim();
    const match = value.match(new RegExp("^imi-consent:(" + ID + ")$")) ||
      value.match(new RegExp("/wallet/consents/(" + ID + ")(?:[?#].*)?$")) || value.match(new RegExp("^(" + ID + ")$"));
    return match ? match[1] : "";
  }

  const name = (key) => claimLabel(String(key).split(".").slice(1).join("."));
  const purpose = (term) => (has("purpose." + term) ? t("purpose." + term) : term);
  const stateText = (state) => (has("consent.state." + state) ? t("consent.state." + state) : state);

  function terms(view) {
    const rows = [
      ["consent.purpose", purpose(view.purpose)],
      ["consent.recipients", (view.recipients || []).join(t("list.separator")) || t("consent.recipients-none")],
      ["consent.validity", t("consent.days", { days: view.validity_days })],
      ["consent.frequency", t("consent.per-" + view.frequency.period, { count: view.frequency.count })],
      ["consent.retention", t("consent.days", { days: view.retention_days })],
      ["consent.releases", String(view.releases || 0)],
    ];
    if (view.valid_until) rows.push(["consent.valid-until", IMI.time(view.valid_until)]);
    return el("dl", { class: "claims" }, ...rows.flatMap(([k, v]) => [el("dt", { text: t(k) }), el("dd", { text: v })]));
  }

  // One checkbox per item; sensitive ones get a second, separate toggle. `mode`: "grant" or "narrow".
  function itemChoices(view, mode, prefix) {
    const box = el("fieldset", {}, el("legend", { text: t(mode === "grant" ? "consent.items" : "consent.items-keep") }));
    const items = mode === "grant" ? view.items : view.items.filter((i) => i.granted);
    for (const item of items) {
      const id = `${prefix}-${item.key.replace(/\W/g, "_")}`;
      const tag = item.required ? t("consent.required") : t("consent.optional");
      const input = el("input", { type: "checkbox", id, value: item.key, checked: item.required || mode === "narrow",
        disabled: item.required, "data-role": "item" });
      box.append(el("div", { class: "choice" }, input,
        el("label", { for: id }, name(item.key), " ", el("span", { class: "tag", text: tag }))));
      if (item.sensitive && mode === "grant") {
        const sid = id + "-sensitive";
        const toggle = el("input", { type: "checkbox", id: sid, value: item.key, "data-role": "sensitive" });
        const row = el("div", { class: "choice sensitive", hidden: !input.checked }, toggle,
          el("label", { for: sid, text: t("consent.sensitive-confirm", { item: name(item.key) }) }));
        input.addEventListener("change", () => { // the separate toggle only for an item being shared
          row.hidden = !input.checked;
          if (!input.checked) toggle.checked = false;
        });
        box.append(row);
      }
    }
    return box;
  }

  const checked = (root, role) => $$(`input[data-role=${role}]:checked`, root).map((i) => i.value);

  function actionButton(key, handler, className) {
    return el("button", { type: "button", class: className || "", "data-action": key, text: t("consent.action." + key),
      onclick: (event) => busy(event.target, handler) });
  }

  function card(view) {
    const article = el("article", { class: "card consent", "data-id": view.id, "data-state": view.state });
    const client = view.client || {};
    article.append(
      el("h2", { text: client.name || "" }),
      el("p", { class: "hint", text: t("consent.org", { code: client.organisation_code || "" }) }),
      el("p", { class: "badge", "data-state": view.state, text: stateText(view.state) }));
    if (view.notice) article.append(el("blockquote", { text: view.notice }));
    article.append(terms(view));
    const act = (verb, body) => async () => {
      try {
        await api("POST", BASE + encodeURIComponent(view.id) + "/" + verb, { json: body });
        say($("#consent-status"), t("consent.done." + verb), "ok");
        if (verb !== "grant" || opened === view.id) opened = "";
        await load();
      } catch (error) {
        say($("#consent-status"), problemText(error), "bad");
      }
    };
    if (view.state === "requested") {
      const choices = itemChoices(view, "grant", "g-" + view.id);
      const confirmRefuse = () => (window.confirm(t("consent.confirm-refuse")) ? act("refuse")() : null);
      article.append(choices, el("div", { class: "actions" },
        actionButton("grant", () => act("grant", { items: checked(choices, "item"), sensitive_confirmed: checked(choices, "sensitive") })(), "primary"),
        actionButton("refuse", confirmRefuse)));
    } else if (view.state === "given" || view.state === "paused") {
      article.append(el("p", { text: t("consent.granted", { items: view.granted.map(name).join(t("list.separator")) }) }));
      const keep = itemChoices(view, "narrow", "n-" + view.id);
      const confirmWithdraw = () => (window.confirm(t("consent.confirm-withdraw")) ? act("withdraw")() : null);
      const buttons = el("div", { class: "actions" },
        actionButton("narrow", () => act("narrow", { items: checked(keep, "item") })()),
        view.state === "given" ? actionButton("pause", act("pause")) : actionButton("resume", act("resume")),
        actionButton("withdraw", confirmWithdraw, "danger"));
      article.append(keep, buttons);
    }
    return article;
  }

  async function load() {
    const list = $("#consent-list");
    try {
      const views = await api("GET", BASE.slice(0, -1));
      const cards = views.filter((v) => v.id !== opened).map(card);
      if (opened) {
        const view = await api("GET", BASE + encodeURIComponent(opened));
        cards.unshift(card(view));
      }
      list.replaceChildren(...cards);
      show($("#consent-empty"), !cards.length);
    } catch (error) {
      if (opened) opened = "";
      say($("#consent-status"), problemText(error), "bad");
    }
  }

  function open(id) {
    opened = id;
    say($("#consent-status"), "");
    IMIWallet.select("consents");
  }

  if (enabled) {
    show($('.tabs button[data-tab="consents"]'), true);
    IMIWallet.tabHooks.consents = load;
    $("#consent-open-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const id = idFrom($("#consent-open").value);
      if (!id) return say($("#consent-status"), t("consent.bad-link"), "bad");
      $("#consent-open").value = "";
      open(id);
      return null;
    });
  }

  return { idFrom: (text) => (enabled ? idFrom(text) : ""), open, load };
})();
