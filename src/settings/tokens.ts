import { settingGroup } from './setting.js'

// The settings that sign tokens as well as check them: `npm run token` and
// the isolation check sign development tokens with the same secret, claims,
// issuer and audience.
const SIGNERS = ['API', 'token', 'isolation'] as const

export const tokens = settingGroup({
  title: 'Tokens (JWT)',
  about: 'One source of keys: JWT_SECRET, JWT_PUBLIC_KEY, or a key set (JWT_JWKS_URL or AUTH0_DOMAIN).',
  settings: [
    {
      name: 'JWT_SECRET',
      kind: 'text',
      default: null,
      minLength: 32,
      defaultText: 'a public development secret, when no other key is set; none in production',
      meaning: 'HS256 shared secret',
      note: 'HS256 shared secret. Without JWT_SECRET, JWT_PUBLIC_KEY, JWT_JWKS_URL or AUTH0_DOMAIN, development uses a fixed, public development secret.',
      example: 'change-me-to-a-long-random-string-of-32-or-more-chars',
      readBy: SIGNERS
    },
    {
      name: 'JWT_PUBLIC_KEY',
      kind: 'text',
      default: null,
      format: 'a PEM public key; `\\n` escapes allowed on one line',
      meaning: 'RS256 public key, instead of the secret',
      note: 'RS256 public key in PEM instead of a secret (\\n escapes allowed on one line).',
      example: '"-----BEGIN PUBLIC KEY-----\\n...\\n-----END PUBLIC KEY-----"',
      readBy: SIGNERS
    },
    {
      name: 'JWT_JWKS_URL',
      kind: 'jwksUrl',
      default: null,
      format: '`https://` URL (`http://` on localhost, 127.0.0.0/8 and [::1]); no user or password',
      meaning: "a key set (JWKS) instead, as Auth0 and other identity providers publish; the token's kid picks the key",
      note: "Keys from a JSON Web Key Set instead (Auth0 and other identity providers), picked by the token's kid. " +
        'https only; http is allowed for localhost, 127.0.0.0/8 and [::1]. Not together with JWT_SECRET or JWT_PUBLIC_KEY.',
      example: 'https://school-lunch.eu.auth0.com/.well-known/jwks.json',
      readBy: ['API']
    },
    {
      name: 'AUTH0_DOMAIN',
      kind: 'auth0Domain',
      default: null,
      format: 'a domain name, such as `tenant.eu.auth0.com`',
      meaning: 'shorthand for Auth0: `JWT_JWKS_URL=https://<domain>/.well-known/jwks.json`, `JWT_ISSUER=https://<domain>/`',
      note: 'Shorthand for Auth0: sets JWT_JWKS_URL to https://<domain>/.well-known/jwks.json and JWT_ISSUER to https://<domain>/ (with the trailing slash Auth0 writes).',
      example: 'school-lunch.eu.auth0.com',
      readBy: ['API']
    },
    {
      name: 'JWT_JWKS_ALGORITHMS',
      kind: 'list',
      default: ['RS256'],
      values: ['RS256', 'ES256'],
      meaning: 'algorithms a key of the set may sign with; only with a key set',
      example: 'RS256',
      readBy: ['API']
    },
    {
      name: 'JWT_JWKS_COOLDOWN_MS',
      kind: 'integer',
      default: 30_000,
      min: 1_000,
      max: 3_600_000,
      meaning: 'at most one fetch of the key set starts per this many milliseconds, whatever the traffic',
      note: 'At most one fetch of the key set starts per this many ms, whatever the traffic (an unknown kid, an expired cache, a failed fetch).',
      readBy: ['API']
    },
    {
      name: 'JWT_JWKS_CACHE_MAX_AGE_MS',
      kind: 'integer',
      default: 600_000,
      min: 1_000,
      max: 86_400_000,
      meaning: 'the key set is fetched again once this old; a key removed from it is refused from then on',
      note: 'The fetched set is refreshed once it is this old (ms): a key removed from the set is refused at the latest this long after its removal.',
      readBy: ['API']
    },
    {
      name: 'JWT_JWKS_TIMEOUT_MS',
      kind: 'integer',
      default: 2_000,
      min: 100,
      max: 60_000,
      meaning: 'a fetch of the key set fails after this long',
      note: 'A fetch that has not finished by then fails (ms); tokens that need a key the service does not have then get 503 AUTH_KEYS_UNAVAILABLE.',
      readBy: ['API']
    },
    {
      name: 'JWT_ISSUER',
      kind: 'text',
      default: null,
      meaning: 'the issuer (iss) tokens must carry, checked when set',
      example: 'https://auth.example.com/',
      readBy: SIGNERS
    },
    {
      name: 'JWT_AUDIENCE',
      kind: 'text',
      default: null,
      meaning: 'the audience (aud) tokens must carry, checked when set; required with a key set',
      example: 'school-lunch-api',
      readBy: SIGNERS
    },
    { name: 'AUTH0_AUDIENCE', kind: 'text', default: null, meaning: 'another name for JWT_AUDIENCE', example: 'school-lunch-api', readBy: SIGNERS },
    {
      name: 'JWT_SCHOOL_CLAIM',
      kind: 'text',
      default: 'school',
      meaning: 'the claim holding the school slug; namespaced names work',
      readBy: SIGNERS
    },
    {
      name: 'JWT_SCHOOLS_CLAIM',
      kind: 'text',
      default: 'schools',
      meaning: 'the claim listing the slugs a user may switch between with X-School',
      readBy: SIGNERS
    }
  ]
})
