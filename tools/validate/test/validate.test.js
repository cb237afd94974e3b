// The validator must pass this repository's descriptors and reject broken ones, with Adobe's
// schema errors for what the schema covers and its own errors for the rest.
//   node --test tools/validate/test/      (after npm ci in tools/validate; scripts/validate.sh does both)
'use strict'

const { test, after } = require('node:test')
const assert = require('node:assert/strict')
const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const ROOT = path.join(__dirname, '..', '..', '..')
const VALIDATE = path.join(__dirname, '..', 'validate.js')
const FILES = ['app.config.yaml', 'ext.config.yaml', 'manifest.yaml', '.env.example',
  'actions/ims-action/index.js', 'scripts/build-launcher.sh', 'web-src/index.html']

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'ims-action-validate-test-'))
after(() => fs.rmSync(scratch, { recursive: true, force: true }))

let copies = 0
/** A copy of the descriptors, with `edits` ({file: text => text}) applied. */
function copyRoot (edits = {}) {
  const dir = path.join(scratch, `root-${++copies}`)
  for (const file of FILES) {
    fs.mkdirSync(path.dirname(path.join(dir, file)), { recursive: true })
    let text = fs.readFileSync(path.join(ROOT, file), 'utf8')
    if (edits[file]) {
      const edited = edits[file](text)
      assert.notEqual(edited, text, `the edit of ${file} changed nothing`)
      text = edited
    }
    fs.writeFileSync(path.join(dir, file), text)
  }
  return dir
}

function validate (root) {
  const r = spawnSync(process.execPath, [VALIDATE, '--root', root], { encoding: 'utf8' })
  return { status: r.status, output: r.stdout + r.stderr }
}

test('this repository\'s descriptors pass', () => {
  const { status, output } = validate(ROOT)
  assert.equal(status, 0, output)
  assert.match(output, /ok: app.config.yaml \+ ext.config.yaml load with @adobe\/aio-cli-lib-app-config 4\.2\.0/)
  assert.match(output, /extension dx\/excshell\/1, view web-src\/index.html, /)
  assert.match(output, /ims-action\/aem-quota, ims-action\/analytics-report, ims-action\/aem-get, ims-action\/health/)
})

test('Adobe\'s schema: a top-level web-export on an action is rejected', () => {
  const root = copyRoot({ 'ext.config.yaml': t => t.replace("          web: 'yes' #", "          web-export: true\n          web: 'yes' #") })
  const { status, output } = validate(root)
  assert.equal(status, 1, output)
  assert.match(output, /\(Adobe's loader\): Missing or invalid keys in app.config.yaml/)
  assert.match(output, /web-export/)
})

test('Adobe\'s schema: a number as an annotation value is rejected', () => {
  const root = copyRoot({ 'ext.config.yaml': t => t.replace('            final: true\n', '            final: true\n            require-whisk-auth: 1234\n') })
  const { status, output } = validate(root)
  assert.equal(status, 1, output)
  assert.match(output, /Missing or invalid keys/)
})

test('Adobe\'s schema: an extension without operations is rejected', () => {
  const root = copyRoot({ 'ext.config.yaml': t => t.replace('operations:\n  view:\n    - type: web\n      impl: index.html\n', '') })
  const { status, output } = validate(root)
  assert.equal(status, 1, output)
  assert.match(output, /"missingProperty": "operations"/)
})

test('a headless application instead of the extension is caught', () => {
  const root = copyRoot({ 'app.config.yaml': t => t.replace('extensions:\n  dx/excshell/1:\n    $include: ext.config.yaml', 'application:\n  $include: ext.config.yaml') })
  const { status, output } = validate(root)
  assert.equal(status, 1, output)
  assert.match(output, /app.config.yaml declares no dx\/excshell\/1 extension/)
})

test('a view whose page does not exist is caught', () => {
  const root = copyRoot({ 'ext.config.yaml': t => t.replace('      impl: index.html', '      impl: health.html') })
  const { status, output } = validate(root)
  assert.equal(status, 1, output)
  assert.match(output, /the view's page web-src\/health.html does not exist/)
})

test('a missing health action (the view calls it) is caught', () => {
  const root = copyRoot({ 'ext.config.yaml': t => t.replace('        health:\n', '        status:\n') })
  const { status, output } = validate(root)
  assert.equal(status, 1, output)
  assert.match(output, /status: inputs.OPERATION is "health", expected status/)
  assert.match(output, /no action for OPERATION health/)
})

test('web: \'true\' (a string) is caught: aio would not make a web action', () => {
  const root = copyRoot({ 'ext.config.yaml': t => t.replace("web: 'yes' # only", "web: 'true' # only") })
  const { status, output } = validate(root)
  assert.equal(status, 1, output)
  assert.match(output, /aem-quota: web is "true"/)
})

test('a missing final, concurrency or include is caught', () => {
  const root = copyRoot({
    'ext.config.yaml': t => t
      .replace('            final: true\n', '') // the first: aem-quota's
      .replace('            concurrency: 200\n', '')
      .replace('            - ["actions/ims-action/bin/*", "bin/"]\n', '            - ["actions/ims-action/bin/exec", "bin/"]\n') // no seal
  })
  const { status, output } = validate(root)
  assert.equal(status, 1, output)
  assert.match(output, /aem-quota: annotations.final must be true/)
  assert.match(output, /aem-quota: limits.concurrency must be set/)
  assert.match(output, /aem-quota: include must hold/)
})

test('an input variable that .env.example does not document is caught', () => {
  const root = copyRoot({ 'ext.config.yaml': t => t.replace('        LOG_LEVEL: $IMS_ACTION_LOG_LEVEL\n', '        LOG_LEVEL: $IMS_ACTION_LOG_LEVEL\n        NEW_SETTING: ${NEW_SETTING}\n') })
  const { status, output } = validate(root)
  assert.equal(status, 1, output)
  assert.match(output, /\.env\.example does not document \$NEW_SETTING/)
})

test('LOG_LEVEL taken from .env (aio\'s own log level) is caught, in ext.config.yaml, manifest.yaml and .env.example', () => {
  const root = copyRoot({
    'ext.config.yaml': t => t.replace('        LOG_LEVEL: $IMS_ACTION_LOG_LEVEL\n', '        LOG_LEVEL: $LOG_LEVEL\n'),
    '.env.example': t => t.replace('\nIMS_ACTION_LOG_LEVEL=\n', '\nIMS_ACTION_LOG_LEVEL=\nLOG_LEVEL=\n')
  })
  const { status, output } = validate(root)
  assert.equal(status, 1, output)
  assert.match(output, /an input takes \$LOG_LEVEL from \.env: use \$IMS_ACTION_LOG_LEVEL/)
  assert.match(output, /\.env\.example offers LOG_LEVEL/)
  const manifestOnly = copyRoot({ 'manifest.yaml': t => t.replace('      LOG_LEVEL: $IMS_ACTION_LOG_LEVEL\n', '      LOG_LEVEL: ${LOG_LEVEL}\n') })
  const second = validate(manifestOnly)
  assert.equal(second.status, 1, second.output)
  assert.match(second.output, /an input takes \$LOG_LEVEL from \.env/)
})

test('manifest.yaml: an action with neither docker nor native is caught', () => {
  const root = copyRoot({ 'manifest.yaml': t => t.replace('        native: true\n        web: true\n        inputs:\n          OPERATION: aem-get', '        web: true\n        inputs:\n          OPERATION: aem-get') })
  const { status, output } = validate(root)
  assert.equal(status, 1, output)
  assert.match(output, /ims-action\/aem-get-native: needs docker/)
})
