// Tests of the Node launcher (actions/ims-action/index.js) with node's own test runner:
//   node --test actions/ims-action/test/
// They run against test/fixtures/standin (an ActionLoop stand-in steered by params) and, when
// IMS_ACTION_BIN names a built binary (e.g. target/debug/ims-action), against the real binary too,
// and with it against the project's Adobe emulator (IMS_ACTION_EMULATOR, by default adobe-emulator
// next to IMS_ACTION_BIN). `make node-test` builds both.
// Each test copies index.js and the binary into a fresh folder laid out like the deployed action
// (index.js + bin/exec), so the launcher finds bin/exec exactly as on Adobe I/O Runtime.
'use strict'

const { test, after } = require('node:test')
const assert = require('node:assert/strict')
const { spawn, spawnSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const LAUNCHER = path.join(__dirname, '..', 'index.js')
const FIXTURES = path.join(__dirname, 'fixtures')
const STANDIN = path.join(FIXTURES, 'standin')
const REAL = process.env.IMS_ACTION_BIN ? path.resolve(process.env.IMS_ACTION_BIN) : null
const REAL_SKIP = !REAL
  ? 'IMS_ACTION_BIN is not set: the real-binary tests are skipped (e.g. IMS_ACTION_BIN=target/debug/ims-action)'
  : !fs.existsSync(REAL) ? `IMS_ACTION_BIN=${REAL} does not exist: build it first (cargo build)` : false

const EMULATOR = path.resolve(process.env.IMS_ACTION_EMULATOR ||
  (REAL ? path.join(path.dirname(REAL), 'adobe-emulator') : 'adobe-emulator'))
const EMULATOR_SKIP = REAL_SKIP ||
  (!fs.existsSync(EMULATOR) ? `${EMULATOR} does not exist: build it first (cargo build --bin adobe-emulator)` : false)
const SEAL_FILE = 'ims-action.seal.json'

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'ims-action-launcher-test-'))
fs.chmodSync(scratch, 0o755) // the test that runs as 'nobody' reads from here
after(() => fs.rmSync(scratch, { recursive: true, force: true }))

let dirs = 0
/** A deployed-action folder: index.js + bin/exec (a copy of `bin`, mode 0644 unless told). */
function actionDir (bin, mode = 0o644) {
  const dir = path.join(scratch, `action-${++dirs}`)
  fs.mkdirSync(path.join(dir, 'bin'), { recursive: true, mode: 0o755 })
  fs.copyFileSync(LAUNCHER, path.join(dir, 'index.js'))
  if (bin) {
    fs.copyFileSync(bin, path.join(dir, 'bin', 'exec'))
    fs.chmodSync(path.join(dir, 'bin', 'exec'), mode)
  }
  return dir
}

/** require() the action module afresh, as `aio app dev` does before every call
 *  (aio-cli-plugin-app-dev, src/lib/run-dev.js, defaultActionLoader: delete require.cache, require). */
function reload (dir) {
  const file = require.resolve(path.join(dir, 'index.js'))
  delete require.cache[file]
  return require(file)
}

/** Pids of the running processes whose command line runs `exec` (directly, or `node exec` for the stand-in). */
function pidsRunning (exec) {
  return fs.readdirSync('/proc').filter(p => /^\d+$/.test(p)).filter(p => {
    try { return fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').includes(exec) } catch { return false }
  }).map(Number)
}

/** A fresh launcher module (its own child) around `bin`. */
function freshAction (bin = STANDIN) {
  const dir = actionDir(bin)
  return { dir, action: require(path.join(dir, 'index.js')) }
}

let activations = 0
/** Call main() as the Node.js runtime does: __OW_* set for this activation, then main(params). */
function invoke (action, params, env = {}) {
  const id = `act-${++activations}`
  Object.assign(process.env, {
    __OW_ACTIVATION_ID: id,
    __OW_NAMESPACE: 'test-ns',
    __OW_ACTION_NAME: '/test-ns/ims-action/aem-quota',
    __OW_TRANSACTION_ID: `tx-${id}`,
    __OW_DEADLINE: String(Date.now() + 60000),
    ...env
  })
  return { id, result: action.main(params) }
}

async function call (action, params, env) {
  return invoke(action, params, env).result
}

function assertExitError (result, code, signal) {
  assert.equal(result.error.statusCode, 502)
  assert.equal(result.error.body.error,
    `ims-action binary exited unexpectedly (code ${code}, signal ${signal}); it will be restarted`)
}

/** Run a node script in a subprocess; resolves with { status, stdout, stderr }. */
function runNode (script, options = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', script], { ...options, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', d => { stdout += d })
    child.stderr.on('data', d => { stderr += d })
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`timed out; stderr: ${stderr}`)) }, 20000)
    child.on('error', reject)
    child.on('close', status => { clearTimeout(timer); resolve({ status, stdout, stderr }) })
  })
}

// ---- with the stand-in ---------------------------------------------------------------------------

test('sequential activations go to one child, which keeps its state', async () => {
  const { action } = freshAction()
  const pids = new Set()
  for (let i = 1; i <= 6; i++) {
    const { id, result } = invoke(action, { OPERATION: 'aem-get', echo: i, OAUTHS2S_CLIENT_SECRET: 's' })
    const r = await result
    assert.equal(r.statusCode, 200)
    assert.deepEqual(r.headers, { 'content-type': 'application/json' })
    assert.equal(r.body.count, i, 'the counter of one long-lived child')
    assert.equal(r.body.echo, i)
    assert.equal(r.body.operation, 'aem-get')
    assert.deepEqual(r.body.keys, ['OAUTHS2S_CLIENT_SECRET', 'OPERATION', 'echo'])
    assert.equal(r.body.context.activation_id, id)
    assert.equal(r.body.context.transaction_id, `tx-${id}`)
    assert.equal(r.body.context.namespace, 'test-ns')
    assert.equal(r.body.context.action_name, '/test-ns/ims-action/aem-quota')
    assert.match(r.body.context.deadline, /^\d+$/, 'deadline is passed on as the string of epoch ms')
    pids.add(r.body.pid)
  }
  assert.equal(pids.size, 1)
})

test('a module reloaded before every call (aio app dev) keeps one child: no leaked processes', async () => {
  const dir = actionDir(STANDIN)
  const modules = new Set()
  const pids = new Set()
  for (let i = 1; i <= 6; i++) {
    const action = reload(dir)
    modules.add(action)
    const r = await call(action, { echo: i })
    assert.equal(r.statusCode, 200, JSON.stringify(r))
    assert.equal(r.body.count, i, 'the same child counts every call')
    pids.add(r.body.pid)
  }
  assert.equal(modules.size, 6, 'each require() loaded the module afresh')
  assert.equal(pids.size, 1, 'one child for all six loads')
  assert.deepEqual(pidsRunning(path.join(dir, 'bin', 'exec')), [...pids], 'no other child is left running')
})

test('each binary path has its own child, however often the modules are reloaded', async () => {
  const a = actionDir(STANDIN)
  const b = actionDir(STANDIN)
  const pids = { [a]: new Set(), [b]: new Set() }
  for (let i = 0; i < 3; i++) {
    for (const dir of [a, b]) pids[dir].add((await call(reload(dir), {})).body.pid)
  }
  assert.equal(pids[a].size, 1)
  assert.equal(pids[b].size, 1)
  assert.notDeepEqual([...pids[a]], [...pids[b]])
})

test('IMS_ACTION_SEAL names bin/ims-action.seal.json when the build put one there, and only then', async () => {
  assert.equal(process.env.IMS_ACTION_SEAL, undefined, 'the test process must not set it')
  const sealed = actionDir(STANDIN)
  fs.writeFileSync(path.join(sealed, 'bin', SEAL_FILE), '{}')
  assert.equal((await call(reload(sealed), {})).body.env.seal, path.join(sealed, 'bin', SEAL_FILE))
  const unsealed = actionDir(STANDIN)
  assert.equal((await call(reload(unsealed), {})).body.env.seal, null)
})

test('api_key and namespace go on each line; the child keeps __OW_CLOUD but no stale per-activation variables', async () => {
  const { action } = freshAction()
  const cloud = { __OW_CLOUD: 'aws', __OW_REGION: 'us-east-1', __OW_API_HOST: 'https://runtime.example' }
  try {
    const first = await call(action, {}, { ...cloud, __OW_API_KEY: 'uuid-1:key-1', __OW_ACTION_VERSION: '0.0.1' })
    assert.equal(first.body.context.api_key, 'uuid-1:key-1')
    assert.equal(first.body.context.namespace, 'test-ns')
    assert.equal(first.body.context.action_version, '0.0.1')
    assert.deepEqual(first.body.env.ow, ['__OW_API_HOST', '__OW_CLOUD', '__OW_NAMESPACE', '__OW_REGION'],
      'the per-activation variables (activation id, deadline, action name, API key...) are left out')
    const second = await call(action, {}, { __OW_API_KEY: 'uuid-2:key-2' })
    assert.equal(second.body.context.api_key, 'uuid-2:key-2', 'each activation\'s own key')
    assert.equal(second.body.pid, first.body.pid)
    delete process.env.__OW_API_KEY
    const third = await call(action, {})
    assert.ok(!('api_key' in third.body.context), 'no api_key without __OW_API_KEY')
  } finally {
    for (const name of [...Object.keys(cloud), '__OW_API_KEY', '__OW_ACTION_VERSION']) delete process.env[name]
  }
})

test('the launcher chmods bin/exec to 0755 before starting it', async () => {
  const { dir, action } = freshAction()
  assert.equal(fs.statSync(path.join(dir, 'bin', 'exec')).mode & 0o777, 0o644)
  assert.equal((await call(action, {})).statusCode, 200)
  assert.equal(fs.statSync(path.join(dir, 'bin', 'exec')).mode & 0o777, 0o755)
})

test('concurrent activations go to one child at once, each answered with its own result', async () => {
  const { action } = freshAction()
  // Later activations answer faster, so they overtake the earlier ones: answers come back in
  // the reverse order and must still each reach their own activation.
  const calls = Array.from({ length: 12 }, (_, i) => invoke(action, { echo: i, sleep_ms: 60 - 5 * i }))
  const results = await Promise.all(calls.map(c => c.result))
  results.forEach((r, i) => {
    assert.equal(r.statusCode, 200)
    assert.equal(r.body.echo, i)
    assert.equal(r.body.context.activation_id, calls[i].id, 'the context captured when main() was called')
    assert.equal(r.body.multiplex, true, 'the launcher asked for the multiplexed framing')
  })
  assert.equal(new Set(results.map(r => r.body.pid)).size, 1)
  assert.equal(results[11].body.overlap, true, 'the child had several activations in flight')
  assert.deepEqual(results.map(r => r.body.count), results.map((_, i) => 12 - i), 'the last sent answered first')
})

test('a child that exits mid-activation answers a clear 502; the next activation gets a fresh child', async () => {
  const { action } = freshAction()
  const first = await call(action, { echo: 'a' })
  const crashed = await call(action, { crash: 'exit' })
  assertExitError(crashed, 3, null)
  const next = await call(action, { echo: 'b' })
  assert.equal(next.statusCode, 200)
  assert.equal(next.body.count, 1)
  assert.notEqual(next.body.pid, first.body.pid)
})

test('a child killed by a signal mid-activation answers a 502 naming the signal', async () => {
  const { action } = freshAction()
  assertExitError(await call(action, { crash: 'signal' }), null, 'SIGKILL')
  assert.equal((await call(action, {})).statusCode, 200)
})

test('a child that dies fails each activation in flight with its own 502; the next gets a fresh child', async () => {
  const { action } = freshAction()
  const first = await call(action, { echo: 'first' })
  const results = await Promise.all([
    call(action, { echo: 'a', sleep_ms: 200 }),
    call(action, { crash: 'exit', sleep_ms: 20 }),
    call(action, { echo: 'c', sleep_ms: 200 })
  ])
  results.forEach(r => assertExitError(r, 3, null))
  const next = await call(action, { echo: 'd' })
  assert.equal(next.body.echo, 'd')
  assert.equal(next.body.count, 1)
  assert.notEqual(next.body.pid, first.body.pid)
})

test('a reply under an id no activation waits for stops the child: its activations in flight get 502s', async () => {
  const { action } = freshAction()
  const [stray, other] = await Promise.all([
    call(action, { reply: 'unknown-id' }),
    call(action, { echo: 'other', sleep_ms: 300 })
  ])
  assertExitError(stray, null, 'SIGKILL')
  assertExitError(other, null, 'SIGKILL')
  const next = await call(action, { echo: 'next' })
  assert.equal(next.body.count, 1, 'a fresh child')
})

test('an activation not answered by its deadline gets a 504 and holds no other; its late reply is dropped', async () => {
  const { action } = freshAction()
  const first = await call(action, {}) // the child is running
  const deadline = { __OW_DEADLINE: String(Date.now() + 1500) }
  const settled = []
  const hung = invoke(action, { reply: 'none' }, deadline).result.then(r => { settled.push('hung'); return r })
  const late = invoke(action, { echo: 'late', sleep_ms: 2000 }, deadline).result.then(r => { settled.push('late'); return r })
  const results = await Promise.all(Array.from({ length: 5 }, (_, i) => call(action, { echo: i })))
  results.forEach((r, i) => assert.equal(r.body.echo, i))
  assert.deepEqual(settled, [], 'the others were answered while the two were still in flight')
  for (const r of [await hung, await late]) {
    assert.deepEqual(r, { error: { statusCode: 504, body: { error: 'the ims-action binary did not answer before the activation deadline' } } })
  }
  // The late reply (at 2 s) is dropped, not taken for a stray line: the child lives on.
  const launcher = action.sharedLauncher()
  const child = launcher.child
  assert.deepEqual([...child.late].length, 2, 'both are remembered as answered')
  for (let i = 0; i < 500 && child.late.size > 1; i++) await new Promise(resolve => setTimeout(resolve, 10))
  assert.equal(child.late.size, 1, 'the late reply arrived (the hung one never replies)')
  assert.equal(launcher.child, child)
  const next = await call(action, { echo: 'next' })
  assert.equal(next.body.pid, first.body.pid, 'the same child')
})

test('a reply written just before the child exits is delivered; the next activation restarts it', async () => {
  const { action } = freshAction()
  const r = await call(action, { crash: 'after-reply', echo: 1 })
  assert.equal(r.statusCode, 200)
  assert.equal(r.body.echo, 1)
  await waitForExit(r.body.pid)
  await new Promise(resolve => setTimeout(resolve, 50)) // let the launcher see the exit
  const next = await call(action, { echo: 2 })
  assert.equal(next.body.echo, 2)
  assert.notEqual(next.body.pid, r.body.pid)
})

test('a child killed while idle is restarted by the next activation', async () => {
  const { action } = freshAction()
  const first = await call(action, {})
  process.kill(first.body.pid, 'SIGKILL')
  await waitForExit(first.body.pid)
  await new Promise(resolve => setTimeout(resolve, 50)) // let the launcher see the close
  const next = await call(action, {})
  assert.equal(next.statusCode, 200, JSON.stringify(next))
  assert.notEqual(next.body.pid, first.body.pid)
})

test('a reply that is not JSON is an error result, and the child is kept', async () => {
  const { action } = freshAction()
  const first = await call(action, {})
  const bad = await call(action, { reply: 'garbage' })
  assert.deepEqual(bad, { error: { statusCode: 502, body: { error: 'the ims-action binary returned a reply that is not JSON' } } })
  const scalar = await call(action, { reply: 'scalar' })
  assert.equal(scalar.error.statusCode, 502)
  assert.match(scalar.error.body.error, /did not return a dictionary or array/)
  const next = await call(action, {})
  assert.equal(next.body.pid, first.body.pid)
  assert.equal(next.body.count, 4)
})

test('a second reply line for one activation stops that child: answers are never misattributed', async () => {
  const { action } = freshAction()
  const first = await call(action, { reply: 'two-lines', echo: 1 })
  assert.equal(first.body.echo, 1)
  await waitForExit(first.body.pid)
  const next = await call(action, { echo: 2 })
  assert.equal(next.body.echo, 2)
  assert.equal(next.body.count, 1)
  assert.notEqual(next.body.pid, first.body.pid)
})

test('a binary that dies at start answers 502 every time, and is retried', async () => {
  const { action } = freshAction(path.join(FIXTURES, 'exit-at-once.sh'))
  assertExitError(await call(action, {}), 7, null)
  assertExitError(await call(action, {}), 7, null)
})

test('a missing bin/exec (aio app dev on a fresh clone) answers 502 saying what to run', async () => {
  const dir = actionDir(null)
  const action = require(path.join(dir, 'index.js'))
  const expected = 'the ims-action binary (bin/exec next to the action) is missing: ' +
    'run `make launcher` in the project, then restart `aio app dev` (or deploy again)'
  assert.deepEqual(await call(action, {}), { error: { statusCode: 502, body: { error: expected } } })
  // Once it is there, the next call starts it.
  fs.copyFileSync(STANDIN, path.join(dir, 'bin', 'exec'))
  assert.equal((await call(reload(dir), {})).statusCode, 200)
})

test('__OW_WAIT_FOR_ACK is not passed on: no ack line can shift the answers', async () => {
  const { action } = freshAction()
  process.env.__OW_WAIT_FOR_ACK = '1'
  try {
    const r = await call(action, { echo: 'x' })
    assert.equal(r.body.echo, 'x')
    assert.equal(r.body.count, 1)
  } finally {
    delete process.env.__OW_WAIT_FOR_ACK
  }
})

test('an activation whose deadline passed while it was queued is not sent to the child', async () => {
  const { action } = freshAction()
  const r = await call(action, {}, { __OW_DEADLINE: String(Date.now() - 1000) })
  assert.equal(r.error.statusCode, 504)
  const next = await call(action, {})
  assert.equal(next.body.count, 1, 'the child never saw the expired activation')
})

test('secrets in params and the API key never reach the log; an idle child does not keep the process alive', async () => {
  const dir = actionDir(STANDIN)
  const secret = 'p8e-SECRET-VALUE-0123456789'
  const script = `
    const { main } = require(${JSON.stringify(path.join(dir, 'index.js'))})
    const params = { OAUTHS2S_CLIENT_SECRET: ${JSON.stringify(secret)}, JWT_PRIVATE_KEY: ${JSON.stringify(secret)} }
    ;(async () => {
      const out = []
      out.push(await main({ ...params, log: 'hello' }))
      out.push(await main({ ...params, reply: 'garbage' }))
      out.push(await main({ ...params, crash: 'exit' }))
      out.push(await main({ ...params, reply: 'two-lines' }))
      await new Promise(resolve => setTimeout(resolve, 100)) // the second line stops that child
      out.push(await main(params))
      process.stdout.write('RESULTS ' + JSON.stringify(out.map(r => r.statusCode || r.error.statusCode)) + '\\n')
    })()`
  const apiKey = 'uuid-0000:API-KEY-VALUE-0123456789'
  const { status, stdout, stderr } = await runNode(script, { env: { ...process.env, __OW_API_KEY: apiKey } })
  assert.equal(status, 0, stderr)
  assert.match(stdout, /RESULTS \[200,502,502,200,200\]/)
  assert.ok(!stdout.includes(apiKey) && !stderr.includes(apiKey), 'the API key reached the log')
  assert.match(stdout, /standin log: hello/, 'the child\'s stdout is the activation log')
  assert.match(stderr, /standin err: hello/, 'the child\'s stderr is the activation log')
  assert.match(stderr, /reply is not JSON/)
  assert.match(stderr, /exited unexpectedly \(code 3, signal null\)/)
  assert.ok(!stdout.includes(secret) && !stderr.includes(secret), 'a secret reached the log')
})

test('bin/exec that cannot be chmod-ed or executed is run from a copy in the temp dir', async (t) => {
  if (process.getuid() !== 0) return t.skip('needs root, to run the launcher as the user nobody')
  // Owned by root, mode 0644: the user nobody can neither chmod nor execute it, but can read it.
  const dir = actionDir(STANDIN, 0o644)
  fs.writeFileSync(path.join(dir, 'bin', SEAL_FILE), '{}')
  const tmp = fs.mkdtempSync(path.join(scratch, 'tmp-'))
  fs.chmodSync(tmp, 0o777)
  const probe = spawnSync(process.execPath, ['-e', '0'], { uid: 65534, gid: 65534 })
  if (probe.error) return t.skip(`cannot run as nobody here: ${probe.error.code}`)
  const script = `require(${JSON.stringify(path.join(dir, 'index.js'))}).main({})
    .then(r => process.stdout.write(JSON.stringify(r) + '\\n'))`
  const { status, stdout, stderr } = await runNode(script, { uid: 65534, gid: 65534, env: { ...process.env, TMPDIR: tmp, HOME: tmp } })
  assert.equal(status, 0, stderr)
  const r = JSON.parse(stdout.trim().split('\n').pop())
  assert.equal(r.statusCode, 200, stdout + stderr)
  assert.ok(r.body.self.startsWith(tmp + path.sep), `ran ${r.body.self}, not a copy in ${tmp}`)
  assert.equal(r.body.env.seal, path.join(dir, 'bin', SEAL_FILE), 'the copy is told where the seal is')
  assert.match(stderr, /chmod .* failed \(EPERM\); running a copy from/)
})

// ---- with the real binary (IMS_ACTION_BIN) -------------------------------------------------------

// No credentials are given, so the binary answers from its parameter checks and sends nothing.
const NO_NETWORK = { OPERATION: 'aem-quota', HTTP_TIMEOUT_MS: 2000 }

function assertResult (r) {
  assert.equal(typeof r, 'object')
  assert.ok(r !== null)
  if (r.error) {
    assert.equal(typeof r.error.statusCode, 'number', JSON.stringify(r))
    assert.notEqual(r.error.statusCode, 502, `the launcher reported a broken binary: ${JSON.stringify(r)}`)
    assert.equal(typeof r.error.body.error, 'string')
  } else {
    assert.equal(typeof r.statusCode, 'number', JSON.stringify(r))
  }
}

test('real binary: sequential and concurrent activations share one child', { skip: REAL_SKIP }, async () => {
  const dir = actionDir(REAL)
  const { Launcher } = require(path.join(dir, 'index.js'))
  const launcher = new Launcher(path.join(dir, 'bin', 'exec'))
  const context = { activation_id: 'a1', deadline: String(Date.now() + 60000) }
  const first = await launcher.run(NO_NETWORK, context)
  assertResult(first)
  const pid = launcher.pid
  assert.ok(pid)
  for (let i = 0; i < 3; i++) assertResult(await launcher.run(NO_NETWORK, context))
  const together = await Promise.all(Array.from({ length: 8 }, () => launcher.run(NO_NETWORK, context)))
  together.forEach(assertResult)
  assert.deepEqual(together, Array(8).fill(first), 'the same request gets the same answer')
  assert.equal(launcher.pid, pid, 'still the first child')
})

test('real binary: main() through bin/exec, and a restart after the child is killed', { skip: REAL_SKIP }, async () => {
  const dir = actionDir(REAL)
  const action = require(path.join(dir, 'index.js'))
  assertResult(await call(action, NO_NETWORK))
  // The child: the process whose command line runs this folder's bin/exec.
  const pids = pidsRunning(path.join(dir, 'bin', 'exec'))
  assert.equal(pids.length, 1, 'one child runs bin/exec')
  process.kill(Number(pids[0]), 'SIGKILL')
  await waitForExit(Number(pids[0]))
  await new Promise(resolve => setTimeout(resolve, 50))
  assertResult(await call(action, NO_NETWORK))
})

/** Starts the project's Adobe emulator with a fresh set of demo credentials; resolves with
 *  { url, hostPort, env (the demo .env as an object), stats(), stop() }. */
function startEmulator () {
  const envFile = path.join(fs.mkdtempSync(path.join(scratch, 'emulator-')), 'demo.env')
  const child = spawn(EMULATOR, ['--env-file', envFile, '--exit-on-stdin-eof'], { stdio: ['pipe', 'pipe', 'ignore'] })
  return new Promise((resolve, reject) => {
    let out = ''
    child.once('error', reject)
    child.once('exit', code => reject(new Error(`adobe-emulator exited (${code}) before it listened`)))
    child.stdout.setEncoding('utf8')
    child.stdout.on('data', chunk => {
      out += chunk
      const m = out.match(/listening on (http:\/\/([\d.]+:\d+))/)
      if (!m) return
      child.removeAllListeners('exit')
      const env = {}
      for (const line of fs.readFileSync(envFile, 'utf8').split('\n')) {
        const kv = line.match(/^([A-Z0-9_]+)=(.*)$/)
        if (kv) env[kv[1]] = kv[2]
      }
      const stats = () => new Promise((resolve, reject) => {
        require('node:http').get(`${m[1]}/__stats`, res => {
          let body = ''
          res.setEncoding('utf8')
          res.on('data', d => { body += d })
          res.on('end', () => resolve(JSON.parse(body)))
        }).on('error', reject)
      })
      resolve({ url: m[1], hostPort: m[2], env, stats, stop: () => child.kill() })
    })
  })
}

test('real binary + emulator: six module reloads (aio app dev) make one child and one IMS token request', { skip: EMULATOR_SKIP }, async () => {
  const emulator = await startEmulator()
  try {
    const dir = actionDir(REAL)
    const { IMS_ACTION_ALLOW_HOSTS: allow, ...demo } = emulator.env
    const params = { ...demo, AUTH_METHOD: 'oauth-s2s', OPERATION: 'aem-quota' }
    // The subprocess reloads the module before each call, as aio app dev does, and reports each
    // result's status and the pids then running bin/exec (the credentials stay in its stdin/env).
    const script = `
      const fs = require('fs')
      const path = require('path')
      const file = require.resolve(${JSON.stringify(path.join(dir, 'index.js'))})
      const exec = path.join(path.dirname(file), 'bin', 'exec')
      const running = () => fs.readdirSync('/proc').filter(p => /^\\d+$/.test(p)).filter(p => {
        try { return fs.readFileSync('/proc/' + p + '/cmdline', 'utf8').split('\\0').includes(exec) } catch { return false }
      })
      const params = JSON.parse(process.env.TEST_PARAMS)
      ;(async () => {
        const calls = []
        for (let i = 0; i < 6; i++) {
          delete require.cache[file]
          process.env.__OW_ACTIVATION_ID = 'reload-' + i
          process.env.__OW_ACTION_NAME = '/test-ns/ims-action/aem-quota'
          const r = await require(file).main(params)
          calls.push({ status: r.statusCode || r.error.statusCode, running: running() })
        }
        process.stdout.write('CALLS ' + JSON.stringify(calls) + '\\n')
      })()`
    const env = { ...process.env, IMS_ACTION_ALLOW_HOSTS: allow, TEST_PARAMS: JSON.stringify(params) }
    const { status, stdout, stderr } = await runNode(script, { env })
    assert.equal(status, 0, stderr)
    const calls = JSON.parse(stdout.split('\n').find(l => l.startsWith('CALLS ')).slice(6))
    assert.deepEqual(calls.map(c => c.status), [200, 200, 200, 200, 200, 200], stderr)
    assert.equal(new Set(calls.flatMap(c => c.running)).size, 1, 'one bin/exec process for all six calls')
    calls.forEach(c => assert.equal(c.running.length, 1, 'never a second bin/exec running'))
    const stats = await emulator.stats()
    assert.equal(stats.requests['/ims/token/v3'], 1, JSON.stringify(stats))
    assert.deepEqual(Object.values(stats.tokens_issued), [1])
    assert.equal(stats.requests['/adobe/stats/statistics/contentRequestsQuota'], 6)
  } finally {
    emulator.stop()
  }
})

test('real binary under aio app dev (AIO_DEV): the child runs from a deleted copy, so aio can replace bin/exec', { skip: REAL_SKIP }, async () => {
  const dir = actionDir(REAL)
  const exec = path.join(dir, 'bin', 'exec')
  const tmp = fs.mkdtempSync(path.join(scratch, 'tmp-'))
  const saved = { AIO_DEV: process.env.AIO_DEV, TMPDIR: process.env.TMPDIR }
  Object.assign(process.env, { AIO_DEV: 'true', TMPDIR: tmp })
  try {
    assertResult(await call(reload(dir), NO_NETWORK))
    assert.deepEqual(pidsRunning(exec), [], 'the child does not run bin/exec itself')
    const children = fs.readdirSync('/proc').filter(p => /^\d+$/.test(p)).filter(p => {
      try { return fs.readlinkSync(`/proc/${p}/exe`).startsWith(tmp + path.sep) } catch { return false }
    })
    assert.equal(children.length, 1, 'one child runs a copy in the temp dir')
    assert.match(fs.readlinkSync(`/proc/${children[0]}/exe`), /\(deleted\)$/)
    assert.deepEqual(fs.readdirSync(tmp), [], 'the copy is gone once the child runs')
    // What aio-lib-runtime's build does with an `include` when the action changes (fs.copyFileSync
    // onto the old file): ETXTBSY if the child ran bin/exec itself.
    fs.copyFileSync(REAL, exec)
    assertResult(await call(reload(dir), NO_NETWORK))
    assert.ok(fs.existsSync(`/proc/${children[0]}`), 'the same child answers')
    const missing = actionDir(null)
    assert.match((await call(reload(missing), NO_NETWORK)).error.body.error, /run `make launcher`/)
    assert.deepEqual(fs.readdirSync(tmp), [], 'no folder is left behind for a missing bin/exec')
  } finally {
    for (const [k, v] of Object.entries(saved)) if (v === undefined) delete process.env[k]; else process.env[k] = v
  }
})

async function waitForExit (pid) {
  for (let i = 0; i < 200; i++) {
    try { process.kill(pid, 0) } catch { return }
    await new Promise(resolve => setTimeout(resolve, 10))
  }
  throw new Error(`pid ${pid} did not exit`)
}
