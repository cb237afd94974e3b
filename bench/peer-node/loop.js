'use strict'
// A warm Node.js container for bench/imsbench, driven like ims-action's actionloop: it loads
// ACTION once, then for every line {"value": params, "deadline", "activation_id"} on stdin calls
// main(params) and writes the result as one JSON line on fd 3. Activations run one at a time.
//
//   node loop.js ACTION     ACTION: a directory under actions/, or an absolute module path
const fs = require('fs')
const readline = require('readline')
const { loadAction, setActivationEnv } = require('./runtime')

async function run () {
  const action = process.argv[2]
  if (!action) {
    process.stderr.write('usage: node loop.js ACTION\n')
    process.exit(2)
  }
  const { main } = loadAction(action)
  const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity })
  let n = 0
  for await (const line of lines) {
    if (!line.trim()) continue
    n++
    let reply
    try {
      const activation = JSON.parse(line)
      setActivationEnv(n, Number(activation.deadline) || undefined)
      reply = await main({ ...activation.value })
    } catch (e) {
      reply = { error: `loop.js: ${e && e.message ? e.message : e}` }
    }
    fs.writeSync(3, JSON.stringify(reply === undefined ? {} : reply) + '\n')
  }
}

run().catch((e) => {
  process.stderr.write(`loop.js: ${e && e.stack ? e.stack : e}\n`)
  process.exit(1)
})
