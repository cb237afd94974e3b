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
 *   - per activation, one JSON line on the child's stdin
 *       {"value": params, "namespace", "action_name", "action_version", "activation_id",
 *        "transaction_id", "deadline", "api_key"}
 *     (api_key only when the runtime sets __OW_API_KEY, as the Go ActionLoop proxy does) and one
 *     JSON line back on the child's fd 3, which is the action's result;
 *   - the child's environment is this process's, minus the per-activation __OW_* variables (they
 *     would be stale from the second activation on; the line carries them), plus IMS_ACTION_SEAL
 *     naming bin/ims-action.seal.json when the build put one there (the child may run from a copy
 *     in the temp dir, where it cannot find the seal next to itself);
 *   - the child's stdout/stderr are inherited, so its log lines land in this activation's log in
 *     order (the binary flushes them before it replies on fd 3);
 *   - activations are queued and sent one at a time: the container may run up to `concurrency`
 *     activations at once (Adobe's default is 200), the protocol has one request in flight;
 *   - a child that dies mid-activation fails that activation with a 502 and is restarted by the next.
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
    this.child = null // the running child, if any
    this.pending = null // the activation in flight: { child, resolve }
    this.queue = Promise.resolve() // activations run one after the other on this chain
    this.tmpCopy = null // the copy in os.tmpdir(), made once if bin/exec cannot be chmod-ed or executed
  }

  /** The pid of the running child (undefined when none): tests use it. */
  get pid () {
    return this.child ? this.child.pid : undefined
  }

  /** Queue one activation; resolves with its result (never rejects). */
  run (params, context) {
    const turn = this.queue.then(() => this.activate(params, context))
    this.queue = turn.catch(() => {})
    return turn.catch(err => errorResult(502, `ims-action launcher failed: ${err.message}`))
  }

  async activate (params, context) {
    const deadline = Number(context.deadline)
    if (deadline && Date.now() >= deadline) {
      // The platform has already given up on this activation while it waited in the queue.
      return errorResult(504, 'the activation deadline passed while it waited for earlier activations')
    }
    if (!this.child) {
      try {
        await this.start()
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
    const line = JSON.stringify({ value: params, ...context }) + '\n'
    return new Promise(resolve => {
      this.pending = { child, resolve }
      this.busy(child, true)
      child.stdin.write(line)
    }).finally(() => {
      this.pending = null
      this.busy(child, false)
    })
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
      if (this.pending && this.pending.child === child) this.pending.resolve(errorResult(502, message))
    })
    this.busy(child, false)
  }

  forget (child) {
    if (this.child === child) this.child = null
  }

  reply (child, line) {
    if (!this.pending || this.pending.child !== child) {
      // More than one line for one activation: the stream can no longer be trusted to pair
      // answers with activations, so stop this child (the next activation starts a fresh one).
      log(`unexpected ${line.length}-byte line on fd 3 with no activation waiting; stopping the binary`)
      this.forget(child)
      child.kill('SIGKILL')
      return
    }
    let result
    try {
      result = JSON.parse(line)
    } catch (err) {
      log(`the binary's reply is not JSON (${line.length} bytes)`)
      result = errorResult(502, 'the ims-action binary returned a reply that is not JSON')
    }
    if (result === null || typeof result !== 'object') {
      result = errorResult(502, 'the ims-action binary did not return a dictionary or array')
    }
    const { resolve } = this.pending
    this.pending = null
    resolve(result)
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

/** The action: one activation = one request/reply with the long-lived binary. */
async function main (params) {
  // Read the __OW_* values now: with concurrency > 1 the runtime overwrites them for the next activation.
  const context = activationContext(process.env)
  return sharedLauncher().run(params || {}, context)
}

exports.main = main // module.exports.main: what the Node.js runtime (and webpack's commonjs2 bundle) calls
exports.Launcher = Launcher
exports.sharedLauncher = sharedLauncher
exports.activationContext = activationContext
