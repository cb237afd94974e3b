#!/usr/bin/env node
/*
 * `make ui`: the credential-health web view on 127.0.0.1, against the bundled Adobe emulator.
 *
 *   node tools/ui/server.js --bin target/debug/ims-action --emulator target/debug/adobe-emulator
 *        [--port N (0: any)] [--aem-cert-days N (12)] [--allowed-orgs ORGS] [--web DIR] [--verbose]
 *
 * 1. Starts the emulator with fresh demo credentials (a .env in a private temp folder), the AEM
 *    certificate expiring in --aem-cert-days days so that the warning state shows.
 * 2. Serves web-src/ as it is (plain ES modules), and `src/config.json` the way `aio app build`
 *    writes it: action URLs by `package/action`. `--web DIR` serves another folder instead, such
 *    as the bundle `aio app build` writes (dist/dx-excshell-1/web-prod).
 * 3. Maps /api/v1/web/ims-action/<action>[/path] to the action as an OpenWhisk web action would
 *    (web: 'yes', final: true): bound inputs (the demo .env, plus OPERATION) win over request
 *    params (query, and a JSON or form body); __ow_method, __ow_headers (names lower-cased) and
 *    __ow_path are added; the result's {statusCode, headers, body} (or its `error`) is the answer.
 *    Each action runs in its own Node launcher (actions/ims-action/index.js) keeping one binary
 *    warm, as each action has its own containers on Adobe I/O Runtime.
 * 4. Web activations need a seal of the bound inputs (sealed configuration): it is written with
 *    `ims-action seal` from ext.config.yaml and the demo .env, as a deployment writes it, and
 *    handed to the binaries through IMS_ACTION_SEAL. A binary without the `seal` command runs
 *    unsealed.
 * 5. Prints exactly one line on stdout, `ui: http://127.0.0.1:<port>/`; the rest goes to stderr
 *    (the emulator's URL and the demo .env path: the browser tests read them there).
 * 6. Answers only requests for itself: `Host: 127.0.0.1:<port>` or `localhost:<port>`; any other
 *    Host gets a 421, so that a web page elsewhere cannot reach it by rebinding a name of its own
 *    to 127.0.0.1. A URL that does not decode gets a 400, and no request, however malformed,
 *    stops the server: every handler's failure becomes an answer.
 * Ctrl-C (SIGINT/SIGTERM) stops the server, the binaries and the emulator, and removes the temp
 * folder. Children also exit on their own if this process dies: the emulator runs with
 * --exit-on-stdin-eof and the binaries end at the end of their stdin.
 */
'use strict'

const { spawn, spawnSync } = require('node:child_process')
const fs = require('node:fs')
const http = require('node:http')
const os = require('node:os')
const path = require('node:path')
const readline = require('node:readline')

const ROOT = path.resolve(__dirname, '..', '..')
const PACKAGE = 'ims-action'
const ACTIONS = ['health', 'aem-quota', 'analytics-report', 'aem-get']
// Names that configure the process environment, never an input (see docs/inputs.md).
const ENV_ONLY = new Set(['IMS_ACTION_ALLOW_HOSTS'])
const MAX_BODY = 1024 * 1024
const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.png': 'image/png',
  '.svg': 'image/svg+xml'
}

function usage (message) {
  if (message) console.error(`ui: ${message}`)
  console.error('usage: node tools/ui/server.js --bin IMS_ACTION --emulator ADOBE_EMULATOR [--port N] [--aem-cert-days N] [--allowed-orgs ORGS] [--web DIR] [--verbose]')
  process.exit(2)
}

function parseArgs (argv) {
  const options = { port: 0, aemCertDays: 12, allowedOrgs: '', web: path.join(ROOT, 'web-src'), verbose: false }
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]
    const value = () => {
      if (i + 1 >= argv.length) usage(`${flag} needs a value`)
      return argv[++i]
    }
    if (flag === '--bin') options.bin = path.resolve(value())
    else if (flag === '--emulator') options.emulator = path.resolve(value())
    else if (flag === '--port') options.port = Number(value())
    else if (flag === '--aem-cert-days') options.aemCertDays = Number(value())
    else if (flag === '--allowed-orgs') options.allowedOrgs = value()
    else if (flag === '--web') options.web = path.resolve(value())
    else if (flag === '--verbose') options.verbose = true
    else usage(`unknown argument ${flag}`)
  }
  if (!options.bin || !options.emulator) usage('--bin and --emulator are required')
  if (!Number.isInteger(options.port) || options.port < 0 || options.port > 65535) usage('--port must be 0..65535')
  if (!Number.isInteger(options.aemCertDays)) usage('--aem-cert-days must be a whole number')
  for (const file of [options.bin, options.emulator]) {
    if (!fs.existsSync(file)) usage(`${file} does not exist (make ui builds it)`)
  }
  return options
}

/** KEY=VALUE lines (the demo .env has no quoting; quotes around a value are removed anyway). */
function parseDotenv (text) {
  const env = {}
  for (const line of text.split('\n')) {
    const m = line.match(/^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$/)
    if (!m) continue
    let value = m[2].trim()
    if (/^(['"]).*\1$/.test(value)) value = value.slice(1, -1)
    env[m[1]] = value
  }
  return env
}

/** Starts the emulator; resolves with its base URL once it listens. */
function startEmulator (options, envFile) {
  const child = spawn(options.emulator, [
    '--env-file', envFile, '--aem-cert-days', String(options.aemCertDays), '--exit-on-stdin-eof'
  ], { stdio: ['pipe', 'pipe', 'pipe'] })
  const recent = []
  readline.createInterface({ input: child.stderr }).on('line', line => {
    if (options.verbose) console.error(line)
    recent.push(line)
    if (recent.length > 20) recent.shift()
  })
  return new Promise((resolve, reject) => {
    child.once('error', reject)
    child.once('exit', code => reject(new Error(`the emulator exited (code ${code}):\n${recent.join('\n')}`)))
    readline.createInterface({ input: child.stdout }).on('line', line => {
      const m = line.match(/listening on (http:\/\/\S+)/)
      if (m) resolve({ child, url: m[1] })
    })
  })
}

/**
 * Seals the actions' bound inputs (ext.config.yaml resolved with the demo .env) for the binary;
 * returns the seal's path, or null when the binary has no `seal` command. The environment is
 * cleared, so that a variable set in the user's shell is sealed no more than it is bound here.
 */
function writeSeal (bin, envFile, out) {
  const help = spawnSync(bin, ['--help'], { encoding: 'utf8', env: { PATH: process.env.PATH } })
  if (!/ims-action seal\b/.test(help.stdout || '')) return null
  const run = spawnSync(bin, ['seal', '--config', path.join(ROOT, 'ext.config.yaml'), '--env', envFile, '--out', out], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH }
  })
  if (run.status !== 0 || !fs.existsSync(out)) {
    throw new Error(`ims-action seal failed (exit ${run.status}): ${(run.stderr || '').trim() || (run.stdout || '').trim()}`)
  }
  return out
}

/** Query string or form body → object (repeated keys: the last wins). */
function formParams (text) {
  return Object.fromEntries(new URLSearchParams(text))
}

function readBody (req) {
  return new Promise((resolve, reject) => {
    const chunks = []
    let size = 0
    req.on('data', chunk => {
      size += chunk.length
      if (size > MAX_BODY) {
        reject(Object.assign(new Error('request body too large'), { status: 413 }))
        req.destroy()
      } else chunks.push(chunk)
    })
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')))
    req.on('error', reject)
  })
}

/** Request params as an OpenWhisk web action (not raw) gets them: query and body merged. */
async function requestParams (req, url) {
  const params = formParams(url.search.slice(1))
  const text = await readBody(req)
  if (text.trim()) {
    const type = (req.headers['content-type'] || '').split(';')[0].trim().toLowerCase()
    if (type === 'application/json') {
      let body
      try {
        body = JSON.parse(text)
      } catch {
        throw Object.assign(new Error('the body is not valid JSON'), { status: 400 })
      }
      if (body && typeof body === 'object' && !Array.isArray(body)) Object.assign(params, body)
    } else if (type === 'application/x-www-form-urlencoded') {
      Object.assign(params, formParams(text))
    }
  }
  return params
}

function send (res, status, headers, body) {
  res.writeHead(status, { 'cache-control': 'no-store', ...headers })
  res.end(body)
}

function sendJson (res, status, value, headers = {}) {
  send(res, status, { 'content-type': 'application/json', ...headers }, JSON.stringify(value))
}

/** The action's result as an HTTP answer: {statusCode, headers, body}, or the same under `error`. */
function answer (res, result) {
  const shaped = result && typeof result.error === 'object' && result.error !== null ? result.error : result
  const status = Number.isInteger(shaped.statusCode) ? shaped.statusCode : (result.error ? 502 : 200)
  const headers = {}
  for (const [k, v] of Object.entries(shaped.headers || {})) headers[k.toLowerCase()] = String(v)
  const body = shaped.body
  if (body !== undefined && typeof body === 'object') {
    sendJson(res, status, body, headers)
  } else {
    send(res, status, headers, body === undefined ? '' : String(body))
  }
}

/** The Host values this server answers to: itself by address or by name, on its own port. */
function ownHosts (port) {
  return new Set([`127.0.0.1:${port}`, `localhost:${port}`])
}

/** An error answer, if the answer has not started yet; else the connection is cut. */
function fail (res, status, message) {
  if (res.headersSent || res.writableEnded) {
    res.destroy()
    return
  }
  sendJson(res, status, { error: message })
}

function serveStatic (res, web, pathname) {
  if (pathname === '/src/config.json') {
    // What `aio app build` writes into web-src/src/config.json: the URL of every action.
    // (aio writes absolute URLs; same-origin paths do here, and never echo the Host header.)
    const urls = Object.fromEntries(ACTIONS.map(a => [`${PACKAGE}/${a}`, `/api/v1/web/${PACKAGE}/${a}`]))
    return sendJson(res, 200, urls)
  }
  let relative
  try {
    relative = pathname === '/' ? 'index.html' : decodeURIComponent(pathname).replace(/^\/+/, '')
  } catch {
    return send(res, 400, { 'content-type': 'text/plain' }, 'bad URL: the path does not percent-decode')
  }
  const file = path.resolve(web, relative)
  if (!file.startsWith(web + path.sep) || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
    return send(res, 404, { 'content-type': 'text/plain' }, 'not found')
  }
  send(res, 200, {
    'content-type': TYPES[path.extname(file)] || 'application/octet-stream',
    // What the page needs and no more: its own files, and the action on the same origin.
    'content-security-policy': "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'self'"
  }, fs.readFileSync(file))
}

async function main () {
  const options = parseArgs(process.argv.slice(2))
  const { Launcher } = require(path.join(ROOT, 'actions', 'ims-action', 'index.js'))
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ims-action-ui-'))
  const envFile = path.join(tmp, '.env.demo')
  const launchers = new Map()
  let emulator = null
  let server = null

  let stopping = false
  const stop = code => {
    if (stopping) return
    stopping = true
    if (server) server.close()
    for (const launcher of launchers.values()) {
      if (launcher.child) launcher.child.kill('SIGTERM')
    }
    if (emulator) emulator.kill('SIGTERM')
    fs.rmSync(tmp, { recursive: true, force: true })
    process.exit(code)
  }
  process.on('SIGINT', () => stop(0))
  process.on('SIGTERM', () => stop(0))

  try {
    const started = await startEmulator(options, envFile)
    emulator = started.child
    emulator.on('exit', code => {
      if (!stopping) {
        console.error(`ui: the emulator exited (code ${code}); stopping`)
        stop(1)
      }
    })
    const env = parseDotenv(fs.readFileSync(envFile, 'utf8'))
    // The binary's environment, as a deployment sets it (never params).
    process.env.IMS_ACTION_ALLOW_HOSTS = env.IMS_ACTION_ALLOW_HOSTS
    if (options.allowedOrgs) process.env.ALLOWED_IMS_ORGS = options.allowedOrgs
    else delete process.env.ALLOWED_IMS_ORGS
    const sealed = writeSeal(options.bin, envFile, path.join(tmp, 'ims-action.seal.json'))
    if (sealed) process.env.IMS_ACTION_SEAL = sealed
    else {
      delete process.env.IMS_ACTION_SEAL
      console.error('ui: this ims-action has no seal command; web calls run unsealed')
    }
    const bound = Object.fromEntries(Object.entries(env).filter(([k, v]) => v !== '' && !ENV_ONLY.has(k)))
    for (const action of ACTIONS) launchers.set(action, new Launcher(options.bin))

    const handle = async (req, res) => {
      const hosts = ownHosts(server.address().port)
      if (!hosts.has(String(req.headers.host || '').toLowerCase())) {
        return send(res, 421, { 'content-type': 'text/plain' }, `this server answers only to ${[...hosts].join(' or ')}`)
      }
      let url
      try {
        url = new URL(`http://127.0.0.1${req.url.startsWith('/') ? '' : '/'}${req.url}`)
      } catch {
        return send(res, 400, { 'content-type': 'text/plain' }, 'bad URL')
      }
      const m = url.pathname.match(/^\/api\/v1\/web\/([^/]+)\/([^/]+)(\/.*)?$/)
      if (!m) {
        if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, { allow: 'GET' }, '')
        return serveStatic(res, options.web, url.pathname)
      }
      const [, pkg, action, rest] = m
      const launcher = pkg === PACKAGE && launchers.get(action)
      if (!launcher) return sendJson(res, 404, { error: 'The requested resource does not exist.' })
      try {
        const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k.toLowerCase(), v]))
        const params = {
          ...(await requestParams(req, url)),
          ...bound,
          OPERATION: action,
          __ow_method: req.method.toLowerCase(),
          __ow_headers: headers,
          __ow_path: rest || ''
        }
        const deadline = Date.now() + 60000
        answer(res, await launcher.run(params, {
          namespace: 'local',
          action_name: `/local/${PACKAGE}/${action}`,
          activation_id: Math.random().toString(16).slice(2).padEnd(32, '0'),
          deadline: String(deadline)
        }))
      } catch (err) {
        fail(res, err.status || 500, err.message)
      }
    }
    server = http.createServer((req, res) => {
      // Whatever a request does, the server lives on: a failure is answered (or the
      // connection cut), never thrown.
      handle(req, res).catch(err => {
        if (options.verbose) console.error(`ui: ${req.method} failed: ${err.stack || err}`)
        fail(res, 500, 'the ui server failed on this request')
      })
    })
    server.listen(options.port, '127.0.0.1', () => {
      console.error(`ui: emulator ${started.url}`)
      console.error(`ui: demo credentials ${envFile}`)
      console.log(`ui: http://127.0.0.1:${server.address().port}/`)
    })
    server.on('error', err => {
      console.error(`ui: cannot listen on 127.0.0.1:${options.port}: ${err.message}`)
      stop(1)
    })
  } catch (err) {
    console.error(`ui: ${err.message}`)
    stop(1)
  }
}

main()
