// A real OpenID provider for the tests (panva's oidc-provider from npm, with its development
// sign-in pages): `node oidc_provider.mjs PORT ISSUER REDIRECT_URI ACCOUNTS_JSON`.
// ACCOUNTS_JSON maps a login name to its IIN, e.g. {"aigerim": "900101300123"}; a password is
// not checked (the development pages take any). Prints "ready" once it listens on 127.0.0.1.
import Provider from "oidc-provider";

const [port, issuer, redirectUri, accountsJson] = process.argv.slice(2);
const accounts = JSON.parse(accountsJson);

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: "qala",
      client_secret: "qala-test-secret",
      redirect_uris: [redirectUri],
      response_types: ["code"],
      grant_types: ["authorization_code"],
    },
  ],
  claims: { openid: ["sub"], iin: ["iin"] },
  scopes: ["openid", "iin"],
  features: { devInteractions: { enabled: true } },
  findAccount: async (_ctx, sub) =>
    accounts[sub] === undefined
      ? undefined
      : { accountId: sub, claims: async () => ({ sub, iin: accounts[sub] }) },
  cookies: { keys: ["qala-test-cookie-key"] },
});

provider.on("server_error", (_ctx, error) => console.error("server_error", error));

provider.listen(Number(port), "127.0.0.1", () => console.log("ready"));
