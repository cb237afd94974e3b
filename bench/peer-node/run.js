'use strict'
// Runner for the peer actions, standing in for the OpenWhisk Node.js runtime:
//
//   node run.js ACTION PARAMS_JSON              one activation: prints main(params)'s result as
//                                               the last stdout line, then exits (code 0 even
//                                               for an {error} result, like ims-action one-shot).
//   node run.js ACTION PARAMS_JSON --repeat N   N sequential activations in this one process (a
//                                               warm container's best case), then one summary
//                                               line {"runs","ok","result","lat_us":[...]}.
//
// ACTION is a directory under actions/ (e.g. oauth-s2s-aem or oauth-s2s-aem-lean), or an absolute
// path to an action module (the App Builder launcher, actions/ims-action/index.js).
const { loadAction, setActivationEnv } = require('./runtime')

function isOk (result) {
  return !!result && typeof result === 'object' && !('error' in result) &&
    (result.statusCode === undefined || (result.statusCode >= 200 && result.statusCode < 300))
}

function finish (line, code) {
  process.stdout.write(line + '\n', () => process.exit(code))
}

async function run () {
  const [action, paramsJson, flag, count] = process.argv.slice(2)
  if (!action || !paramsJson) {
    process.stderr.write('usage: node run.js ACTION PARAMS_JSON [--repeat N]\n')
    process.exit(2)
  }
  const { main } = loadAction(action)
  const params = JSON.parse(paramsJson)
  if (flag !== '--repeat') {
    setActivationEnv(1)
    finish(JSON.stringify(await main({ ...params })), 0)
    return
  }
  const runs = parseInt(count, 10)
  const lat = []
  let ok = 0
  let result
  for (let i = 0; i < runs; i++) {
    setActivationEnv(i + 1)
    const t0 = process.hrtime.bigint()
    result = await main({ ...params })
    lat.push(Number(process.hrtime.bigint() - t0) / 1000)
    if (isOk(result)) ok++
  }
  finish(JSON.stringify({ runs, ok, result, lat_us: lat }), 0)
}

run().catch((e) => {
  process.stderr.write(`run.js: ${e && e.stack ? e.stack : e}\n`)
  process.exit(1)
})
