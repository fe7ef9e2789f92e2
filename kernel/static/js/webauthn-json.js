// WebAuthn Level 3 JSON forms (PublicKeyCredentialCreationOptionsJSON, ...RequestOptionsJSON, and the
// RegistrationResponseJSON / AuthenticationResponseJSON that the server parses), converted by hand from
// base64url strings to ArrayBuffers and back, so it works in browsers without parseCreationOptionsFromJSON.
"use strict";

const IMIWebAuthn = (() => {
  function fromB64url(text) {
    const base64 = text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4);
    const binary = atob(base64);
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes.buffer;
  }

  function toB64url(buffer) {
    const bytes = new Uint8Array(buffer);
    let binary = "";
    for (let i = 0; i < bytes.length; i++) binary += String.fromCharCode(bytes[i]);
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  const descriptors = (list) => (list || []).map((d) => ({ ...d, id: fromB64url(d.id) }));

  function creationOptions(json) {
    return {
      ...json,
      challenge: fromB64url(json.challenge),
      user: { ...json.user, id: fromB64url(json.user.id) },
      excludeCredentials: descriptors(json.excludeCredentials),
    };
  }

  function requestOptions(json) {
    return { ...json, challenge: fromB64url(json.challenge), allowCredentials: descriptors(json.allowCredentials) };
  }

  function base(credential) {
    return {
      id: credential.id,
      rawId: toB64url(credential.rawId),
      type: credential.type,
      authenticatorAttachment: credential.authenticatorAttachment || undefined,
      clientExtensionResults: credential.getClientExtensionResults ? credential.getClientExtensionResults() : {},
    };
  }

  function registrationJSON(credential) {
    const r = credential.response;
    return {
      ...base(credential),
      response: {
        clientDataJSON: toB64url(r.clientDataJSON),
        attestationObject: toB64url(r.attestationObject),
        transports: r.getTransports ? r.getTransports() : [],
      },
    };
  }

  function authenticationJSON(credential) {
    const r = credential.response;
    return {
      ...base(credential),
      response: {
        clientDataJSON: toB64url(r.clientDataJSON),
        authenticatorData: toB64url(r.authenticatorData),
        signature: toB64url(r.signature),
        userHandle: r.userHandle ? toB64url(r.userHandle) : undefined,
      },
    };
  }

  const supported = () => typeof window.PublicKeyCredential === "function" && !!navigator.credentials;

  async function create(optionsJSON) {
    const credential = await navigator.credentials.create({ publicKey: creationOptions(optionsJSON) });
    return registrationJSON(credential);
  }

  async function get(optionsJSON) {
    const credential = await navigator.credentials.get({ publicKey: requestOptions(optionsJSON) });
    return authenticationJSON(credential);
  }

  return { create, get, supported };
})();
