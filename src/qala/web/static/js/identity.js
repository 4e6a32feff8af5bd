// Verify who you are with an electronic signature: a challenge from Qala, signed by NCALayer
// (the NCA's signing app on this computer, a JSON protocol over a loopback WebSocket) or by any
// other program (a .cms/.p7s file), and sent back to Qala, which checks it and binds the IIN.
(function () {
  "use strict";

  var root = document.getElementById("ncalayer-verify");
  if (!root) return;
  var ncalayerUrl = root.dataset.ncalayerUrl;
  var csrf = root.dataset.csrf;
  var challengeBox = document.getElementById("challenge");
  var status = document.getElementById("verify-status");
  var ok = document.getElementById("verify-ok");
  var refused = document.getElementById("verify-refused");
  var reasonBox = document.getElementById("verify-reason");
  var missing = document.getElementById("ncalayer-missing");
  var signButton = document.getElementById("sign-ncalayer");
  var uploadButton = document.getElementById("upload-send");
  var download = document.getElementById("challenge-download");
  var challenge = null;
  var downloadUrl = null;
  var texts = {};
  document.querySelectorAll("#verify-texts [data-key]").forEach(function (item) {
    texts[item.dataset.key] = item.textContent;
  });

  var MAX_SIGNATURE_BYTES = 140000; // the API takes up to 200,000 characters of base64
  var CONNECT_TIMEOUT_MS = 8000;

  function say(key, extra) {
    hideResults();
    status.textContent = (texts[key] || texts["verify.refused.other"]) + (extra ? " " + extra : "");
  }

  function hideResults() {
    ok.hidden = true;
    refused.hidden = true;
    missing.hidden = true;
    status.textContent = "";
  }

  function refuse(key, extra) {
    hideResults();
    reasonBox.textContent = (texts[key] || texts["verify.refused.other"]) + (extra ? " " + extra : "");
    refused.hidden = false;
  }

  function busy(on) {
    signButton.disabled = on;
    uploadButton.disabled = on;
  }

  function api(url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRF-Token": csrf },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  }

  function newChallenge() {
    challenge = null;
    challengeBox.textContent = texts["verify.challenge_loading"];
    return api(root.dataset.challengeUrl).then(function (answer) {
      if (answer.status === 401) throw new Error("signed-out");
      if (!answer.ok) throw new Error("challenge");
      return answer.json();
    }).then(function (data) {
      challenge = data.challenge;
      challengeBox.textContent = challenge;
      if (downloadUrl) URL.revokeObjectURL(downloadUrl);
      downloadUrl = URL.createObjectURL(new Blob([challenge], { type: "text/plain" }));
      download.href = downloadUrl;
    }).catch(function (error) {
      challengeBox.textContent = "";
      refuse(error.message === "signed-out" ? "verify.signed_out" : "verify.challenge_failed");
    });
  }

  function base64OfBytes(bytes) {
    var binary = "";
    for (var i = 0; i < bytes.length; i += 0x8000) {
      binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    }
    return btoa(binary);
  }

  // Qala's answer: verified (the IIN masked), or the reason of the refusal in the page's language.
  function submit(signature, usedChallenge) {
    say("verify.sending");
    return api(root.dataset.signatureUrl, { challenge: usedChallenge, signature: signature })
      .then(function (answer) {
        return answer.json().catch(function () { return {}; }).then(function (data) {
          if (answer.ok) {
            hideResults();
            document.getElementById("verify-iin").textContent = data.iin_masked || "";
            ok.hidden = false;
            var already = document.getElementById("verify-already");
            if (already) already.hidden = true;
            return;
          }
          if (answer.status === 401) refuse("verify.signed_out");
          else if (data.reason && texts[data.reason.key]) refuse(data.reason.key);
          else if (answer.status === 422) refuse("verify.refused.unreadable");
          else refuse("verify.refused.other");
          if (data.reason && data.reason.key === "identity.refused.challenge_expired") newChallenge();
        });
      })
      .catch(function () { refuse("verify.refused.other"); });
  }

  // NCALayer: on connecting it says {"result": {"version": …}}; a request names a module, a
  // method and its args; the answer is {"code": "200", "responseObject": …} or
  // {"code": "500", "message": …} ("action.canceled" when the resident closes its window).
  function signWithNcalayer(text) {
    return new Promise(function (resolve, reject) {
      var socket;
      var opened = false;
      var done = false;
      function finish(error, value) {
        if (done) return;
        done = true;
        clearTimeout(timer);
        try { socket.close(); } catch (ignored) { /* already closed */ }
        if (error) reject(error); else resolve(value);
      }
      var timer = setTimeout(function () { finish({ kind: "missing" }); }, CONNECT_TIMEOUT_MS);
      try {
        socket = new WebSocket(ncalayerUrl);
      } catch (error) {
        finish({ kind: "missing" });
        return;
      }
      socket.onopen = function () {
        opened = true;
        clearTimeout(timer);
        say("verify.signing");
        socket.send(JSON.stringify({
          module: "kz.gov.pki.knca.commonUtils",
          method: "createCAdESFromBase64",
          args: ["PKCS12", "SIGNATURE", base64OfBytes(new TextEncoder().encode(text)), true],
        }));
      };
      socket.onmessage = function (event) {
        var answer;
        try { answer = JSON.parse(event.data); } catch (error) { finish({ kind: "error", detail: "" }); return; }
        if (answer.result && answer.result.version) return; // the greeting
        if (String(answer.code) === "200" && typeof answer.responseObject === "string") {
          finish(null, answer.responseObject);
        } else if (answer.message === "action.canceled") {
          finish({ kind: "canceled" });
        } else {
          finish({ kind: "error", detail: String(answer.message || answer.code || "") });
        }
      };
      socket.onerror = function () { if (!opened) finish({ kind: "missing" }); };
      socket.onclose = function () { finish(opened ? { kind: "closed" } : { kind: "missing" }); };
    });
  }

  signButton.addEventListener("click", function () {
    if (!challenge) return;
    var usedChallenge = challenge;
    busy(true);
    say("verify.connecting");
    signWithNcalayer(usedChallenge)
      .then(function (signature) { return submit(signature, usedChallenge); })
      .catch(function (error) {
        if (error.kind === "missing") {
          hideResults();
          missing.hidden = false;
          document.getElementById("upload-fallback").open = true;
        } else if (error.kind === "canceled") {
          refuse("verify.canceled");
        } else if (error.kind === "closed") {
          refuse("verify.ncalayer_closed");
        } else {
          refuse("verify.ncalayer_error", error.detail ? "(" + error.detail + ")" : "");
        }
      })
      .then(function () { busy(false); });
  });

  // A signature made elsewhere: DER (.cms, .p7s), PEM, or base64 text, of the challenge shown.
  uploadButton.addEventListener("click", function () {
    var file = document.getElementById("signature-file").files[0];
    if (!file) { refuse("verify.no_file"); return; }
    if (file.size > MAX_SIGNATURE_BYTES) { refuse("verify.file_too_big"); return; }
    if (!challenge) return;
    var usedChallenge = challenge;
    busy(true);
    file.arrayBuffer().then(function (buffer) {
      var bytes = new Uint8Array(buffer);
      var asText = new TextDecoder("ascii").decode(bytes).trim();
      var isText = /^(-----BEGIN[\s\S]*|[A-Za-z0-9+/=\s]+)$/.test(asText) && bytes[0] !== 0x30;
      return submit(isText ? asText : base64OfBytes(bytes), usedChallenge);
    }).then(function () { busy(false); });
  });

  document.getElementById("challenge-new").addEventListener("click", function () {
    hideResults();
    newChallenge();
  });

  newChallenge();
})();
