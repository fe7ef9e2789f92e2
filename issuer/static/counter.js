// The counter page: officer sign-in with a passkey (the HttpOnly imi_staff cookie: the script holds no token;
// the first time, a bearer token from `imi admin token` adds the passkey and is forgotten), in-person check,
// credential offer QR + PIN, the credentials issued from the check, credential status, and verification of a
// citizen's QR (paste or camera).
"use strict";

(() => {
  const { t, api, $, $$, el, show, say, busy, problemText } = IMI;
  const COUNTER_KEY = "imi_counter_id";
  const POLL_MS = 3000;
  let checkId = null;
  let credentialId = null;
  let scanner = null;
  let issued = { check: null, until: 0, timer: null, generation: 0 };

  // Officer calls go with the staff cookie; a 401 means the session ended: back to the sign-in.
  async function call(method, url, json) {
    try {
      return await api(method, url, { json });
    } catch (error) {
      if (error instanceof IMI.ApiError && error.status === 401 && !$("#desk").hidden) signedOut(t("counter.signin.expired"));
      throw error;
    }
  }

  // -- sign-in -----------------------------------------------------------------------------------------------
  function enter(me) {
    $("#officer-name").textContent = t("counter.signed-in-as", { name: me.name });
    say($("#signin-status"), "");
    show($("#signin"), false);
    show($("#desk"), true);
    if (!$("#counter").value) $("#counter").value = localStorage.getItem(COUNTER_KEY) || "";
    $("#name").focus();
  }

  function signedOut(message) {
    stopWatching();
    show($("#desk"), false);
    show($("#signin"), true);
    say($("#signin-status"), message, "bad");
    $("#passkey-signin").focus();
  }

  class Unsupported extends Error {}

  async function passkeySignIn() {
    if (!IMIWebAuthn.supported()) throw new Unsupported();
    say($("#signin-status"), t("counter.signin.prompt"));
    const start = await api("POST", "/staff/login/start");
    const credential = await IMIWebAuthn.get(start.publicKey);
    await api("POST", "/staff/login/finish", { json: { ceremony_id: start.ceremony_id, credential } });
    enter(await api("GET", "/counter/me"));
  }

  function signInProblem(error) {
    if (error instanceof Unsupported) return t("counter.signin.unsupported");
    if (error && error.name === "InvalidStateError") return t("counter.first.exists");
    return problemText(error);
  }

  $("#passkey-signin").addEventListener("click", async (event) => {
    try {
      await busy(event.currentTarget, passkeySignIn);
    } catch (error) {
      say($("#signin-status"), signInProblem(error), "bad");
    }
  });

  // First time: the bearer token adds a passkey to the account, then the passkey signs in. The token goes
  // with the two registration calls only and is never stored.
  $("#first-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const status = $("#signin-status");
    const field = $("#token");
    say(status, "");
    try {
      await busy(event.submitter || $("#first-form button"), async () => {
        if (!IMIWebAuthn.supported()) throw new Unsupported();
        const token = field.value.trim();
        const start = await api("POST", "/staff/passkeys/start", { token });
        say(status, t("counter.first.prompt"));
        const credential = await IMIWebAuthn.create(start.publicKey);
        await api("POST", "/staff/passkeys/finish", { token, json: { ceremony_id: start.ceremony_id, credential } });
        field.value = "";
        say(status, t("counter.first.added"), "ok");
        await passkeySignIn();
      });
    } catch (error) {
      say(status, signInProblem(error), "bad");
    }
  });

  $("#signout").addEventListener("click", async (event) => {
    stopWatching();
    try {
      await busy(event.currentTarget, () => api("POST", "/counter/signout"));
    } finally {
      window.location.reload();
    }
  });

  // -- the in-person check -------------------------------------------------------------------------------
  function checkBody(form) {
    const data = new FormData(form);
    const body = {
      kind: "person",
      counter: data.get("counter").trim(),
      methods: data.getAll("methods"),
      document_number: data.get("document_number").trim().toUpperCase(),
      name: data.get("name").trim(),
      birth_date: data.get("birth_date"),
      sex: data.get("sex"),
      nationality: data.get("nationality").trim().toUpperCase(),
      address: data.get("address").trim(),
      result: data.get("result"),
    };
    const score = data.get("face_score");
    if (body.methods.includes("face-match") && score !== "") body.face_match = { score: Number(score), threshold: 0.9 };
    return body;
  }

  $("#check-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    const status = $("#check-status");
    if (!form.querySelectorAll("input[name=methods]:checked").length) {
      say(status, t("counter.check.need-method"), "bad");
      return;
    }
    try {
      const check = await busy(event.submitter, () => call("POST", "/issuer/checks", checkBody(form)));
      localStorage.setItem(COUNTER_KEY, form.counter.value.trim());
      checkId = check.result === "passed" ? check.id : null;
      $("#issue").disabled = !checkId;
      const key = check.result === "passed" ? "counter.check.recorded" : "counter.check.recorded-failed";
      say(status, t(key, { id: check.id, number: check.document_number_masked }), check.result === "passed" ? "ok" : "bad");
      status.dataset.checkId = check.id;
      if (checkId) $("#issue").focus();
    } catch (error) {
      say(status, problemText(error), "bad");
    }
  });

  // -- the credential offer ------------------------------------------------------------------------------
  $("#issue").addEventListener("click", async (event) => {
    const status = $("#offer-status");
    say(status, "");
    try {
      const offer = await busy(event.target, () =>
        call("POST", "/issuer/credentials", { check_id: checkId, format: $("#format").value }));
      $("#offer-qr").src = offer.qr_png;
      $("#offer-pin").textContent = offer.tx_code;
      $("#offer-expiry").textContent = t("counter.offer.expires", { time: IMI.time(offer.expires_at) });
      show($("#offer-out"), true);
      say(status, t("counter.offer.ready"), "ok");
      watchIssued(checkId, offer.expires_at);
      checkId = null;
      event.target.disabled = true;
    } catch (error) {
      say(status, problemText(error), "bad");
    }
  });

  $("#next-citizen").addEventListener("click", () => {
    const counter = $("#counter").value;
    $("#check-form").reset();
    $("#counter").value = counter;
    $("#offer-qr").removeAttribute("src");
    $("#offer-pin").textContent = "";
    show($("#offer-out"), false);
    stopWatching();
    $("#issued-list").replaceChildren();
    say($("#issued-status"), "");
    say($("#check-status"), "");
    say($("#offer-status"), "");
    $("#name").focus();
  });

  // -- the credentials issued from the offer's check: polled until the citizen's wallet redeems the offer ----
  function stopWatching() {
    clearTimeout(issued.timer);
    issued = { check: null, until: 0, timer: null, generation: issued.generation + 1 };
  }

  function issuedStatus(text, kind) {
    const box = $("#issued-status");
    if (box.textContent === text && box.dataset.kind === (kind || "info")) return; // no re-announcement
    say(box, text, kind);
  }

  function renderIssued(list) {
    const items = list.map((state, index) => {
      const described = "issued-" + index;
      const text = t("counter.issued.item", {
        id: state.credential_id, status: t("status." + state.status), time: IMI.time(state.issued_at) });
      const open = async (event) => {
        $("#credential-id").value = state.credential_id;
        if (await lookup(state.credential_id, event.currentTarget)) $("#reason").focus();
      };
      return el("li", {},
        el("span", { id: described, text }), " ",
        el("button", { type: "button", "aria-describedby": described, text: t("counter.issued.open"), onclick: open }));
    });
    $("#issued-list").replaceChildren(...items);
    if (list.length) issuedStatus(t("counter.issued.found", { count: list.length }), "ok");
    else issuedStatus(t("counter.issued.waiting"));
  }

  async function refreshIssued() {
    const check = issued.check;
    if (!check) return [];
    const list = await call("GET", "/issuer/checks/" + encodeURIComponent(check) + "/credentials");
    if (issued.check === check) renderIssued(list);
    return list;
  }

  function watchIssued(check, expiresAt) {
    stopWatching();
    const until = typeof expiresAt === "number" ? expiresAt * 1000 : Date.parse(expiresAt);
    issued.check = check;
    issued.until = Number.isFinite(until) ? until : Date.now() + 10 * 60 * 1000;
    const generation = issued.generation;
    $("#issued-list").replaceChildren();
    issuedStatus(t("counter.issued.waiting"));
    const tick = async () => {
      let list = [];
      try {
        list = await refreshIssued();
      } catch (error) {
        if (generation === issued.generation) issuedStatus(problemText(error), "bad");
      }
      if (generation !== issued.generation) return;
      if (list.length || Date.now() > issued.until) return; // found, or the offer expired: "Refresh" remains
      issued.timer = setTimeout(tick, POLL_MS);
    };
    issued.timer = setTimeout(tick, POLL_MS);
  }

  $("#issued-refresh").addEventListener("click", async (event) => {
    try {
      await busy(event.currentTarget, refreshIssued);
    } catch (error) {
      issuedStatus(problemText(error), "bad");
    }
  });

  // -- credential status ---------------------------------------------------------------------------------
  const ACTIONS = { active: ["suspend", "revoke"], suspended: ["reinstate", "revoke"], revoked: [] };

  function showState(state) {
    credentialId = state.credential_id;
    const rows = [
      ["field.credential_id", state.credential_id],
      ["field.credential_type", t("type." + state.credential_type)],
      ["field.format", t("value." + state.format)],
      ["field.status", t("status." + state.status)],
      ["field.issued_at", IMI.time(state.issued_at)],
      ["field.valid_until", IMI.time(state.valid_until)],
    ];
    $("#state-list").replaceChildren(...rows.flatMap(([key, value]) => [el("dt", { text: t(key) }), el("dd", { text: value })]));
    $("#state-list").dataset.status = state.status;
    const allowed = ACTIONS[state.status] || [];
    for (const button of $$("#state .actions button")) show(button, allowed.includes(button.dataset.action));
    show($("#state"), true);
  }

  async function lookup(id, button) {
    const status = $("#manage-status");
    say(status, "");
    show($("#state"), false);
    try {
      showState(await busy(button, () => call("GET", "/issuer/credentials/" + encodeURIComponent(id))));
      return true;
    } catch (error) {
      say(status, problemText(error), "bad");
      return false;
    }
  }

  $("#search-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    await lookup($("#credential-id").value.trim(), event.submitter || $("#search-form button"));
  });

  for (const button of $$("#state .actions button")) {
    button.addEventListener("click", async () => {
      const action = button.dataset.action;
      const status = $("#manage-status");
      if (action === "revoke" && !window.confirm(t("counter.manage.confirm-revoke"))) return;
      try {
        const body = { action, reason: $("#reason").value.trim() };
        const state = await busy(button, () =>
          call("POST", "/issuer/credentials/" + encodeURIComponent(credentialId) + "/status", body));
        showState(state);
        say(status, t("counter.manage.done-" + action), "ok");
        refreshIssued().catch(() => {}); // the issued list shows the new status too
      } catch (error) {
        say(status, problemText(error), "bad");
      }
    });
  }

  // -- verify a citizen's QR -----------------------------------------------------------------------------
  async function verify(text) {
    const box = $("#verify-result");
    show(box, false);
    delete box.dataset.kind;
    IMIOutcome.render(box, await IMIOutcome.scan(text, "counter"));
  }

  $("#verify-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    await busy(event.submitter, () => verify($("#verify-text").value));
  });

  function stopCamera() {
    if (scanner) scanner.stop();
    scanner = null;
    show($("#verify-scanner"), false);
  }

  $("#verify-camera").addEventListener("click", async () => {
    say($("#verify-status"), "");
    show($("#verify-scanner"), true);
    scanner = new IMI.QrScanner($("#verify-video"), (text) => {
      stopCamera();
      $("#verify-text").value = text;
      verify(text);
    });
    try {
      await scanner.start();
    } catch (error) {
      stopCamera();
      say($("#verify-status"), IMI.cameraProblem(error), "bad");
    }
  });
  $("#verify-camera-stop").addEventListener("click", stopCamera);

  // Still signed in (the staff cookie of an earlier sign-in in this browser)? Then straight to the desk.
  api("GET", "/counter/me").then(enter, () => {});
})();
