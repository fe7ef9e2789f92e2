// IMI pages: shared helpers (messages, JSON API calls with RFC 9457 problems, DOM, camera QR scanning).
// Plain ES2020, no build step. Every visible string comes from the message table embedded in the page.
"use strict";

const IMI = (() => {
  const table = JSON.parse(document.getElementById("imi-i18n").textContent);
  const lang = document.documentElement.lang;
  const PROBLEM = "urn:imi:problem:";

  function t(key, values) {
    let text = Object.prototype.hasOwnProperty.call(table, key) ? table[key] : key;
    for (const [name, value] of Object.entries(values || {})) text = text.split("{" + name + "}").join(String(value));
    return text;
  }
  const has = (key) => Object.prototype.hasOwnProperty.call(table, key);

  class ApiError extends Error {
    constructor(status, slug, body) {
      super(slug);
      this.status = status;
      this.slug = slug;
      this.body = body || {};
    }
  }

  async function api(method, url, options = {}) {
    const headers = { Accept: "application/json" };
    let body;
    if (options.json !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(options.json);
    }
    if (options.token) headers.Authorization = "Bearer " + options.token;
    const response = await fetch(url, { method, headers, body, credentials: "same-origin", signal: options.signal });
    if (response.status === 204) return null;
    const type = response.headers.get("content-type") || "";
    const data = type.includes("json") ? await response.json() : await response.text();
    if (!response.ok) {
      const slug = data && typeof data.type === "string" ? data.type.replace(PROBLEM, "") : "http-" + response.status;
      throw new ApiError(response.status, slug, data);
    }
    return data;
  }

  // A sentence for any failure: a known problem type, a refused passkey, the network, or a generic one.
  function problemText(error) {
    if (error instanceof ApiError) {
      if (has("problem." + error.slug)) return t("problem." + error.slug);
      if (error.slug === "request-invalid") {
        const fields = (error.body.errors || []).map((e) => fieldLabel(e.loc[e.loc.length - 1])).join(", ");
        return t("problem.request-invalid-fields", { fields });
      }
      return t("problem.generic", { code: error.slug });
    }
    if (error && (error.name === "NotAllowedError" || error.name === "AbortError")) return t("passkey.not-allowed");
    if (error && error.name === "InvalidStateError") return t("passkey.exists");
    if (error && error.name === "NotReadableError") return t("camera.unavailable");
    if (error instanceof TypeError) return t("problem.network");
    return t("problem.generic", { code: (error && error.name) || "error" });
  }

  function cameraProblem(error) {
    if (error && error.name === "NotAllowedError") return t("camera.denied");
    if (error && (error.name === "NotFoundError" || error.name === "OverconstrainedError")) return t("camera.missing");
    return t("camera.unavailable");
  }

  // A verifier or party as a person can read it: did:web:host%3Aport:path -> host:port/path.
  function party(id) {
    const text = String(id || "");
    if (!text.startsWith("did:web:")) return text;
    return text.slice(8).split(":").map(decodeURIComponent).join("/");
  }

  const fieldLabel = (name) => (has("field." + name) ? t("field." + name) : String(name));
  const claimLabel = (name) => (has("claim." + name) ? t("claim." + name) : name);

  function claimValue(name, value) {
    if (typeof value === "string" && has("value." + value)) return t("value." + value);
    if (value !== null && typeof value === "object") return JSON.stringify(value);
    return String(value);
  }

  function time(value) {
    const date = typeof value === "number" ? new Date(value * 1000) : new Date(value);
    return date.toLocaleString(lang, { dateStyle: "medium", timeStyle: "short" });
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === false || value === null || value === undefined) continue;
      if (name === "text") node.textContent = value;
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? "" : value);
    }
    for (const child of children) if (child !== null && child !== undefined) node.append(child);
    return node;
  }

  const $ = (selector, root) => (root || document).querySelector(selector);
  const $$ = (selector, root) => Array.from((root || document).querySelectorAll(selector));
  const show = (node, on) => { node.hidden = !on; };

  function say(node, text, kind) {
    node.textContent = text;
    node.dataset.kind = kind || "info";
  }

  // A list of claims as <dl>: label and value, in the page's language.
  function claimList(claims, className) {
    const list = el("dl", { class: className || "claims" });
    for (const [name, value] of Object.entries(claims || {})) {
      list.append(el("dt", { text: claimLabel(name) }), el("dd", { text: claimValue(name, value) }));
    }
    return list;
  }

  // Busy state for a button while its request runs (prevents double submits, tells screen readers).
  async function busy(button, work) {
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
    try {
      return await work();
    } finally {
      button.disabled = false;
      button.removeAttribute("aria-busy");
    }
  }

  // Camera QR scanning with jsQR: frames are drawn to a canvas a few times a second until a code is found.
  class QrScanner {
    constructor(video, onText) {
      this.video = video;
      this.onText = onText;
      this.stream = null;
      this.timer = null;
      this.canvas = document.createElement("canvas");
    }

    async start() {
      if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) throw new TypeError("camera");
      this.stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false });
      this.video.srcObject = this.stream;
      this.video.setAttribute("playsinline", "");
      this.video.muted = true;
      await this.video.play();
      this.tick();
    }

    tick() {
      const { video, canvas } = this;
      if (!this.stream) return;
      if (video.videoWidth > 0) {
        const scale = Math.min(1, 1280 / Math.max(video.videoWidth, video.videoHeight));
        canvas.width = Math.round(video.videoWidth * scale);
        canvas.height = Math.round(video.videoHeight * scale);
        const context = canvas.getContext("2d", { willReadFrequently: true });
        context.drawImage(video, 0, 0, canvas.width, canvas.height);
        const image = context.getImageData(0, 0, canvas.width, canvas.height);
        const code = window.jsQR(image.data, image.width, image.height, { inversionAttempts: "attemptBoth" });
        if (code && code.data) {
          this.stop();
          this.onText(code.data);
          return;
        }
      }
      this.timer = setTimeout(() => this.tick(), 150);
    }

    stop() {
      clearTimeout(this.timer);
      if (this.stream) this.stream.getTracks().forEach((track) => track.stop());
      this.stream = null;
      this.video.srcObject = null;
    }
  }

  return { t, has, lang, api, ApiError, problemText, cameraProblem, party, claimLabel, claimValue, claimList, time, el, $, $$, show, say, busy, QrScanner };
})();
