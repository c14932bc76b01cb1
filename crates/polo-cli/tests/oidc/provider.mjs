// A real OpenID provider for polo's OIDC login test (crates/polo-cli/tests/web_e2e.rs):
// oidc-provider with its development login and consent pages, one confidential client, and
// the accounts of OIDC_ACCOUNTS (JSON: login -> claims). Any password signs in as the login.
//
//   OIDC_PORT, OIDC_CLIENT_ID, OIDC_CLIENT_SECRET, OIDC_REDIRECT_URI, OIDC_ACCOUNTS
//
// Prints "oidc provider ready" when it listens.

import Provider from "oidc-provider";

const port = Number(process.env.OIDC_PORT);
const issuer = `http://127.0.0.1:${port}`;
const accounts = JSON.parse(process.env.OIDC_ACCOUNTS);

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: process.env.OIDC_CLIENT_ID,
      client_secret: process.env.OIDC_CLIENT_SECRET,
      redirect_uris: [process.env.OIDC_REDIRECT_URI],
      grant_types: ["authorization_code"],
      response_types: ["code"],
      token_endpoint_auth_method: "client_secret_basic",
    },
  ],
  claims: {
    openid: ["sub"],
    email: ["email", "email_verified"],
    profile: ["preferred_username", "name"],
    groups: ["groups"],
  },
  pkce: { required: () => true },
  features: { devInteractions: { enabled: true } },
  cookies: { keys: ["polo-oidc-test-only"] },
  async findAccount(ctx, id) {
    const claims = accounts[id];
    if (!claims) return undefined;
    return { accountId: id, claims: async () => ({ sub: id, ...claims }) };
  },
});
// The development pages log a warning per request; the test only needs errors.
provider.on("server_error", (ctx, error) => console.error("provider error:", error));
provider.listen(port, "127.0.0.1", () => console.log("oidc provider ready"));
