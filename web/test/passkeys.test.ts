// The passkey conversions between the server's WebAuthn JSON (base64url) and
// the browser's binary options and credentials.
import { describe, expect, it } from "vitest";
import { assertionJson, creationOptions, fromBase64url, registrationJson, requestOptions, toBase64url, type CreationOptionsJson } from "../src/passkeys";

const bytes = (...values: number[]) => new Uint8Array(values);

describe("base64url", () => {
  it("round-trips every length, with the URL alphabet and no padding", () => {
    for (let n = 0; n < 40; n++) {
      const data = new Uint8Array(n).map((_, i) => (i * 37 + 251) % 256);
      const text = toBase64url(data);
      expect(text).not.toMatch(/[+/=]/);
      expect(Array.from(fromBase64url(text))).toEqual(Array.from(data));
    }
  });
  it("matches RFC 4648's alphabet", () => {
    expect(toBase64url(bytes(0xfb, 0xff))).toBe("-_8");
    expect(Array.from(fromBase64url("-_8="))).toEqual([0xfb, 0xff]);
    expect(toBase64url(new TextEncoder().encode("cred-1"))).toBe("Y3JlZC0x");
  });
});

describe("options", () => {
  const json: CreationOptionsJson = {
    challenge: "AAEC",
    rp: { id: "polo.example", name: "polo" },
    user: { id: "AAAAAAAAAAE", name: "ann", displayName: "ann" },
    pubKeyCredParams: [{ type: "public-key", alg: -7 }],
    timeout: 120000,
    excludeCredentials: [{ type: "public-key", id: "Y3JlZC0x" }],
    authenticatorSelection: { residentKey: "required", requireResidentKey: true, userVerification: "preferred" },
    attestation: "none",
  };
  it("decodes the creation options' binary members and keeps the rest", () => {
    const options = creationOptions(json);
    expect(Array.from(options.challenge as Uint8Array)).toEqual([0, 1, 2]);
    expect(Array.from(options.user.id as Uint8Array)).toEqual([0, 0, 0, 0, 0, 0, 0, 1]);
    expect(new TextDecoder().decode(options.excludeCredentials![0].id as Uint8Array)).toBe("cred-1");
    expect(options.rp).toEqual(json.rp);
    expect(options.attestation).toBe("none");
  });
  it("asks for user verification alone and lets the second factor discourage it", () => {
    const request = { challenge: "AAEC", rpId: "polo.example", timeout: 1, userVerification: "required" as const, allowCredentials: [] };
    expect(requestOptions(request).userVerification).toBe("required");
    expect(requestOptions(request, "discouraged").userVerification).toBe("discouraged");
  });
});

describe("credentials", () => {
  it("encodes what the server reads", () => {
    const registered = {
      id: "Y3JlZC0x",
      type: "public-key",
      response: { clientDataJSON: bytes(123, 125).buffer, attestationObject: bytes(0xa0).buffer },
    } as unknown as PublicKeyCredential;
    expect(registrationJson(registered)).toEqual({ id: "Y3JlZC0x", type: "public-key", response: { clientDataJSON: "e30", attestationObject: "oA" } });
    const asserted = {
      id: "Y3JlZC0x",
      type: "public-key",
      response: { clientDataJSON: bytes(123, 125).buffer, authenticatorData: bytes(1, 2).buffer, signature: bytes(3).buffer, userHandle: null },
    } as unknown as PublicKeyCredential;
    expect(assertionJson(asserted).response).toEqual({ clientDataJSON: "e30", authenticatorData: "AQI", signature: "Aw", userHandle: null });
  });
});
