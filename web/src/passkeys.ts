// Passkeys in the browser: the server's WebAuthn options (JSON, binary
// values base64url) turned into what navigator.credentials.create/get take,
// and the credential they return turned back into JSON for the server
// (/api/v1/me/passkeys, /api/v1/session/passkey). Written out by hand rather
// than with PublicKeyCredential.parse…FromJSON/toJSON, which older browsers
// lack.

import { api } from "./api";

/** base64url (no padding) of bytes. */
export function toBase64url(bytes: ArrayBuffer | Uint8Array): string {
  const view = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  let text = "";
  for (const b of view) text += String.fromCharCode(b);
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** The bytes of base64url (padding optional). */
export function fromBase64url(text: string): Uint8Array<ArrayBuffer> {
  const base64 = text.replace(/-/g, "+").replace(/_/g, "/");
  const padded = base64 + "=".repeat((4 - (base64.length % 4)) % 4);
  const binary = atob(padded);
  const bytes = new Uint8Array(new ArrayBuffer(binary.length));
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

interface Descriptor {
  type: "public-key";
  id: string;
}

/** `POST /api/v1/me/passkeys/options`. */
export interface CreationOptionsJson {
  challenge: string;
  rp: { id: string; name: string };
  user: { id: string; name: string; displayName: string };
  pubKeyCredParams: { type: "public-key"; alg: number }[];
  timeout: number;
  excludeCredentials: Descriptor[];
  authenticatorSelection: { residentKey: ResidentKeyRequirement; requireResidentKey: boolean; userVerification: UserVerificationRequirement };
  attestation: AttestationConveyancePreference;
}

/** `POST /api/v1/session/passkey/options`. */
export interface RequestOptionsJson {
  challenge: string;
  rpId: string;
  timeout: number;
  userVerification: UserVerificationRequirement;
  allowCredentials: Descriptor[];
}

/** A passkey as `GET /api/v1/me/passkeys` lists it. */
export interface PasskeyView {
  id: string;
  name: string;
  algorithm: number | null;
  synced: boolean;
  aaguid: string;
  created: string;
  last_used: string | null;
}

const descriptor = (d: Descriptor): PublicKeyCredentialDescriptor => ({ type: d.type, id: fromBase64url(d.id) });

export function creationOptions(json: CreationOptionsJson): PublicKeyCredentialCreationOptions {
  return {
    ...json,
    challenge: fromBase64url(json.challenge),
    user: { ...json.user, id: fromBase64url(json.user.id) },
    excludeCredentials: json.excludeCredentials.map(descriptor),
  };
}

export function requestOptions(json: RequestOptionsJson, userVerification?: UserVerificationRequirement): PublicKeyCredentialRequestOptions {
  return {
    ...json,
    challenge: fromBase64url(json.challenge),
    allowCredentials: json.allowCredentials.map(descriptor),
    userVerification: userVerification ?? json.userVerification,
  };
}

/** What `POST /api/v1/me/passkeys` takes as `credential`. */
export function registrationJson(credential: PublicKeyCredential) {
  const response = credential.response as AuthenticatorAttestationResponse;
  return {
    id: credential.id,
    type: credential.type,
    response: { clientDataJSON: toBase64url(response.clientDataJSON), attestationObject: toBase64url(response.attestationObject) },
  };
}

/** What `POST /api/v1/session/passkey` and `POST /api/v1/session` take as the passkey's answer. */
export function assertionJson(credential: PublicKeyCredential) {
  const response = credential.response as AuthenticatorAssertionResponse;
  return {
    id: credential.id,
    type: credential.type,
    response: {
      clientDataJSON: toBase64url(response.clientDataJSON),
      authenticatorData: toBase64url(response.authenticatorData),
      signature: toBase64url(response.signature),
      userHandle: response.userHandle ? toBase64url(response.userHandle) : null,
    },
  };
}

/** Whether this browser can use passkeys at all. */
export const passkeysSupported = () => typeof window !== "undefined" && "PublicKeyCredential" in window && !!navigator.credentials;

/** Registers a passkey for the logged-in account, called `name`. */
export async function registerPasskey(name: string): Promise<PasskeyView> {
  const options = await api<CreationOptionsJson>("POST", "/api/v1/me/passkeys/options");
  const credential = (await navigator.credentials.create({ publicKey: creationOptions(options) })) as PublicKeyCredential | null;
  if (!credential) throw new Error("The browser made no passkey.");
  return api<PasskeyView>("POST", "/api/v1/me/passkeys", { name, credential: registrationJson(credential) });
}

/**
 * A passkey's answer to a fresh sign-in challenge. Alone it must verify the user (PIN,
 * biometrics); as the second factor after the password, presence is enough.
 */
export async function passkeyAssertion(secondFactor: boolean) {
  const options = await api<RequestOptionsJson>("POST", "/api/v1/session/passkey/options");
  const publicKey = requestOptions(options, secondFactor ? "discouraged" : undefined);
  const credential = (await navigator.credentials.get({ publicKey })) as PublicKeyCredential | null;
  if (!credential) throw new Error("No passkey was chosen.");
  return assertionJson(credential);
}
