// What the browser tests share: the `make ui` server (server.js) started as a person starts it,
// headless Chromium (Debian's /usr/bin/chromium through playwright-core; nothing is downloaded),
// and the secrets of the demo .env, to be searched for in everything the browser saw.
'use strict'

const assert = require('node:assert/strict')
const { spawn } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const readline = require('node:readline')

const ROOT = path.resolve(__dirname, '..', '..', '..')
const SERVER = path.join(ROOT, 'tools', 'ui', 'server.js')
const BIN = process.env.IMS_ACTION_BIN || path.join(ROOT, 'target', 'debug', 'ims-action')
const EMULATOR = process.env.ADOBE_EMULATOR_BIN || path.join(ROOT, 'target', 'debug', 'adobe-emulator')
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium'
const SCREENSHOTS = path.resolve(ROOT, process.env.UI_SCREENSHOTS || path.join('target', 'ui-screenshots'))

/** Every process below `pid` (from /proc), for the no-orphans check. */
function descendants (pid) {
  const parents = new Map()
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8')
      // pid (comm) state ppid …: comm may hold spaces, so split after the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      parents.set(Number(entry), ppid)
    } catch {
      // The process ended while we looked.
    }
  }
  const found = []
  const walk = parent => {
    for (const [child, ppid] of parents) {
      if (ppid === parent) {
        found.push(child)
        walk(child)
      }
    }
  }
  walk(pid)
  return found
}

function alive (pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z'
  } catch {
    return false
  }
}

/** KEY=VALUE lines of the demo .env. */
function parseDotenv (text) {
  const env = {}
  for (const line of text.split('\n')) {
    const m = line.match(/^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/)
    if (m) env[m[1]] = m[2]
  }
  return env
}

/**
 * Starts `node tools/ui/server.js` and waits for its one stdout line. Resolves with the page URL,
 * the emulator URL and the demo .env, and `stop()`, which sends SIGINT as Ctrl-C does.
 */
async function startUi (extraArgs = []) {
  const child = spawn(process.execPath, [SERVER, '--bin', BIN, '--emulator', EMULATOR, '--port', '0', ...extraArgs], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const stdout = []
  const stderr = []
  readline.createInterface({ input: child.stderr }).on('line', line => {
    stderr.push(line)
    if (process.env.UI_TEST_VERBOSE) console.error(line)
  })
  const exited = new Promise(resolve => child.once('exit', (code, signal) => resolve({ code, signal })))
  const url = await new Promise((resolve, reject) => {
    readline.createInterface({ input: child.stdout }).on('line', line => {
      stdout.push(line)
      const m = line.match(/^ui: (http:\/\/127\.0\.0\.1:\d+\/)$/)
      if (m) resolve(m[1])
    })
    exited.then(({ code }) => reject(new Error(`the ui server exited (${code}):\n${stderr.join('\n')}`)))
  })
  const emulatorUrl = stderr.map(l => l.match(/^ui: emulator (\S+)$/)).find(Boolean)[1]
  const envFile = stderr.map(l => l.match(/^ui: demo credentials (\S+)$/)).find(Boolean)[1]
  const env = parseDotenv(fs.readFileSync(envFile, 'utf8'))
  return {
    url,
    emulatorUrl,
    envFile,
    env,
    stdout,
    stderr,
    pid: child.pid,
    exited,
    /** Ctrl-C: resolves with the exit status and the processes that were below the server. */
    async stop () {
      const below = descendants(child.pid)
      child.kill('SIGINT')
      return { ...(await exited), below }
    }
  }
}

/** Makes the emulator's next `count` requests under `pathPrefix` fail (its /__faults endpoint). */
async function injectFault (emulatorUrl, fault) {
  const res = await fetch(`${emulatorUrl}/__faults`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(fault)
  })
  assert.equal(res.status, 200, await res.text())
}

/** Headless Chromium with the flags that work in this sandbox, and a fresh profile. */
async function launchBrowser () {
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ims-action-ui-chromium-'))
  // Required here, not at the top: the server's own tests (server.test.js) need no browser.
  const { chromium } = require('playwright-core')
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
    viewport: { width: 1200, height: 900 },
    timezoneId: 'UTC'
  })
  return {
    context,
    async close () {
      await context.close()
      fs.rmSync(userDataDir, { recursive: true, force: true })
    }
  }
}

/**
 * Watches a page: console errors, uncaught exceptions, and the body of every response (to search
 * for secrets), keyed by URL.
 */
function watch (page) {
  const seen = { errors: [], responses: [], requests: [] }
  page.on('console', message => {
    if (message.type() === 'error') seen.errors.push(message.text())
  })
  page.on('pageerror', err => seen.errors.push(`uncaught: ${err.message}`))
  page.on('request', request => seen.requests.push({ url: request.url(), headers: request.headers() }))
  page.on('response', async response => {
    const entry = { url: response.url(), status: response.status(), body: '' }
    seen.responses.push(entry)
    try {
      entry.body = (await response.body()).toString('utf8')
    } catch {
      // A redirect or a response the page dropped: it has no body to search.
    }
  })
  return seen
}

/** Strings that must never reach the browser: the demo .env's secrets, in their usual encodings. */
class Secrets {
  constructor () {
    this.needles = []
  }

  add (label, value) {
    if (typeof value !== 'string' || value.length < 12) return
    const b64 = Buffer.from(value).toString('base64')
    const b64url = Buffer.from(value).toString('base64url')
    for (const [form, needle] of [['raw', value], ['base64', b64], ['base64 (no padding)', b64.replace(/=+$/, '')], ['base64url', b64url]]) {
      if (!this.needles.some(n => n.needle === needle)) this.needles.push({ label: `${label} (${form})`, needle })
    }
  }

  /** Each base64 line of a PEM block (a key split over lines is never whole in a text). */
  addPem (label, pem) {
    const lines = pem.split(/\r?\n/).map(l => l.trim()).filter(l => l.length >= 16 && !l.startsWith('-----'))
    assert.ok(lines.length >= 10, `${label}: not a PEM key`)
    lines.forEach((line, i) => this.add(`${label} line ${i + 1}`, line))
  }

  /** The demo .env's secrets, and the JSON and PEM inside the base64-encoded ones. */
  static fromEnv (env) {
    const s = new Secrets()
    for (const [key, value] of Object.entries(env)) {
      if (/SECRET|PRIVATE_KEY|TOKEN|SERVICE_CREDENTIALS/.test(key)) s.add(key, value)
    }
    s.addPem('JWT_PRIVATE_KEY', Buffer.from(env.JWT_PRIVATE_KEY, 'base64').toString('utf8'))
    const aem = JSON.parse(Buffer.from(env.AEM_SERVICE_CREDENTIALS, 'base64').toString('utf8')).integration
    s.add('AEM clientSecret', aem.technicalAccount.clientSecret)
    s.addPem('AEM privateKey', aem.privateKey)
    const signature = env.AEM_DEV_TOKEN.split('.').pop()
    s.add('AEM_DEV_TOKEN signature', signature)
    return s
  }

  /** What the emulator saw: the access tokens sent to the APIs and the JWT assertions sent to IMS. */
  async addHarvest (emulatorUrl) {
    const res = await fetch(`${emulatorUrl}/__requests?path=/`)
    let tokens = 0
    for (const request of await res.json()) {
      const authorization = request.headers.authorization
      if (authorization) {
        this.add(`access token sent to ${request.path}`, authorization.replace(/^Bearer /, ''))
        tokens++
      }
      const assertion = new URLSearchParams(request.body).get('jwt_token')
      if (request.path.startsWith('/ims/') && assertion) this.add('signed JWT assertion', assertion)
    }
    return tokens
  }

  /**
   * Fails naming each secret found in `text` (never the secret itself). Besides the needles, any
   * JWT-shaped string (`eyJ….eyJ…`: header and payload in base64url) fails: IMS access tokens,
   * the developer token and signed assertions all are, and the health report holds none, so this
   * catches tokens the test never saw (those IMS issued but that were never sent anywhere).
   */
  assertAbsent (what, text) {
    const squeezed = text.replace(/\s+/g, '')
    const found = this.needles.filter(({ needle }) => text.includes(needle) || squeezed.includes(needle)).map(n => n.label)
    if (/eyJ[\w-]{8,}\.eyJ[\w-]{8,}/.test(squeezed)) found.push('a JWT-shaped token')
    assert.deepEqual(found, [], `${what} holds secrets: ${found.join(', ')}`)
  }
}

async function screenshot (page, name) {
  fs.mkdirSync(SCREENSHOTS, { recursive: true })
  await page.screenshot({ path: path.join(SCREENSHOTS, name), fullPage: true })
}

module.exports = { startUi, injectFault, launchBrowser, watch, Secrets, screenshot, alive, ROOT }
