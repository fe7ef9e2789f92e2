// A verification outcome as a person reads it: green "verified" with the disclosed claims, or red with the
// reason in plain words. Used by the counter (scan a citizen's QR) and the kiosk (both of its modes).
"use strict";

const IMIOutcome = (() => {
  const { t, has, el, api, ApiError } = IMI;

  // One shape for both sources: {verified, disclosed, slug}.
  function fromReport(report) {
    const slug = report.problem ? String(report.problem.type || "").replace("urn:imi:problem:", "") : "";
    return { verified: !!report.verified, disclosed: report.disclosed || {}, slug };
  }

  function fromError(error) {
    if (error instanceof ApiError) return { verified: false, disclosed: {}, slug: error.slug };
    return { verified: false, disclosed: {}, slug: "network" };
  }

  function reason(slug) {
    if (slug === "network") return t("problem.network");
    return has("problem." + slug) ? t("problem." + slug) : t("outcome.reason-generic");
  }

  // Render into `box` (a live region); only the disclosed claims, nothing more.
  function render(box, outcome) {
    box.replaceChildren();
    box.dataset.kind = outcome.verified ? "ok" : "bad";
    box.append(el("p", { class: "verdict", text: outcome.verified ? t("outcome.verified") : t("outcome.refused") }));
    if (outcome.verified) box.append(IMI.claimList(outcome.disclosed, "claims big"));
    else box.append(el("p", { class: "reason", text: reason(outcome.slug) }));
    IMI.show(box, true);
  }

  async function scan(text, verifierId) {
    try {
      return fromReport(await api("POST", "/verifier/scan", { json: { qr: text.trim(), verifier_id: verifierId } }));
    } catch (error) {
      return fromError(error);
    }
  }

  return { render, scan, fromReport, fromError };
})();
