// The offline verifier: codes signed with an Ed25519 key (made here with
// WebCrypto, as the server's ring makes them) verify with its public key only.
import { describe, expect, it } from "vitest";
import { parseCode, verifyCode } from "../src/exposure";

function b64url(bytes: Uint8Array): string {
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

async function signer() {
  const pair = (await crypto.subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"])) as CryptoKeyPair;
  const raw = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
  const sign = async (payload: object) => {
    const bytes = new TextEncoder().encode(JSON.stringify(payload));
    const signature = new Uint8Array(await crypto.subtle.sign({ name: "Ed25519" }, pair.privateKey, bytes));
    return `PX1.${b64url(bytes)}.${b64url(signature)}`;
  };
  return { publicKey: b64url(raw), sign };
}

describe("status codes", () => {
  it("verify with the instance's key, expire, and refuse other keys and forgeries", async () => {
    const a = await signer();
    const b = await signer();
    const code = await a.sign({ u: 7, s: "exposed", v: 2_000, t: 1_000 });
    expect(await verifyCode(code, a.publicKey, 1_500)).toEqual({
      ok: true,
      expired: false,
      claim: { user: 7, status: "exposed", validUntil: 2_000, issued: 1_000 },
    });
    expect(await verifyCode(code, a.publicKey, 2_000)).toMatchObject({ ok: true, expired: true });
    expect(await verifyCode(code, b.publicKey, 1_500)).toMatchObject({ ok: false, reason: expect.stringContaining("signature") });
    const [, , signature] = code.split(".");
    const forged = `PX1.${b64url(new TextEncoder().encode(JSON.stringify({ u: 7, s: "clear", v: 2_000, t: 1_000 })))}.${signature}`;
    expect(await verifyCode(forged, a.publicKey, 1_500)).toMatchObject({ ok: false });
  });

  it("explains what is wrong with things that are not codes", () => {
    expect(parseCode("hello")).toContain("not a polo status code");
    expect(parseCode("PX1.***.abc")).toContain("damaged");
    expect(parseCode(`PX1.${b64url(new TextEncoder().encode("[1]"))}.AA`)).toContain("not a status");
  });
});
