// A real OpenID provider on loopback for madoguchi's single sign-on tests (tests/web/test_oidc.py starts it).
// Every account id typed at its development login page is a user; a few have no matching student.
import Provider from "oidc-provider";

const port = Number(process.env.PORT);
const issuer = `http://127.0.0.1:${port}`;
const provider = new Provider(issuer, {
  clients: [{
    client_id: process.env.CLIENT_ID,
    client_secret: process.env.CLIENT_SECRET,
    redirect_uris: [process.env.REDIRECT_URI],
    response_types: ["code"],
    grant_types: ["authorization_code"],
  }],
  pkce: { required: () => true },
  claims: { openid: ["sub"], email: ["email", "email_verified"], student: ["student_number"] },
  scopes: ["openid", "email", "student"],
  findAccount: async (ctx, id) => ({
    accountId: id,
    claims: async () => ({
      sub: `u-${id}`, email: `${id.toLowerCase()}@students.example.ac.jp`, email_verified: true,
      student_number: id,
    }),
  }),
  features: { devInteractions: { enabled: true } },
  ttl: { AuthorizationCode: Number(process.env.CODE_TTL || 60) },
});
provider.proxy = false;
provider.listen(port, "127.0.0.1", () => console.log(`oidc-provider listening on ${issuer}`));
