// Tests of the decisions scripts/deploy-aio.sh, scripts/deploy-wsk.sh and scripts/build-launcher.sh
// make, with node's own test runner (`make node-test` runs them):
//   node --test scripts/test/
// Each test copies the script into a scratch project and puts a fake `aio` or `wsk` first on
// PATH: a small script that records its arguments, the environment variables that matter and the
// state of the files aio would read, and answers what a given aio-cli release answers
// (FAKE_AIO_VERSION, FAKE_AIO_DEPLOY). The fakes stand in for Adobe's CLI and OpenWhisk's, which
// need accounts and the network; what they reproduce was observed with the real CLIs (see
// scripts/deploy-aio.sh).
'use strict'

const { test, after } = require('node:test')
const assert = require('node:assert/strict')
const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const ROOT = path.join(__dirname, '..', '..')
const REAL = process.env.IMS_ACTION_BIN ? path.resolve(process.env.IMS_ACTION_BIN) : null
const REAL_SKIP = !REAL || !fs.existsSync(REAL)
  ? 'IMS_ACTION_BIN does not name a built binary (e.g. IMS_ACTION_BIN=target/debug/ims-action)'
  : false

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'ims-action-deploy-test-'))
after(() => fs.rmSync(scratch, { recursive: true, force: true }))

// A fake aio: `aio --version` prints what aio-cli $FAKE_AIO_VERSION prints; `aio app deploy`
// records one JSON line per call in $FAKE_LOG and then, like aio-lib-runtime's deployWsk, writes
// dist/last-deployed-actions.json before "sending"; an action already recorded there is skipped.
// FAKE_AIO_DEPLOY: ok | fail (the API refuses) | clash (what 11.1.2 prints for every app).
const FAKE_AIO = `#!/usr/bin/env node
const fs = require('fs')
const args = process.argv.slice(2)
if (args[0] === '--version') {
  console.log('@adobe/aio-cli/' + process.env.FAKE_AIO_VERSION + ' linux-x64 node-' + process.version)
  process.exit(0)
}
const record = 'dist/last-deployed-actions.json'
const recorded = fs.existsSync(record) ? JSON.parse(fs.readFileSync(record, 'utf8')) : {}
const actions = ['ims-action/aem-quota', 'ims-action/analytics-report', 'ims-action/aem-get']
const sent = actions.filter(a => !recorded[a])
fs.appendFileSync(process.env.FAKE_LOG, JSON.stringify({ args, cwd: process.cwd(), sent,
  logLevel: process.env.LOG_LEVEL || null }) + '\\n')
if (process.env.FAKE_AIO_DEPLOY === 'clash') {
  console.error(' ›   Error: @adobe/aio-cli-plugin-events : orig.startsWith is not a function')
  process.exit(2)
}
fs.mkdirSync('dist', { recursive: true })
fs.writeFileSync(record, JSON.stringify(Object.fromEntries(actions.map(a => [a, 'hash']))))
if (process.env.FAKE_AIO_DEPLOY === 'fail') {
  console.error(' ›   Error: Unknown Error From API: 502')
  process.exit(2)
}
console.log('✔ Deployed ' + sent.length + ' action(s)')
console.log('Successful deployment')
`

// A fake wsk: records its arguments and, for --param-file, the file's JSON (the script removes it).
const FAKE_WSK = `#!/usr/bin/env node
const fs = require('fs')
const args = process.argv.slice(2)
const i = args.indexOf('--param-file')
const params = i >= 0 ? JSON.parse(fs.readFileSync(args[i + 1], 'utf8')) : null
fs.appendFileSync(process.env.FAKE_LOG, JSON.stringify({ args, params }) + '\\n')
if (args[0] === 'action' && args[1] === 'get') console.log('https://ow.example/api/v1/web/ns/' + args[2])
`

let projects = 0
/** A scratch project: the given scripts, files, and a bin/ folder with the fakes. */
function project (files = {}, scripts = []) {
  const dir = path.join(scratch, `project-${++projects}`)
  fs.mkdirSync(path.join(dir, 'scripts'), { recursive: true })
  fs.mkdirSync(path.join(dir, 'fake-bin'))
  for (const script of scripts) {
    fs.copyFileSync(path.join(ROOT, 'scripts', script), path.join(dir, 'scripts', script))
    fs.chmodSync(path.join(dir, 'scripts', script), 0o755)
  }
  fs.writeFileSync(path.join(dir, 'fake-bin', 'aio'), FAKE_AIO, { mode: 0o755 })
  fs.writeFileSync(path.join(dir, 'fake-bin', 'wsk'), FAKE_WSK, { mode: 0o755 })
  const defaults = {
    'package.json': '{"name": "ims-action", "version": "0.1.0", "private": true}\n',
    'app.config.yaml': 'application:\n  runtimeManifest:\n    packages:\n      p:\n        actions:\n          a:\n            inputs:\n              OPERATION: aem-quota\n',
    '.env': 'AIO_RUNTIME_NAMESPACE=demo-ns\nIMS_ACTION_LOG_LEVEL=debug\n'
  }
  for (const [name, content] of Object.entries({ ...defaults, ...files })) {
    if (content === null) continue
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true })
    fs.writeFileSync(path.join(dir, name), content)
  }
  return dir
}

/** Runs scripts/<script> in `dir` with the fakes first on PATH; returns status, output and the fake's calls. */
function run (dir, script, { args = [], env = {} } = {}) {
  const log = path.join(dir, 'fake.log')
  const r = spawnSync('bash', [path.join(dir, 'scripts', script), ...args], {
    cwd: dir,
    encoding: 'utf8',
    env: { ...process.env, PATH: `${path.join(dir, 'fake-bin')}:${process.env.PATH}`, FAKE_LOG: log, ...env }
  })
  const calls = fs.existsSync(log) ? fs.readFileSync(log, 'utf8').trim().split('\n').map(l => JSON.parse(l)) : []
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, calls }
}

const deploys = calls => calls.filter(c => c.args[0] === 'app' && c.args[1] === 'deploy')
const INSTALL_HINT = 'npm install -g @adobe/aio-cli@11.0.2'

// ---- deploy-aio.sh --------------------------------------------------------------------------------

test('deploy-aio: aio-cli 11.1.2 is refused before deploying, with the version to install', () => {
  const dir = project({}, ['deploy-aio.sh'])
  const r = run(dir, 'deploy-aio.sh', { env: { FAKE_AIO_VERSION: '11.1.2', FAKE_AIO_DEPLOY: 'clash' } })
  assert.equal(r.status, 1, r.stderr)
  assert.match(r.stderr, /aio-cli 11\.1\.2 cannot deploy any app/)
  assert.ok(r.stderr.includes(INSTALL_HINT), r.stderr)
  assert.deepEqual(deploys(r.calls), [], 'aio app deploy was not run')
})

test('deploy-aio: the 11.1.2 error text is recognised from any version, with the version to install', () => {
  const dir = project({}, ['deploy-aio.sh'])
  const r = run(dir, 'deploy-aio.sh', { env: { FAKE_AIO_VERSION: '11.9.0', FAKE_AIO_DEPLOY: 'clash' } })
  assert.equal(r.status, 2)
  assert.ok(r.stdout.includes('orig.startsWith is not a function'), 'aio\'s own output is shown')
  assert.match(r.stderr, /aio-cli 11\.9\.0 cannot deploy any app/)
  assert.ok(r.stderr.includes(INSTALL_HINT), r.stderr)
})

test('deploy-aio: after a failed deploy, the next one sends every action again', () => {
  const dir = project({}, ['deploy-aio.sh'])
  const failed = run(dir, 'deploy-aio.sh', { env: { FAKE_AIO_VERSION: '11.0.2', FAKE_AIO_DEPLOY: 'fail' } })
  assert.equal(failed.status, 2)
  assert.match(failed.stderr, /aio app deploy failed \(exit 2\); the next run sends every action again/)
  assert.ok(!failed.stderr.includes(INSTALL_HINT), 'not the 11.1.2 failure')
  assert.ok(!fs.existsSync(path.join(dir, 'dist', 'last-deployed-actions.json')),
    'the record of actions the failed deploy never sent is gone')
  const next = run(dir, 'deploy-aio.sh', { env: { FAKE_AIO_VERSION: '11.0.2', FAKE_AIO_DEPLOY: 'ok' } })
  assert.equal(next.status, 0, next.stderr)
  const [, second] = deploys(next.calls)
  assert.deepEqual(second.sent, ['ims-action/aem-quota', 'ims-action/analytics-report', 'ims-action/aem-get'])
})

test('deploy-aio: a record left by a deploy the script did not run (plain aio app deploy) is ignored too', () => {
  const dir = project({ 'dist/last-deployed-actions.json': JSON.stringify({ 'ims-action/aem-quota': 'hash', 'ims-action/analytics-report': 'hash', 'ims-action/aem-get': 'hash' }) }, ['deploy-aio.sh'])
  const r = run(dir, 'deploy-aio.sh', { args: ['--no-publish'], env: { FAKE_AIO_VERSION: '11.0.2', FAKE_AIO_DEPLOY: 'ok' } })
  assert.equal(r.status, 0, r.stderr)
  const [call] = deploys(r.calls)
  assert.equal(call.sent.length, 3, 'every action is sent')
  assert.deepEqual(call.args, ['app', 'deploy', '--no-publish'], 'the caller\'s flags are passed on')
  assert.equal(fs.realpathSync(call.cwd), fs.realpathSync(dir))
  assert.match(r.stdout, /Successful deployment/)
})

test('deploy-aio: a .env that sets LOG_LEVEL is refused (aio\'s own log level), IMS_ACTION_LOG_LEVEL is fine', () => {
  for (const line of ['LOG_LEVEL=debug', 'export LOG_LEVEL="info"']) {
    const dir = project({ '.env': `AIO_RUNTIME_NAMESPACE=demo-ns\n${line}\n` }, ['deploy-aio.sh'])
    const r = run(dir, 'deploy-aio.sh', { env: { FAKE_AIO_VERSION: '11.0.2', FAKE_AIO_DEPLOY: 'ok' } })
    assert.equal(r.status, 1, line)
    assert.match(r.stderr, /\.env sets LOG_LEVEL/)
    assert.match(r.stderr, /Rename it to IMS_ACTION_LOG_LEVEL/)
    assert.deepEqual(deploys(r.calls), [], `${line}: aio app deploy was not run`)
  }
  const dir = project({ '.env': 'AIO_RUNTIME_NAMESPACE=demo-ns\nLOG_LEVEL=\n# LOG_LEVEL=debug\nIMS_ACTION_LOG_LEVEL=debug\n' }, ['deploy-aio.sh'])
  const r = run(dir, 'deploy-aio.sh', { env: { FAKE_AIO_VERSION: '11.0.2', FAKE_AIO_DEPLOY: 'ok', LOG_LEVEL: 'debug' } })
  assert.equal(r.status, 0, r.stderr)
  assert.match(r.stderr, /ignoring LOG_LEVEL from your shell/)
  assert.equal(deploys(r.calls)[0].logLevel, null, 'aio runs without the shell\'s LOG_LEVEL')
})

test('deploy-aio: no aio on PATH says what to install', () => {
  const dir = project({}, ['deploy-aio.sh'])
  // A PATH with only the tools the script needs before it looks for aio.
  const tools = path.join(dir, 'tools')
  fs.mkdirSync(tools)
  for (const tool of ['cat', 'dirname']) {
    const found = spawnSync('bash', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).stdout.trim()
    fs.symlinkSync(found, path.join(tools, tool))
  }
  const r = spawnSync('/bin/bash', [path.join(dir, 'scripts', 'deploy-aio.sh')], {
    cwd: dir, encoding: 'utf8', env: { PATH: tools }
  })
  assert.equal(r.status, 1, r.stderr)
  assert.match(r.stderr, /the Adobe I\/O CLI \(aio\) is not installed/)
  assert.ok(r.stderr.includes(INSTALL_HINT), r.stderr)
})

// ---- deploy-wsk.sh --------------------------------------------------------------------------------

/** The repository's own copies of `files`, for a scratch project. */
function repoFiles (files) {
  return Object.fromEntries(files.map(f => [f, fs.readFileSync(path.join(ROOT, f), 'utf8')]))
}

/** The text of `name` inside the zip at `zip` (python3's zipfile: what the proxies unpack). */
function unzipText (zip, name) {
  const r = spawnSync('python3', ['-c', 'import sys, zipfile; sys.stdout.write(zipfile.ZipFile(sys.argv[1]).read(sys.argv[2]).decode())', zip, name], { encoding: 'utf8' })
  assert.equal(r.status, 0, r.stderr)
  return r.stdout
}

/** One activation of the binary (one-shot) under `seal` as action `name`; its result. */
function activate (bin, seal, name, params) {
  const r = spawnSync(bin, [JSON.stringify(params)], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH, IMS_ACTION_SEAL: seal, __OW_ACTION_NAME: `/guest/ims-action/${name}`, IMS_ACTION_ALLOW_HOSTS: '127.0.0.1:9' },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  return JSON.parse(r.stdout.trim().split('\n').pop())
}

test('deploy-wsk: each action gets what manifest.yaml binds, and the zips it runs are sealed with exactly that', { skip: REAL_SKIP }, () => {
  const dir = project({
    ...repoFiles(['manifest.yaml', 'app.config.yaml', 'ext.config.yaml', 'actions/ims-action/index.js']),
    '.env': 'OAUTHS2S_CLIENT_ID=abc\nOAUTHS2S_CLIENT_SECRET=p8e-wsk-route-0123456789\nOAUTHS2S_CECREDENTIALS_METASCOPES=openid\n' +
      'IMS_ORG_ID=O@AdobeOrg\nIMS_BASE_URL=http://127.0.0.1:9\nANALYTICS_COMPANY_ID=acme\nANALYTICS_RSID=rs1\n' +
      'AEM_AUTHOR_URL=http://127.0.0.1:9\nLOG_LEVEL=trace\nIMS_ACTION_LOG_LEVEL=debug\nHTTP_TIMEOUT_MS=\n'
  }, ['deploy-wsk.sh', 'package.sh'])
  fs.mkdirSync(path.join(dir, 'dist'))
  fs.copyFileSync(REAL, path.join(dir, 'dist', 'ims-action'))
  fs.chmodSync(path.join(dir, 'dist', 'ims-action'), 0o755)
  const r = run(dir, 'deploy-wsk.sh', { args: ['actionloop', 'native', 'launcher'], env: { LOG_LEVEL: '' } })
  assert.equal(r.status, 0, r.stderr)
  assert.match(r.stderr, /LOG_LEVEL in \.env is ignored: the action's level is IMS_ACTION_LOG_LEVEL/)
  const updates = r.calls.filter(c => c.args[0] === 'action' && c.args[1] === 'update')
  assert.equal(updates.length, 9)
  const seals = {
    zip: unzipText(path.join(dir, 'dist', 'ims-action.zip'), 'ims-action.seal.json'),
    launcher: unzipText(path.join(dir, 'dist', 'ims-action-launcher.zip'), 'bin/ims-action.seal.json')
  }
  assert.equal(seals.zip, seals.launcher, 'one seal for every wsk artifact')
  assert.ok(!seals.zip.includes('p8e-wsk-route'), 'the seal holds fingerprints, never values')
  const sealPath = path.join(dir, 'seal.json')
  fs.writeFileSync(sealPath, seals.zip)
  for (const call of updates) {
    const name = call.args[2].split('/').pop()
    const op = name.replace(/-(native|node)$/, '')
    assert.deepEqual(call.params, {
      OAUTHS2S_CLIENT_ID: 'abc',
      OAUTHS2S_CLIENT_SECRET: 'p8e-wsk-route-0123456789',
      OAUTHS2S_CECREDENTIALS_METASCOPES: 'openid',
      IMS_ORG_ID: 'O@AdobeOrg',
      IMS_BASE_URL: 'http://127.0.0.1:9',
      ANALYTICS_COMPANY_ID: 'acme',
      ANALYTICS_RSID: 'rs1',
      AEM_AUTHOR_URL: 'http://127.0.0.1:9',
      LOG_LEVEL: 'debug',
      OPERATION: op
    }, name)
    // Deployed params + a web caller: the seal accepts them (the call then fails at the
    // unreachable IMS, 502), and refuses a caller who adds or changes one (a web caller is not
    // told which; a non-web call, the operator's, names it).
    const web = { ...call.params, __ow_method: 'get', __ow_headers: {} }
    const ok = activate(REAL, sealPath, name, web)
    assert.equal(ok.error.statusCode, 502, `${name}: ${JSON.stringify(ok)}`)
    for (const [k, v] of [['OAUTHS2S_CLIENT_ID', 'evil'], ['ANALYTICS_BASE_URL', 'https://edge-graph.adobe.io/api/x']]) {
      const refused = activate(REAL, sealPath, name, { ...web, [k]: v })
      assert.equal(refused.error.statusCode, 400, `${name} ${k}: ${JSON.stringify(refused)}`)
      assert.match(refused.error.body.error, /differ from the deployment's sealed configuration/, JSON.stringify(refused))
      const own = activate(REAL, sealPath, name, { ...call.params, [k]: v })
      assert.equal(own.error.statusCode, 400, `${name} ${k}: ${JSON.stringify(own)}`)
      assert.ok(own.error.body.error.includes(`'${k}'`), JSON.stringify(own))
    }
  }
  const blackbox = JSON.parse(fs.readFileSync(path.join(dir, 'dist', 'blackbox', 'ims-action.seal.json'), 'utf8'))
  assert.deepEqual(Object.keys(blackbox.actions).sort(), ['aem-get', 'aem-quota', 'analytics-report', 'health'])
})

// ---- build-launcher.sh ----------------------------------------------------------------------------

test('build-launcher: LOG_LEVEL in .env or the environment gets a loud warning, and the build goes on', { skip: REAL_SKIP }, () => {
  const cases = [[{ '.env': 'LOG_LEVEL=debug\n' }, {}], [{ '.env': 'IMS_ACTION_LOG_LEVEL=debug\n' }, { LOG_LEVEL: 'debug' }]]
  for (const [files, env] of cases) {
    const dir = project(files, ['build-launcher.sh'])
    const r = run(dir, 'build-launcher.sh', { args: [REAL], env })
    assert.equal(r.status, 0, r.stderr)
    assert.match(r.stderr, /WARNING: LOG_LEVEL is set/)
    assert.match(r.stderr, /prints every input of every call IN CLEAR/)
  }
  const dir = project({ '.env': 'IMS_ACTION_LOG_LEVEL=debug\nLOG_LEVEL=\n' }, ['build-launcher.sh'])
  const r = run(dir, 'build-launcher.sh', { args: [REAL], env: { LOG_LEVEL: '' } })
  assert.equal(r.status, 0, r.stderr)
  assert.ok(!/WARNING: LOG_LEVEL/.test(r.stderr), r.stderr)
})

test('build-launcher: bin/exec in place, sealed with what .env binds; a stale seal never ships', { skip: REAL_SKIP }, () => {
  const config = 'application:\n  runtimeManifest:\n    packages:\n      p:\n        inputs:\n          OAUTHS2S_CLIENT_SECRET: $OAUTHS2S_CLIENT_SECRET\n        actions:\n          aem-quota:\n            inputs:\n              OPERATION: aem-quota\n'
  const dir = project({
    'app.config.yaml': config,
    '.env': 'OAUTHS2S_CLIENT_SECRET=p8e-seal-test-0123456789\n',
    'actions/ims-action/bin/ims-action.seal.json': '{"stale": true}'
  }, ['build-launcher.sh'])
  const r = run(dir, 'build-launcher.sh', { args: [REAL] })
  assert.equal(r.status, 0, r.stderr)
  const exec = path.join(dir, 'actions', 'ims-action', 'bin', 'exec')
  assert.equal(fs.statSync(exec).mode & 0o777, 0o755)
  assert.ok(fs.readFileSync(exec).equals(fs.readFileSync(REAL)))
  const text = fs.readFileSync(path.join(dir, 'actions', 'ims-action', 'bin', 'ims-action.seal.json'), 'utf8')
  const seal = JSON.parse(text)
  assert.deepEqual(Object.keys(seal.actions), ['aem-quota'])
  assert.deepEqual(Object.keys(seal.actions['aem-quota']).sort(), ['OAUTHS2S_CLIENT_SECRET', 'OPERATION'])
  assert.ok(!text.includes('p8e-seal-test'), 'the seal holds fingerprints, never values')
  // A config the binary cannot seal fails the build and leaves no stale seal behind.
  fs.writeFileSync(path.join(dir, 'actions', 'ims-action', 'bin', 'ims-action.seal.json'), '{"stale": true}')
  fs.writeFileSync(path.join(dir, 'app.config.yaml'), 'application: {}\n')
  const bad = run(dir, 'build-launcher.sh', { args: [REAL] })
  assert.notEqual(bad.status, 0)
  assert.ok(!fs.existsSync(path.join(dir, 'actions', 'ims-action', 'bin', 'ims-action.seal.json')))
})
