/*
 * Node.js launcher for the ims-action Rust binary on Adobe I/O Runtime (nodejs:22; works on Node 20).
 *
 * Adobe I/O Runtime only runs Node.js actions for most namespaces, so this action ships the static
 * musl binary as `bin/exec` (ext.config.yaml `include`) and drives it with the OpenWhisk ActionLoop
 * protocol (apache/openwhisk-runtime-go, docs/ACTION.md):
 *   - one child per container, started lazily by the first activation and kept while warm, so the
 *     binary's in-memory IMS token cache survives between activations. The launcher lives in a
 *     process-wide registry (globalThis, keyed by the binary's path), not in this module: `aio app
 *     dev` re-requires the module on every call, and each reload must find the same child
 *     instead of starting another one (and fetching another token). (So an edit of this file
 *     takes effect in `aio app dev` after a restart of it; under aio app dev the child runs from
 *     a copy, so that aio can rebuild the action while it runs, see start());
 *   - the multiplexed framing, which the launcher asks for with IMS_ACTION_MULTIPLEX=1 in the
 *     child's environment (the plain protocol, one activation at a time, stays the OpenWhisk
 *     proxies'; see docs/concurrency.md): per activation, one line on the child's stdin
 *       <id> {"value": params, "namespace", "action_name", "action_version", "activation_id",
 *             "transaction_id", "deadline", "api_key"}
 *     (api_key only when the runtime sets __OW_API_KEY, as the Go ActionLoop proxy does), where
 *     <id> is this launcher's counter, and one line `<id> <result JSON>` back on the child's fd 3,
 *     in whatever order activations finish;
 *   - the child's environment is this process's, minus the per-activation __OW_* variables (they
 *     would be stale from the second activation on; the line carries them), plus IMS_ACTION_SEAL
 *     naming bin/ims-action.seal.json when the build put one there (the child may run from a copy
 *     in the temp dir, where it cannot find the seal next to itself);
 *   - the child's stdout/stderr are inherited: its log lines land in the container's log, those of
 *     concurrent activations interleaved (as the Node.js runtime's own are), each line starting
 *     with its activation's id;
 *   - activations are sent as they arrive, never queued: the container runs up to `concurrency`
 *     activations at once (Adobe's default is 200), and so does the binary, each on its own thread;
 *   - failures stay contained: a child that dies fails each activation in flight with its own 502
 *     and is restarted by the next; an activation the binary has not answered shortly before its
 *     deadline is answered 504 here (its late reply is dropped) and holds no other; a reply whose
 *     id no activation waits for stops that child, so that answers are never misattributed.
 *
 * Secrets: params (credentials, the caller's Authorization header) and the API key go only to the
 * child's stdin. Nothing here logs params, the API key or the child's replies.
 *
 * No dependencies. `Launcher` is exported for tests.
 */
'use strict'

const { spawn } = require('child_process')
const fs = require('fs')
const os = require('os')
const path = require('path')

const BIN = path.join(__dirname, 'bin', 'exec')
// Written next to bin/exec at build time by `ims-action seal` (scripts/build-launcher.sh).
const SEAL = 'ims-action.seal.json'
// The process-wide registry of running launchers: survives re-requires of this module.
const REGISTRY = Symbol.for('ims-action.launchers')
// Set by the Node.js runtime for each activation; the child gets them on each line instead.
const PER_ACTIVATION_ENV = ['__OW_ACTIVATION_ID', '__OW_TRANSACTION_ID', '__OW_DEADLINE',
  '__OW_ACTION_NAME', '__OW_ACTION_VERSION', '__OW_API_KEY']
// Asks the binary for the multiplexed framing (src/runtime/multiplex.rs).
const MULTIPLEX = 'IMS_ACTION_MULTIPLEX'
// An activation the binary has not answered this long before its deadline is answered 504 here:
// the platform kills the activation at the deadline, and the answer must be out first.
const CUT_BEFORE_DEADLINE_MS = 250
// `aio app dev` skips the pre-app-build hook that builds bin/exec (its own pre-app-dev hook may
// have failed), so say how to get one. aio copies bin/exec into its build only when it starts.
const MISSING_BINARY = 'the ims-action binary (bin/exec next to the action) is missing: ' +
  'run `make launcher` in the project, then restart `aio app dev` (or deploy again)'

function log (message) {
  console.error(`[ims-action launcher] ${message}`)
}

function errorResult (statusCode, error) {
  return { error: { statusCode, body: { error } } }
}

/** The activation context, read from the __OW_* variables the Node runtime sets for this activation. */
function activationContext (env) {
  return {
    namespace: env.__OW_NAMESPACE,
    action_name: env.__OW_ACTION_NAME,
    action_version: env.__OW_ACTION_VERSION,
    activation_id: env.__OW_ACTIVATION_ID,
    transaction_id: env.__OW_TRANSACTION_ID,
    deadline: env.__OW_DEADLINE, // a string of epoch milliseconds, as the ActionLoop proxy sends it
    api_key: env.__OW_API_KEY || undefined // set only with the provide-api-key annotation (or aio app dev)
  }
}

class Launcher {
  constructor (bin = BIN) {
    this.bin = bin
    this.child = null // the running child, if any; child.waiting: its activations in flight by id
    this.starting = null // the start under way, awaited by every activation that arrives meanwhile
    this.lastId = 0 // ids of activations, unique in this launcher
    this.tmpCopy = null // the copy in os.tmpdir(), made once if bin/exec cannot be chmod-ed or executed
  }

  /** The pid of the running child (undefined when none): tests use it. */
  get pid () {
    return this.child ? this.child.pid : undefined
  }

  /** Run one activation at once; resolves with its result (never rejects). */
  run (params, context) {
    return this.activate(params, context)
      .catch(err => errorResult(502, `ims-action launcher failed: ${err.message}`))
  }

  async activate (params, context) {
    const deadline = Number(context.deadline)
    if (deadline && Date.now() >= deadline) {
      // The platform has already given up on this activation.
      return errorResult(504, 'the activation deadline passed before it reached the ims-action binary')
    }
    if (!this.child) {
      // Activations that arrive while the child starts wait for that one start.
      if (!this.starting) this.starting = this.start().finally(() => { this.starting = null })
      try {
        await this.starting
      } catch (err) {
        if (err.code === 'ENOENT') {
          log(`${this.bin} does not exist: run \`make launcher\` in the project`)
          return errorResult(502, MISSING_BINARY)
        }
        log(`cannot start ${this.bin}: ${err.code || err.message}`)
        return errorResult(502, `cannot start the ims-action binary (${err.code || err.message})`)
      }
    }
    const child = this.child
    if (!child) return errorResult(502, 'ims-action binary exited before this activation reached it; it will be restarted')
    const id = String(++this.lastId)
    const line = `${id} ${JSON.stringify({ value: params, ...context })}\n`
    return new Promise(resolve => {
      const timer = deadline
        ? setTimeout(() => this.expire(child, id), Math.max(0, deadline - Date.now() - CUT_BEFORE_DEADLINE_MS))
        : null
      child.waiting.set(id, { resolve, timer })
      this.busy(child, true)
      child.stdin.write(line)
    })
  }

  /** Answer activation `id` of `child` with `result`, once. */
  settle (child, id, result) {
    const activation = child.waiting.get(id)
    if (!activation) return
    child.waiting.delete(id)
    clearTimeout(activation.timer)
    if (child.waiting.size === 0) this.busy(child, false)
    activation.resolve(result)
  }

  /** The binary did not answer in time: 504 now, and its late reply, if one comes, is dropped. */
  expire (child, id) {
    if (!child.waiting.has(id)) return
    log(`activation ${id} was not answered before its deadline; answering 504`)
    child.late.add(id)
    this.settle(child, id, errorResult(504, 'the ims-action binary did not answer before the activation deadline'))
  }

  /** Start the child: chmod bin/exec, or fall back to a copy in the temp dir (read-only or noexec code dir). */
  async start () {
    if (process.env.AIO_DEV) {
      // `aio app dev` (which sets AIO_DEV) copies bin/exec into its build again whenever the
      // action's code changes, and that copy fails (ETXTBSY) while the file runs: run a copy
      // of it instead, deleted once running (the process keeps its own reference).
      const copy = this.copyOf(this.bin)
      try {
        this.child = await this.spawn(copy)
      } finally {
        fs.rmSync(path.dirname(copy), { recursive: true, force: true })
      }
      return
    }
    let bin = this.bin
    try {
      fs.chmodSync(bin, 0o755)
    } catch (err) {
      if (err.code === 'ENOENT') throw err
      log(`chmod ${bin} failed (${err.code}); running a copy from ${os.tmpdir()}`)
      bin = this.copyToTmp()
    }
    try {
      this.child = await this.spawn(bin)
    } catch (err) {
      if (bin !== this.tmpCopy && (err.code === 'EACCES' || err.code === 'EPERM')) {
        log(`cannot execute ${bin} (${err.code}); running a copy from ${os.tmpdir()}`)
        this.child = await this.spawn(this.copyToTmp())
      } else {
        throw err
      }
    }
  }

  copyToTmp () {
    if (!this.tmpCopy) this.tmpCopy = this.copyOf(this.bin)
    return this.tmpCopy
  }

  /** A fresh executable copy of `bin` in its own folder of the temp dir. */
  copyOf (bin) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ims-action-'))
    try {
      fs.copyFileSync(bin, path.join(dir, 'exec'))
      fs.chmodSync(path.join(dir, 'exec'), 0o755)
      return path.join(dir, 'exec')
    } catch (err) {
      fs.rmSync(dir, { recursive: true, force: true })
      throw err
    }
  }

  /** Spawn `bin` with fd 3 as the reply pipe; resolves once the process runs. */
  spawn (bin) {
    const env = { ...process.env }
    // The binary acks on fd 3 only when this is set, and nothing here reads an ack: a stray
    // {"ok":true} would become the answer to the first activation and shift every later one.
    delete env.__OW_WAIT_FOR_ACK
    for (const name of PER_ACTIVATION_ENV) delete env[name]
    env[MULTIPLEX] = '1'
    const seal = path.join(path.dirname(this.bin), SEAL)
    if (fs.existsSync(seal)) env.IMS_ACTION_SEAL = seal
    const child = spawn(bin, [], { stdio: ['pipe', 'inherit', 'inherit', 'pipe'], env })
    return new Promise((resolve, reject) => {
      child.once('error', reject)
      child.once('spawn', () => {
        child.removeListener('error', reject)
        this.attach(child)
        resolve(child)
      })
    })
  }

  attach (child) {
    child.waiting = new Map() // id -> { resolve, timer }: its activations in flight
    child.late = new Set() // ids answered 504 here: their replies may still come, and are dropped
    const replies = child.stdio[3]
    let buffered = ''
    replies.setEncoding('utf8')
    replies.on('data', chunk => {
      buffered += chunk
      let newline
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, newline).trim()
        buffered = buffered.slice(newline + 1)
        if (line) this.reply(child, line)
      }
    })
    // A write to a dead child's stdin fails with EPIPE; 'close' below reports the exit.
    child.stdin.on('error', () => {})
    replies.on('error', () => {})
    child.on('error', err => log(`ims-action binary error: ${err.code || err.message}`))
    // From its exit on, no new activation goes to this child.
    child.on('exit', () => this.forget(child))
    // 'close' comes after the exit *and* after fd 3 is drained, so a reply written just before
    // exiting is still delivered first.
    child.on('close', (code, signal) => {
      this.forget(child)
      const message = `ims-action binary exited unexpectedly (code ${code}, signal ${signal}); it will be restarted`
      log(message)
      for (const id of [...child.waiting.keys()]) this.settle(child, id, errorResult(502, message))
    })
    this.busy(child, false)
  }

  forget (child) {
    if (this.child === child) this.child = null
  }

  reply (child, line) {
    const space = line.indexOf(' ')
    const id = space > 0 ? line.slice(0, space) : ''
    if (!child.waiting.has(id)) {
      if (child.late.delete(id)) {
        log(`the late reply of activation ${id} (already answered 504) is dropped`)
        return
      }
      // A second line for one activation, or an id no one sent: the stream can no longer be
      // trusted to pair answers with activations, so stop this child (its activations in
      // flight get a 502 each; the next activation starts a fresh one).
      log(`unexpected ${line.length}-byte line on fd 3 with no activation waiting for it; stopping the binary`)
      this.forget(child)
      child.kill('SIGKILL')
      return
    }
    let result
    try {
      result = JSON.parse(line.slice(space + 1))
    } catch (err) {
      log(`the binary's reply is not JSON (${line.length} bytes)`)
      result = errorResult(502, 'the ims-action binary returned a reply that is not JSON')
    }
    if (result === null || typeof result !== 'object') {
      result = errorResult(502, 'the ims-action binary did not return a dictionary or array')
    }
    this.settle(child, id, result)
  }

  /** Keep the event loop alive only while an activation is in flight, so an idle child never
   *  holds a process open (tests, `aio app dev`, scripts calling main()). */
  busy (child, busy) {
    for (const handle of [child, child.stdin, child.stdio[3]]) {
      if (handle) busy ? handle.ref() : handle.unref()
    }
  }
}

/** The launcher of `bin` for this process: the one a previous load of this module started, if any. */
function sharedLauncher (bin = BIN) {
  const launchers = globalThis[REGISTRY] || (globalThis[REGISTRY] = new Map())
  const key = path.resolve(bin)
  if (!launchers.has(key)) launchers.set(key, new Launcher(key))
  return launchers.get(key)
}

/** The action: one activation = one request/reply with the long-lived binary, at once with the others. */
async function main (params) {
  // Read the __OW_* values now: with concurrency > 1 the runtime overwrites them for the next activation.
  const context = activationContext(process.env)
  return sharedLauncher().run(params || {}, context)
}

exports.main = main // module.exports.main: what the Node.js runtime (and webpack's commonjs2 bundle) calls
exports.Launcher = Launcher
exports.sharedLauncher = sharedLauncher
exports.activationContext = activationContext
