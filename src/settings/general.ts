import { EVERY_COMMAND, settingGroup } from './setting.js'

export const general = settingGroup({
  title: 'General',
  settings: [
    {
      name: 'NODE_ENV',
      kind: 'choice',
      values: ['development', 'test', 'production'],
      default: 'development',
      meaning: 'production requires a token key (secret, PEM or key set) and TENANT_ROLE_SECRET; some defaults differ in production',
      note: 'production refuses to start without a token key (JWT_SECRET, JWT_PUBLIC_KEY, JWT_JWKS_URL or AUTH0_DOMAIN) and without TENANT_ROLE_SECRET.',
      readBy: EVERY_COMMAND
    },
    {
      name: 'ENV_FILE',
      kind: 'text',
      default: null,
      defaultText: '`.env` in the project root',
      format: 'a file path',
      meaning: 'another file to read settings from (environment only); `/dev/null` reads none',
      readBy: EVERY_COMMAND,
      environmentOnly: true
    }
  ]
})
