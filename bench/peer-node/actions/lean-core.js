'use strict'
// BENCH(lean): stands in for `Core` of @adobe/aio-sdk in the lean variants, which differ from
// Adobe's samples in that one require line only (bench/run.py checks this). Core.Logger(name,
// { level }) returns a console logger with the levels and line format of aio-lib-core-logging.
const LEVELS = ['error', 'warn', 'info', 'verbose', 'debug', 'silly']

function Logger (name, { level = 'info' } = {}) {
  const max = LEVELS.indexOf(level) < 0 ? 2 : LEVELS.indexOf(level)
  const logger = {}
  LEVELS.forEach((lvl, i) => {
    logger[lvl] = (...args) => {
      if (i > max) return
      const text = args.map((a) => (a instanceof Error ? a.stack : typeof a === 'string' ? a : JSON.stringify(a))).join(' ')
      const line = `${new Date().toISOString()} [${name}] ${lvl}: ${text}\n`
      if (i === 0) process.stderr.write(line)
      else process.stdout.write(line)
    }
  })
  logger.log = logger.info
  return logger
}

module.exports = { Core: { Logger } }
