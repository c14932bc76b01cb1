// Status codes of the exposure check (docs/exposure.md): `PX1.<payload>.<signature>`,
// both parts unpadded base64url, the payload JSON {u, s, v, t} signed with the
// instance's Ed25519 key. Verified here with WebCrypto, so the verifier page
// works offline once it has the key (kept in localStorage).

export interface Claim {
  /** The subject's user id. */
  user: number;
  status: "clear" | "exposed";
  /** Valid until (ms since the epoch). */
  validUntil: number;
  /** Issued (ms since the epoch). */
  issued: number;
}

export type Verdict = { ok: true; claim: Claim; expired: boolean } | { ok: false; reason: string };

/** localStorage key of the instance's public key (base64url). */
export const KEY_STORAGE = "polo.exposure.public-key";

export function fromBase64Url(text: string): Uint8Array | null {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) return null;
  const base64 = text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4);
  try {
    const binary = atob(base64);
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes;
  } catch {
    return null;
  }
}

/** The parts of a code, or why it is not one. */
export function parseCode(code: string): { payload: Uint8Array; signature: Uint8Array; claim: Claim } | string {
  const parts = code.trim().split(".");
  if (parts.length !== 3 || parts[0] !== "PX1") return "not a polo status code (expected PX1.<payload>.<signature>)";
  const payload = fromBase64Url(parts[1]);
  const signature = fromBase64Url(parts[2]);
  if (!payload || !signature) return "the code is damaged (not base64url)";
  let raw: { u?: unknown; s?: unknown; v?: unknown; t?: unknown };
  try {
    raw = JSON.parse(new TextDecoder().decode(payload)) as typeof raw;
  } catch {
    return "the code is damaged (its payload is not JSON)";
  }
  if (typeof raw.u !== "number" || (raw.s !== "clear" && raw.s !== "exposed") || typeof raw.v !== "number" || typeof raw.t !== "number") {
    return "the code's payload is not a status";
  }
  return { payload, signature, claim: { user: raw.u, status: raw.s, validUntil: raw.v, issued: raw.t } };
}

/** Checks `code` with the raw Ed25519 public key (base64url), at `now`. */
export async function verifyCode(code: string, publicKey: string, now: number = Date.now()): Promise<Verdict> {
  const parsed = parseCode(code);
  if (typeof parsed === "string") return { ok: false, reason: parsed };
  const raw = fromBase64Url(publicKey);
  if (!raw || raw.length !== 32) return { ok: false, reason: "the instance's public key is not a 32-byte Ed25519 key" };
  let key: CryptoKey;
  try {
    key = await crypto.subtle.importKey("raw", raw as BufferSource, { name: "Ed25519" }, false, ["verify"]);
  } catch {
    return { ok: false, reason: "this browser cannot check Ed25519 signatures (WebCrypto); use the server's check" };
  }
  const good = await crypto.subtle.verify({ name: "Ed25519" }, key, parsed.signature as BufferSource, parsed.payload as BufferSource);
  if (!good) return { ok: false, reason: "the signature does not match this instance's key" };
  return { ok: true, claim: parsed.claim, expired: parsed.claim.validUntil <= now };
}

/** The reason a decision is taken for (1 to 1000 characters, as the server takes it); `null` when it is fine. */
export function reasonProblem(text: string): string | null {
  const length = [...text.trim()].length;
  if (length === 0) return "Give a reason: it is kept in the audit log with the decision.";
  if (length > 1000) return `At most 1000 characters (${length} now).`;
  return null;
}

/**
 * What is wrong with a case's form before it is sent (the server checks the same), or `null`: a
 * user, both ends (UTC, as the inputs say), the end after the start, at most 60 days, not starting
 * in the future.
 */
export function periodProblem(user: string, from: string, to: string, now: number): string | null {
  if (!user.trim()) return "Name the user who is the case.";
  if (!from || !to) return "Give the start and the end of the infectious period.";
  const start = Date.parse(`${from}:00Z`);
  const end = Date.parse(`${to}:00Z`);
  if (Number.isNaN(start) || Number.isNaN(end)) return "The infectious period's times are not dates.";
  if (end <= start) return "The infectious period must end after it starts.";
  if (end - start > 60 * 86_400_000) return "The infectious period may be at most 60 days.";
  if (start > now) return "The infectious period cannot start in the future.";
  return null;
}
