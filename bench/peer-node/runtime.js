'use strict'
// What run.js and loop.js share with the OpenWhisk Node.js runtime they stand in for: loading
// the action module, and the per-activation __OW_* variables the runtime sets before calling
// main (the App Builder launcher reads __OW_DEADLINE and __OW_ACTIVATION_ID from them).
const path = require('path')

function loadAction (action) {
  return require(path.isAbsolute(action) ? action : path.join(__dirname, 'actions', action))
}

function setActivationEnv (n, deadlineMs) {
  process.env.__OW_ACTIVATION_ID = `bench${String(n).padStart(8, '0')}`
  process.env.__OW_DEADLINE = String(deadlineMs || Date.now() + 600000)
}

module.exports = { loadAction, setActivationEnv }
