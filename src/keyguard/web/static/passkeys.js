// Passkey ceremonies for <form data-passkey="register|sign-in" data-options="URL">.
// On submit: POST the form (with its CSRF token) to data-options for a challenge, hand it
// to the browser's WebAuthn API, put the answer in the hidden "credential" field and
// submit the form for real, so the server answers with an ordinary page.
"use strict";
(() => {
  const decode = (text) => {
    const base64 = text.replace(/-/g, "+").replace(/_/g, "/");
    const padded = base64 + "===".slice((base64.length + 3) % 4);
    return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0)).buffer;
  };
  const encode = (buffer) =>
    btoa(String.fromCharCode(...new Uint8Array(buffer)))
      .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  const withIds = (list) => (list || []).map((c) => ({ ...c, id: decode(c.id) }));

  // The JSON helpers of WebAuthn Level 3 where the browser has them; by hand where not.
  const creationOptions = (json) =>
    PublicKeyCredential.parseCreationOptionsFromJSON
      ? PublicKeyCredential.parseCreationOptionsFromJSON(json)
      : { ...json, challenge: decode(json.challenge), user: { ...json.user, id: decode(json.user.id) },
          excludeCredentials: withIds(json.excludeCredentials) };
  const requestOptions = (json) =>
    PublicKeyCredential.parseRequestOptionsFromJSON
      ? PublicKeyCredential.parseRequestOptionsFromJSON(json)
      : { ...json, challenge: decode(json.challenge), allowCredentials: withIds(json.allowCredentials) };
  const asJSON = (credential) => {
    if (typeof credential.toJSON === "function") return credential.toJSON();
    const r = credential.response;
    const response = { clientDataJSON: encode(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = encode(r.attestationObject);
      response.transports = r.getTransports ? r.getTransports() : [];
    } else {
      response.authenticatorData = encode(r.authenticatorData);
      response.signature = encode(r.signature);
      response.userHandle = r.userHandle ? encode(r.userHandle) : null;
    }
    return { id: credential.id, rawId: encode(credential.rawId), type: credential.type, response,
      authenticatorAttachment: credential.authenticatorAttachment,
      clientExtensionResults: credential.getClientExtensionResults() };
  };

  document.addEventListener("submit", async (event) => {
    const form = event.target.closest("form[data-passkey]");
    if (!form) return;
    event.preventDefault();
    const error = form.querySelector("[data-passkey-error]");
    const show = (text) => { error.textContent = text; error.hidden = false; };
    error.hidden = true;
    if (!window.PublicKeyCredential) return show(form.dataset.unsupported);
    const fields = new FormData(form);
    fields.delete("credential");
    let reply;
    let options;
    try {
      reply = await fetch(form.dataset.options, {
        method: "POST", body: new URLSearchParams(fields), credentials: "same-origin",
      });
      options = await reply.json();
    } catch (_) {
      return show(form.dataset.failed);
    }
    if (!reply.ok) {
      if (options.redirect) return location.assign(options.redirect);
      return show(options.message || form.dataset.failed);
    }
    let credential;
    try {
      credential = form.dataset.passkey === "register"
        ? await navigator.credentials.create({ publicKey: creationOptions(options) })
        : await navigator.credentials.get({ publicKey: requestOptions(options) });
    } catch (_) {
      return show(form.dataset.cancelled);
    }
    form.elements.credential.value = JSON.stringify(asJSON(credential));
    form.submit();
  });
})();
