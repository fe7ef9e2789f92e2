// The wallet page: passkey enrolment and sign-in, credentials with a self-refreshing presentation QR,
// answering a kiosk's OpenID4VP request, access history, export, erasure. Consents: consents.js.
"use strict";

const IMIWallet = (() => {
  const { t, api, $, $$, el, show, say, busy, problemText, claimLabel, claimValue } = IMI;
  const SEP = () => t("list.separator");
  const QR_MARGIN = 10; // seconds before refresh_in runs out that a new QR is fetched
  let credentials = [];
  let pending = null; // an enrolment whose passkey step may be retried: {offer, pin, ceremony_id, publicKey}
  let qrTimer = null;
  let scanner = null;
  const tabHooks = {};

  // -- signed out: enrol or sign in ----------------------------------------------------------------------
  function signedOut(message, kind) {
    closeQr();
    stopCamera();
    show($("#home"), false);
    show($("#signed-out"), true);
    if (message) say($("#login-status"), message, kind);
  }

  $("#enrol-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const status = $("#enrol-status");
    const offer = $("#offer").value.trim();
    const pin = $("#pin").value.trim();
    say(status, t("wallet.enrol.working"));
    await busy(event.submitter, async () => {
      try {
        if (!pending || pending.offer !== offer || pending.pin !== pin) {
          const start = await api("POST", "/wallet/enrol/start", { json: { offer, pin } });
          pending = { offer, pin, ...start };
        }
        say(status, t("passkey.create-prompt"));
        const credential = await IMIWebAuthn.create(pending.publicKey);
        const ceremony = pending.ceremony_id;
        pending = null;
        await api("POST", "/wallet/enrol/finish", { json: { ceremony_id: ceremony, credential } });
        $("#enrol-form").reset();
        say(status, "");
        await home(t("wallet.enrol.done"));
      } catch (error) {
        if (error instanceof IMI.ApiError) pending = null; // the server used the ceremony up
        say(status, problemText(error), "bad");
      }
    });
  });

  $("#login").addEventListener("click", async (event) => {
    const status = $("#login-status");
    say(status, t("passkey.get-prompt"));
    await busy(event.target, async () => {
      try {
        const start = await api("POST", "/wallet/login/start");
        const credential = await IMIWebAuthn.get(start.publicKey);
        await api("POST", "/wallet/login/finish", { json: { ceremony_id: start.ceremony_id, credential } });
        say(status, "");
        await home();
      } catch (error) {
        say(status, problemText(error), "bad");
      }
    });
  });

  // -- camera: fill a text field from a QR ---------------------------------------------------------------
  function stopCamera() {
    if (scanner) scanner.stop();
    scanner = null;
    for (const box of $$(".scanner")) show(box, false);
  }

  function camera(button, box, video, field, status, then) {
    button.addEventListener("click", async () => {
      stopCamera();
      show(box, true);
      scanner = new IMI.QrScanner(video, (text) => {
        stopCamera();
        field.value = text;
        if (then) then();
      });
      try {
        await scanner.start();
      } catch (error) {
        stopCamera();
        say(status, IMI.cameraProblem(error), "bad");
      }
    });
  }

  // -- signed in -----------------------------------------------------------------------------------------
  async function home(message) {
    credentials = await api("GET", "/wallet/me/credentials");
    show($("#signed-out"), false);
    show($("#home"), true);
    renderCredentials();
    const opened = document.body.dataset.openConsent;
    select(opened && document.body.dataset.consents === "on" ? "consents" : "creds");
    if (message) say($("#creds-status"), message, "ok");
  }

  function select(tab) {
    for (const button of $$(".tabs button")) button.setAttribute("aria-pressed", String(button.dataset.tab === tab));
    for (const panel of $$("#home .panel")) show(panel, panel.id === "tab-" + tab);
    if (tab !== "creds") closeQr();
    stopCamera();
    if (tabHooks[tab]) tabHooks[tab]();
  }

  for (const button of $$(".tabs button")) button.addEventListener("click", () => select(button.dataset.tab));

  const typeOf = (item) => String(item.configuration_id || "").split("_")[0];

  function renderCredentials() {
    const list = $("#cred-list");
    list.replaceChildren();
    if (!credentials.length) list.append(el("p", { class: "hint", text: t("wallet.creds.empty") }));
    credentials.forEach((item, i) => {
      const choices = el("fieldset", {}, el("legend", { text: t("wallet.creds.choose") }));
      for (const [name, value] of Object.entries(item.claims || {})) {
        const id = `c${i}-${name}`;
        choices.append(el("div", { class: "choice" },
          el("input", { type: "checkbox", id, value: name, checked: name === "name" }),
          el("label", { for: id }, el("span", { class: "claim-name", text: claimLabel(name) }), " ",
            el("span", { class: "claim-value", text: claimValue(name, value) }))));
      }
      const form = el("select", { id: `f${i}` },
        el("option", { value: "compact", text: t("wallet.qr.compact") }),
        el("option", { value: "reference", text: t("wallet.qr.reference") }));
      const button = el("button", { type: "button", class: "primary", text: t("wallet.qr.show") });
      const card = el("article", { class: "card cred", "data-id": item.id },
        el("h2", { text: t("type." + typeOf(item)) }),
        el("p", { class: "hint", text: t("wallet.creds.received", { time: IMI.time(item.received_at) }) }),
        choices, el("label", { for: `f${i}`, text: t("wallet.qr.form") }), form, button);
      button.addEventListener("click", () => {
        const claims = $$("input:checked", choices).map((box) => box.value);
        if (!claims.length) return say($("#creds-status"), t("wallet.creds.choose-one"), "bad");
        busy(button, () => showQr(item.id, claims, form.value));
      });
      list.append(card);
    });
  }

  // -- the presentation QR: fetched again before it goes stale (the API says when: refresh_in) -----------
  async function showQr(itemId, claims, form) {
    clearTimeout(qrTimer);
    try {
      const qr = await api("POST", `/wallet/me/credentials/${encodeURIComponent(itemId)}/qr`, { json: { claims, form } });
      const box = $("#qr-box");
      $("#qr-img").src = qr.png;
      $("#qr-img").dataset.text = qr.text;
      $("#qr-shows").textContent = t("wallet.qr.shows", { claims: claims.map(claimLabel).join(SEP()) });
      show(box, true);
      say($("#creds-status"), "");
      let left = Math.max(5, Number(qr.refresh_in) - QR_MARGIN);
      const tick = () => {
        $("#qr-countdown").textContent = t("wallet.qr.refresh", { seconds: left });
        if (left <= 0) return showQr(itemId, claims, form);
        left -= 1;
        qrTimer = setTimeout(tick, 1000);
        return null;
      };
      tick();
      box.scrollIntoView({ block: "nearest" });
    } catch (error) {
      closeQr();
      if (error instanceof IMI.ApiError && error.status === 401) return signedOut(problemText(error), "bad");
      say($("#creds-status"), problemText(error), "bad");
    }
    return null;
  }

  function closeQr() {
    clearTimeout(qrTimer);
    qrTimer = null;
    show($("#qr-box"), false);
    $("#qr-img").removeAttribute("src");
  }
  $("#qr-close").addEventListener("click", closeQr);

  // -- answer a kiosk's request (OpenID4VP) ----------------------------------------------------------------
  async function readRequest() {
    const text = $("#vp-text").value.trim();
    const status = $("#vp-status");
    show($("#vp-request"), false);
    if (window.IMIConsents && IMIConsents.idFrom(text)) return IMIConsents.open(IMIConsents.idFrom(text));
    try {
      const request = await api("POST", "/wallet/me/vp/read", { json: { qr: text } });
      $("#vp-who").textContent = t("wallet.answer.who", { verifier: IMI.party(request.verifier) });
      const box = $("#vp-claims");
      box.replaceChildren(box.firstElementChild);
      for (const name of request.claims) {
        const id = "vp-" + name;
        box.append(el("div", { class: "choice" }, el("input", { type: "checkbox", id, value: name, checked: true }),
          el("label", { for: id, text: claimLabel(name) })));
      }
      const suitable = credentials.filter((c) => request.claims.every((n) => n in (c.claims || {})));
      $("#vp-cred").replaceChildren(...(suitable.length ? suitable : credentials).map((c) =>
        el("option", { value: c.id, text: t("type." + typeOf(c)) })));
      show($("#vp-request"), true);
      say(status, "");
      $("#vp-request button[type=submit]").focus();
    } catch (error) {
      say(status, problemText(error), "bad");
    }
    return null;
  }

  $("#vp-form").addEventListener("submit", (event) => {
    event.preventDefault();
    busy(event.submitter, readRequest);
  });
  camera($("#vp-camera"), $("#vp-scanner"), $("#vp-video"), $("#vp-text"), $("#vp-status"), readRequest);
  $("#vp-camera-stop").addEventListener("click", stopCamera);

  $("#vp-request").addEventListener("submit", async (event) => {
    event.preventDefault();
    const status = $("#vp-status");
    const claims = $$("#vp-claims input:checked").map((box) => box.value);
    if (!claims.length) return say(status, t("wallet.creds.choose-one"), "bad");
    const body = { qr: $("#vp-text").value.trim(), credential_id: $("#vp-cred").value, claims };
    try {
      await busy(event.submitter, () => api("POST", "/wallet/me/vp/answer", { json: body }));
      show($("#vp-request"), false);
      $("#vp-text").value = "";
      say(status, t("wallet.answer.sent", { claims: claims.map(claimLabel).join(SEP()) }), "ok");
    } catch (error) {
      say(status, problemText(error), "bad");
    }
    return null;
  });

  $("#vp-decline").addEventListener("click", () => {
    show($("#vp-request"), false);
    $("#vp-text").value = "";
    say($("#vp-status"), t("wallet.answer.declined"));
  });

  camera($("#offer-camera"), $("#offer-scanner"), $("#offer-video"), $("#offer"), $("#enrol-status"), () => $("#pin").focus());
  $("#offer-camera-stop").addEventListener("click", stopCamera);

  // -- history ---------------------------------------------------------------------------------------------
  function describe(entry) {
    const claims = (entry.claims || []).map(claimLabel).join(SEP());
    const key = ["history", entry.kind, entry.channel || entry.form || entry.event].filter(Boolean).join(".");
    const values = { claims, party: IMI.party(entry.party || entry.client || ""), purpose: entry.purpose || "" };
    if (IMI.has(key)) return t(key, values);
    if (IMI.has("history." + entry.kind)) return t("history." + entry.kind, values);
    return t("history.other", { kind: entry.kind || "" });
  }

  tabHooks.history = async () => {
    const entries = (await api("GET", "/wallet/me/history")).sort((a, b) => (b.at || 0) - (a.at || 0));
    $("#history-list").replaceChildren(...entries.map((entry) => el("li", {},
      el("time", { datetime: new Date((entry.at || 0) * 1000).toISOString(), text: IMI.time(entry.at || 0) }),
      el("span", { text: describe(entry) }))));
    show($("#history-empty"), !entries.length);
  };

  // -- account: export, sign out, erase ---------------------------------------------------------------------
  $("#export").addEventListener("click", async (event) => {
    event.preventDefault(); // fetched here so that a failure is told, not a silently cancelled download
    const status = $("#account-status");
    try {
      const data = await busy(event.target, () => api("GET", "/wallet/me/export"));
      const url = URL.createObjectURL(new Blob([JSON.stringify(data, null, 2)], { type: "application/json" }));
      const link = el("a", { href: url, download: "imi-export.json", hidden: true });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
      say(status, t("wallet.account.exported"), "ok");
    } catch (error) {
      say(status, problemText(error), "bad");
    }
  });

  $("#logout").addEventListener("click", async () => {
    await api("POST", "/wallet/logout").catch(() => null);
    signedOut(t("wallet.account.logged-out"), "ok");
  });

  $("#erase").addEventListener("click", async (event) => {
    if (!window.confirm(t("wallet.account.erase-confirm"))) return;
    try {
      const result = await busy(event.target, () => api("DELETE", "/wallet/me"));
      signedOut(t("wallet.account.erased", { index: result.receipt.index }), "ok");
    } catch (error) {
      say($("#account-status"), problemText(error), "bad");
    }
  });

  document.addEventListener("visibilitychange", () => {
    if (document.hidden) stopCamera();
  });

  home().catch((error) => signedOut(error instanceof IMI.ApiError && error.status === 401 ? "" : problemText(error), "bad"));

  return { credentials: () => credentials, select, tabHooks, signedOut, typeOf };
})();
