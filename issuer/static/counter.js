// The counter page: officer sign-in (bearer token kept in sessionStorage), in-person check, credential offer
// QR + PIN, credential status, and verification of a citizen's QR (paste or camera).
"use strict";

(() => {
  const { t, api, $, $$, el, show, say, busy, problemText } = IMI;
  const TOKEN_KEY = "imi_officer_token";
  const COUNTER_KEY = "imi_counter_id";
  let token = sessionStorage.getItem(TOKEN_KEY);
  let checkId = null;
  let credentialId = null;
  let scanner = null;

  const call = (method, url, json) => api(method, url, { json, token });

  // -- sign-in -----------------------------------------------------------------------------------------------
  async function signIn(candidate) {
    const me = await api("GET", "/counter/me", { token: candidate });
    token = candidate;
    sessionStorage.setItem(TOKEN_KEY, token);
    $("#officer-name").textContent = t("counter.signed-in-as", { name: me.name });
    show($("#signin"), false);
    show($("#desk"), true);
    $("#counter").value = localStorage.getItem(COUNTER_KEY) || "";
    $("#name").focus();
  }

  $("#signin-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const status = $("#signin-status");
    say(status, "");
    try {
      await busy(event.submitter || $("#signin-form button"), () => signIn($("#token").value.trim()));
      $("#token").value = "";
    } catch (error) {
      say(status, problemText(error), "bad");
    }
  });

  $("#signout").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    window.location.reload();
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
    say($("#check-status"), "");
    say($("#offer-status"), "");
    $("#name").focus();
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

  $("#search-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const status = $("#manage-status");
    say(status, "");
    show($("#state"), false);
    try {
      const id = $("#credential-id").value.trim();
      showState(await busy(event.submitter, () => call("GET", "/issuer/credentials/" + encodeURIComponent(id))));
    } catch (error) {
      say(status, problemText(error), "bad");
    }
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

  if (token) signIn(token).catch(() => sessionStorage.removeItem(TOKEN_KEY));
})();
