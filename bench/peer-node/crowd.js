'use strict'
// One container's Node process running many activations at once, as the OpenWhisk Node.js
// runtime does when an action's `limits.concurrency` is above 1: the action is required once and
// every activation is a `main(params)` call on the same module, the __OW_* variables set just
// before each call (the runtime sets them per activation; actions read them at once).
//
//   node crowd.js ACTION PARAMS_JSON     ACTION: a directory under actions/, or an absolute module path
//
// Then, driven by bench/imsbench/crowd.py: it writes {"ready":true} on fd 3 once the action is
// loaded; for every line {"n": N} on stdin it starts N main() calls in one go (one tick, nothing
// awaited in between), waits for all of them and writes one line on fd 3:
//   {"n", "ok", "ms": [each activation's time from the burst's start to its answer, in call order],
//    "failed": [the indexes of the activations whose result is an error], "issued_ms": time to
//    start all N calls, "errors": [the first few failed results, cut short],
//    "rss_kib": {"self": this process's peak RSS, "children": [each child process's peak RSS]}}
// Stdin's end ends the process (and with it the launcher's child, whose stdin closes).
// The results go to fd 3 so that whatever the action logs on stdout/stderr cannot mix with them.
const fs = require('fs')
const readline = require('readline')
const { loadAction, setActivationEnv } = require('./runtime')

const MAX_ERRORS = 3

function isOk (result) {
  return !!result && typeof result === 'object' && !('error' in result) &&
    (result.statusCode === undefined || (result.statusCode >= 200 && result.statusCode < 300))
}

function reply (obj) {
  fs.writeSync(3, JSON.stringify(obj) + '\n')
}

/** VmHWM (peak resident set) of a process, in KiB, or null when /proc does not say. */
function peakRss (pid) {
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m ? Number(m[1]) : null
  } catch (e) {
    return null
  }
}

/** This process's children (the App Builder launcher's binary), from /proc/self/task/TID/children. */
function childPids () {
  const pids = []
  try {
    for (const tid of fs.readdirSync('/proc/self/task')) {
      const text = fs.readFileSync(`/proc/self/task/${tid}/children`, 'utf8').trim()
      if (text) pids.push(...text.split(/\s+/).map(Number))
    }
  } catch (e) {
    // a kernel without CONFIG_PROC_CHILDREN: no child figures
  }
  return pids
}

async function burst (main, params, n, counter) {
  const t0 = process.hrtime.bigint()
  const ms = new Array(n)
  const results = new Array(n)
  const calls = []
  for (let i = 0; i < n; i++) {
    // main() is called right after its variables are set, before the next activation's: the
    // launcher reads them synchronously, as actions under the Node.js runtime must.
    setActivationEnv(counter + i + 1)
    let call
    try {
      call = Promise.resolve(main({ ...params }))
    } catch (e) {
      call = Promise.reject(e)
    }
    calls.push(call
      .catch(e => ({ error: `crowd.js: main threw: ${e && e.message ? e.message : e}` }))
      .then(result => {
        ms[i] = Number(process.hrtime.bigint() - t0) / 1e6
        results[i] = result
      }))
  }
  const issuedMs = Number(process.hrtime.bigint() - t0) / 1e6
  await Promise.all(calls)
  const failed = []
  results.forEach((r, i) => { if (!isOk(r)) failed.push(i) })
  return {
    n,
    ok: n - failed.length,
    ms,
    failed,
    issued_ms: issuedMs,
    errors: failed.slice(0, MAX_ERRORS)
      .map(i => JSON.stringify(results[i] === undefined ? null : results[i]).slice(0, 300)),
    rss_kib: { self: peakRss('self'), children: childPids().map(peakRss).filter(x => x !== null) }
  }
}

async function run () {
  const [action, paramsJson] = process.argv.slice(2)
  if (!action || !paramsJson) {
    process.stderr.write('usage: node crowd.js ACTION PARAMS_JSON  (then {"n": N} lines on stdin)\n')
    process.exit(2)
  }
  const { main } = loadAction(action)
  const params = JSON.parse(paramsJson)
  reply({ ready: true })
  const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity })
  let counter = 0
  for await (const line of lines) {
    if (!line.trim()) continue
    const n = Number(JSON.parse(line).n)
    if (!Number.isInteger(n) || n < 1) throw new Error(`bad burst size in ${line.slice(0, 80)}`)
    reply(await burst(main, params, n, counter))
    counter += n
  }
  process.exit(0)
}

run().catch((e) => {
  process.stderr.write(`crowd.js: ${e && e.stack ? e.stack : e}\n`)
  process.exit(1)
})
