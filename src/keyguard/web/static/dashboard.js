// IP Allowlist validated as typed: each line must be an IPv4 or IPv6 address or CIDR
// range. The server checks again on Save (this only saves a round trip); the message
// comes from the page (data-message, from the catalog), so it is in the page's language.
"use strict";

function validIPv4(text) {
  const parts = text.split(".");
  return parts.length === 4 && parts.every((p) => /^(0|[1-9][0-9]{0,2})$/.test(p) && Number(p) < 256);
}

function validIPv6(text) {
  if (!/^[0-9a-fA-F:.]+$/.test(text) || !text.includes(":")) return false;
  try {
    new URL(`http://[${text}]/`);  // the browser's own IPv6 parser
    return true;
  } catch (_) {
    return false;
  }
}

function validEntry(line) {
  const [address, prefix, extra] = line.split("/");
  if (extra !== undefined) return false;
  const v4 = validIPv4(address);
  if (!v4 && !validIPv6(address)) return false;
  if (prefix === undefined) return true;
  if (!/^(0|[1-9][0-9]{0,2})$/.test(prefix)) return false;
  return Number(prefix) <= (v4 ? 32 : 128);
}

function check(field) {
  const live = document.getElementById(field.dataset.live);
  if (!live) return;
  const lines = field.value.split(/[\r\n,]+/);
  let problem = "";
  for (let i = 0; i < lines.length && !problem; i++) {
    const entry = lines[i].trim();
    if (entry && !validEntry(entry)) {
      problem = field.dataset.message.replace("{line}", String(i + 1)).replace("{value}", entry);
    }
  }
  live.textContent = problem;
  field.setAttribute("aria-invalid", problem ? "true" : "false");
}

document.querySelectorAll("textarea[data-validate='ip']").forEach((field) => {
  field.addEventListener("input", () => check(field));
});
