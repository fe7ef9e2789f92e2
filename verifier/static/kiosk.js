// The kiosk: idle (an OpenID4VP request QR, long-polling for the answer) -> outcome (green or red, the
// disclosed claims, a countdown) -> idle again with a new request. Camera mode scans a citizen's QR instead.
"use strict";

(() => {
  const { t, api, $, show, say, problemText, claimLabel } = IMI;
  const config = document.body.dataset;
  const claims = config.claims.split(",");
  const verifierId = config.verifierId;
  const resetSeconds = Number(config.reset) || 10;
  let generation = 0; // every screen change starts a new generation; stale async work sees it and stops
  let controller = null;
  let scanner = null;
  let timer = null;

  function panel(name) {
    for (const id of ["idle", "camera", "outcome"]) show($("#" + id), id === name);
    if (name !== "outcome") {
      const box = $("#outcome-box");
      box.replaceChildren(); // the last person's data leaves the screen with the outcome
      delete box.dataset.kind;
    }
  }

  function stopAll() {
    generation += 1;
    if (controller) controller.abort();
    controller = null;
    if (scanner) scanner.stop();
    scanner = null;
    clearTimeout(timer);
    clearInterval(timer);
    return generation;
  }

  const aborted = (error) => error && error.name === "AbortError";

  async function idle() {
    const gen = stopAll();
    panel("idle");
    const wait = $("#kiosk-wait");
    const qr = $("#kiosk-qr");
    qr.removeAttribute("src");
    $("#asked-claims").textContent = claims.map(claimLabel).join(t("list.separator"));
    say(wait, t("kiosk.idle.preparing"));
    controller = new AbortController();
    const signal = controller.signal;
    try {
      const request = await api("POST", "/verifier/requests", { json: { claims, verifier_id: verifierId }, signal });
      if (gen !== generation) return;
      qr.src = request.qr_png;
      qr.dataset.requestId = request.id;
      say(wait, t("kiosk.idle.waiting"));
      await poll(request.id, gen, signal);
    } catch (error) {
      if (aborted(error) || gen !== generation) return;
      say(wait, problemText(error), "bad");
      timer = setTimeout(() => gen === generation && idle(), 5000);
    }
  }

  async function poll(id, gen, signal) {
    while (gen === generation) {
      const state = await api("GET", "/verifier/requests/" + encodeURIComponent(id) + "?wait=25", { signal });
      if (gen !== generation) return;
      if (state.status === "pending") continue;
      if (state.status === "verified" || state.status === "failed") {
        outcome(state.result ? IMIOutcome.fromReport(state.result) : { verified: false, disclosed: {}, slug: "" });
      } else {
        idle(); // expired: a fresh request
      }
      return;
    }
  }

  function outcome(result) {
    stopAll();
    panel("outcome");
    IMIOutcome.render($("#outcome-box"), result);
    let left = resetSeconds;
    const line = $("#outcome-reset");
    line.textContent = t("kiosk.outcome.reset", { seconds: left });
    timer = setInterval(() => {
      left -= 1;
      line.textContent = t("kiosk.outcome.reset", { seconds: left });
      if (left <= 0) idle();
    }, 1000);
    $("#outcome-done").focus();
  }

  async function camera() {
    const gen = stopAll();
    panel("camera");
    const status = $("#camera-status");
    say(status, t("kiosk.camera.looking"));
    scanner = new IMI.QrScanner($("#kiosk-video"), async (text) => {
      say(status, t("kiosk.camera.checking"));
      const result = await IMIOutcome.scan(text, verifierId);
      if (gen === generation) outcome(result);
    });
    try {
      await scanner.start();
    } catch (error) {
      if (gen !== generation) return;
      say(status, IMI.cameraProblem(error), "bad");
      timer = setTimeout(() => gen === generation && idle(), 5000);
    }
  }

  $("#kiosk-camera").addEventListener("click", camera);
  $("#kiosk-camera-stop").addEventListener("click", idle);
  $("#outcome-done").addEventListener("click", idle);
  idle();
})();
