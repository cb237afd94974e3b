'use strict'
// What run.js and loop.js share with the OpenWhisk Node.js runtime they stand in for: loading
// the action module, and the per-activation __OW_* variables the runtime sets before calling
// main (the App Builder launcher reads __OW_DEADLINE, __OW_ACTIVATION_ID and __OW_ACTION_NAME from
// them; the action's name, /namespace/package/action as OpenWhisk writes it, comes from
// IMSBENCH_ACTION_NAME, which the harness sets to the action the bench's seal binds).
const path = require('path')

function loadAction (action) {
  return require(path.isAbsolute(action) ? action : path.join(__dirname, 'actions', action))
}

function setActivationEnv (n, deadlineMs) {
  process.env.__OW_ACTIVATION_ID = `bench${String(n).padStart(8, '0')}`
  process.env.__OW_DEADLINE = String(deadlineMs || Date.now() + 600000)
  process.env.__OW_ACTION_NAME = process.env.IMSBENCH_ACTION_NAME || '/guest/bench/action'
}

module.exports = { loadAction, setActivationEnv }
