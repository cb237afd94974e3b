#!/usr/bin/env node
// Validates the deployment descriptors of ims-action.
//
//   node tools/validate/validate.js [--root DIR]      (scripts/validate.sh installs and runs it)
//
// 1. app.config.yaml (+ the ext.config.yaml it includes) is loaded by Adobe's own loader,
//    @adobe/aio-cli-lib-app-config `load()`, the function `aio app build/deploy` call: it resolves
//    `$include`, validates against Adobe's JSON schema, and builds the per-app config. `aio`
//    also needs a package.json next to app.config.yaml; when the repository has none, the files are
//    loaded from a staging folder with a generated one (as scripts/deploy-aio.sh does) and a
//    warning says so.
// 2. Checks the schema does not make, for what aio-lib-runtime will deploy: the Experience Cloud
//    Shell extension and its web view (web-src/index.html), and each action's function, runtime,
//    web flag, include, limits, annotations and OPERATION input (one action per operation).
// 3. manifest.yaml (wskdeploy): packages, actions, zip, image/native, web.
// 4. Every `$VAR` of every input is documented in .env.example.
// Exits 1 on any error; prints warnings for what is only advice.
'use strict'

const fs = require('fs')
const os = require('os')
const path = require('path')
const yaml = require('js-yaml')
const appConfig = require('@adobe/aio-cli-lib-app-config')

const args = process.argv.slice(2)
const rootArg = args.indexOf('--root')
const ROOT = path.resolve(rootArg >= 0 ? args[rootArg + 1] : path.join(__dirname, '..', '..'))
// The API operations, which manifest.yaml (wskdeploy) deploys; aio also deploys `health`, which
// the web view calls.
const OPERATIONS = ['aem-quota', 'analytics-report', 'aem-get']
const AIO_OPERATIONS = [...OPERATIONS, 'health']
const EXTENSION = 'dx/excshell/1' // the Experience Cloud Shell extension point
const LAUNCHER = 'actions/ims-action/index.js'
const BINARY = 'actions/ims-action/bin/exec'
// What `include` must ship: all of bin/, i.e. exec and the seal (ims-action.seal.json).
const BINARY_GLOB = 'actions/ims-action/bin/*'

const errors = []
const warnings = new Set()
const error = message => errors.push(message)
const warn = message => warnings.add(message)

/** `$VAR` / `${VAR}` names in a value, with the regex aio-lib-runtime's processInputs uses. */
function variables (value) {
  if (typeof value !== 'string') return []
  return [...value.matchAll(/(\$\{|\$\{ +|\$)([a-zA-Z0-9_-]+)( +\}|\}|)/g)].map(m => m[2])
}

/** Loads app.config.yaml exactly as `aio` does, from a staging folder when package.json is missing. */
async function loadAppConfig () {
  let cwd = ROOT
  if (!fs.existsSync(path.join(ROOT, 'package.json'))) {
    warn('no package.json next to app.config.yaml: `aio app deploy` needs one there ' +
      '(scripts/deploy-aio.sh stages a generated one); validating with a generated package.json')
    cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'ims-action-validate-'))
    for (const name of fs.readdirSync(ROOT)) {
      if (name === 'package.json' || name === '.git' || name === 'node_modules') continue
      fs.symlinkSync(path.join(ROOT, name), path.join(cwd, name))
    }
    fs.writeFileSync(path.join(cwd, 'package.json'),
      JSON.stringify({ name: 'ims-action', version: '0.1.0', private: true }, null, 2))
  }
  const previous = process.cwd()
  process.chdir(cwd)
  try {
    return await appConfig.load({ validateAppConfig: true, ignoreAioConfig: true })
  } finally {
    process.chdir(previous)
    if (cwd !== ROOT) fs.rmSync(cwd, { recursive: true, force: true })
  }
}

function checkAioAction (pkgName, name, action, packageInputs, cwdRoot) {
  const where = `ext.config.yaml: ${pkgName}/${name}`
  const rel = p => path.relative(cwdRoot, p)
  if (!action.function) return error(`${where}: no function`)
  if (rel(action.function) !== LAUNCHER) error(`${where}: function is ${rel(action.function)}, expected ${LAUNCHER}`)
  if (!fs.existsSync(path.join(ROOT, rel(action.function)))) error(`${where}: function ${rel(action.function)} does not exist`)
  if (action.docker) error(`${where}: docker is set, which makes a blackbox action (restricted on Adobe I/O Runtime)`)
  if (action.runtime !== 'nodejs:22') error(`${where}: runtime is ${action.runtime}, expected nodejs:22`)
  if (![true, 'yes', 'raw'].includes(action.web)) {
    error(`${where}: web is ${JSON.stringify(action.web)}: only true, 'yes' or 'raw' make a web action`)
  }
  const include = action.include || []
  const ships = include.some(entry => Array.isArray(entry) && rel(entry[0]) === BINARY_GLOB && /^bin\/?$/.test(entry[1] || ''))
  if (!ships) error(`${where}: include must hold ["${BINARY_GLOB}", "bin/"] so that the zip has bin/exec and the seal`)
  if (!fs.existsSync(path.join(ROOT, BINARY))) {
    warn(`${BINARY} is not built yet (the pre-app-build hook, scripts/build-launcher.sh, builds it)`)
  }
  const limits = action.limits || {}
  if (!Number.isInteger(limits.concurrency) || limits.concurrency < 1) {
    error(`${where}: limits.concurrency must be set (Adobe's default is 200)`)
  }
  for (const key of ['timeout', 'memory']) {
    if (limits[key] === undefined) error(`${where}: limits.${key} must be set (a limits block resets it to aio's default)`)
  }
  if ('logs' in limits) error(`${where}: limits.logs is ignored by aio-lib-runtime; use logSize`)
  const annotations = action.annotations || {}
  if (annotations.final !== true) error(`${where}: annotations.final must be true (aio does not add it)`)
  if (typeof annotations['require-adobe-auth'] !== 'boolean') {
    error(`${where}: annotations.require-adobe-auth must be set explicitly (true or false)`)
  }
  const inputs = { ...packageInputs, ...(action.inputs || {}) }
  if (inputs.OPERATION !== name) error(`${where}: inputs.OPERATION is ${JSON.stringify(inputs.OPERATION)}, expected ${name}`)
  if ('IMS_ACTION_ALLOW_HOSTS' in inputs) {
    error(`${where}: IMS_ACTION_ALLOW_HOSTS is read from the environment only; as an input it would do nothing`)
  }
}

/** The extension's view: `operations.view` of type web, its page in the web folder. */
function checkView (ext) {
  const views = (ext.operations && ext.operations.view) || []
  const web = views.filter(v => v.type === 'web')
  if (!web.length) return error(`ext.config.yaml: ${EXTENSION} has no operations.view of type web (the page in the shell)`)
  if (!ext.app.hasFrontend) return error('ext.config.yaml: no `web:` folder holds the view (web: web-src)')
  for (const view of web) {
    const page = path.join(ext.web.src, view.impl)
    if (!fs.existsSync(path.join(ROOT, path.relative(ext.root, page)))) {
      error(`ext.config.yaml: the view's page ${path.relative(ext.root, page)} does not exist`)
    }
  }
}

function checkAio (config) {
  const app = config.all[EXTENSION]
  if (!app) return error(`app.config.yaml declares no ${EXTENSION} extension (extensions: ${EXTENSION}: $include: ext.config.yaml)`)
  if (config.all.application) warn('app.config.yaml also has an `application`: it would be deployed besides the extension')
  checkView(app)
  if (!app.app.hasBackend) error('ext.config.yaml: the extension has no runtimeManifest')
  const hook = app.hooks['pre-app-build']
  if (!hook) error('ext.config.yaml: no pre-app-build hook builds bin/exec')
  else {
    for (const script of hook.match(/scripts\/[\w.-]+\.sh/g) || []) {
      if (!fs.existsSync(path.join(ROOT, script))) error(`ext.config.yaml: hook script ${script} does not exist`)
    }
  }
  const packages = app.manifest.full.packages
  const names = []
  for (const [pkgName, pkg] of Object.entries(packages)) {
    for (const [name, action] of Object.entries(pkg.actions || {})) {
      names.push(`${pkgName}/${name}`)
      checkAioAction(pkgName, name, action, pkg.inputs || {}, config.root)
    }
  }
  for (const op of AIO_OPERATIONS) {
    if (!names.some(n => n.endsWith(`/${op}`))) error(`ext.config.yaml: no action for OPERATION ${op}`)
  }
  return { packages, names }
}

function checkManifest () {
  const file = path.join(ROOT, 'manifest.yaml')
  if (!fs.existsSync(file)) return error('manifest.yaml is missing')
  let manifest
  try {
    manifest = yaml.safeLoad(fs.readFileSync(file, 'utf8'))
  } catch (err) {
    return error(`manifest.yaml is not valid YAML: ${err.message}`)
  }
  const pkg = manifest && manifest.packages && manifest.packages['ims-action']
  if (!pkg) return error('manifest.yaml: no top-level packages.ims-action')
  let native = 0
  let actionloop = 0
  let launcher = 0
  for (const [name, action] of Object.entries(pkg.actions || {})) {
    const where = `manifest.yaml: ims-action/${name}`
    if (typeof action.runtime === 'string' && /^nodejs:/.test(action.runtime)) {
      launcher++
      if (action.function !== 'dist/ims-action-launcher.zip') {
        error(`${where}: a nodejs action must be the launcher, dist/ims-action-launcher.zip`)
      }
    } else {
      if (action.function !== 'dist/ims-action.zip') error(`${where}: function must be dist/ims-action.zip`)
      if (action.native === true) native++
      else if (typeof action.docker === 'string' && action.docker) actionloop++
      else error(`${where}: needs docker: <image>, native: true or runtime: nodejs:<n> (a zip needs one of them)`)
    }
    if (![true, 'yes', 'raw'].includes(action.web)) error(`${where}: web must be true`)
    const inputs = { ...(pkg.inputs || {}), ...(action.inputs || {}) }
    if (!OPERATIONS.includes(inputs.OPERATION)) error(`${where}: inputs.OPERATION must be one of ${OPERATIONS.join(', ')}`)
    const annotations = action.annotations || {}
    if (annotations.final !== true) error(`${where}: annotations.final must be true`)
    if (/golang/.test(action.docker || '')) {
      warn(`${where}: the action-golang images need a bin/exec.env file next to exec (OW_EXECUTION_ENV)`)
    }
  }
  if (!native) error('manifest.yaml: no native: true action')
  if (!actionloop) error('manifest.yaml: no action on an ActionLoop image (docker:)')
  if (!launcher) error('manifest.yaml: no nodejs launcher action (runtime: nodejs:<n>)')
  return manifest
}

/** Keys defined in .env.example (`KEY=` lines, commented out or not). */
function envExampleKeys () {
  const file = path.join(ROOT, '.env.example')
  if (!fs.existsSync(file)) {
    error('.env.example is missing')
    return new Set()
  }
  const keys = new Set()
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const m = line.match(/^\s*#?\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=/)
    if (m) keys.add(m[1])
  }
  return keys
}

function collectVariables (inputs, into) {
  for (const value of Object.values(inputs || {})) variables(value).forEach(v => into.add(v))
}

async function main () {
  let config
  try {
    config = await loadAppConfig()
  } catch (err) {
    console.error(`FAIL app.config.yaml / ext.config.yaml (Adobe's loader): ${err.message}`)
    process.exit(1)
  }
  const { packages, names } = checkAio(config) || {}
  const manifest = checkManifest()

  const used = new Set()
  for (const pkg of Object.values(packages || {})) {
    collectVariables(pkg.inputs, used)
    for (const action of Object.values(pkg.actions || {})) collectVariables(action.inputs, used)
  }
  for (const pkg of Object.values((manifest && manifest.packages) || {})) {
    collectVariables(pkg.inputs, used)
    for (const action of Object.values(pkg.actions || {})) collectVariables(action.inputs, used)
  }
  const documented = envExampleKeys()
  for (const v of used) {
    if (!documented.has(v)) error(`.env.example does not document $${v}, which an input uses`)
  }
  // aio loads .env into its own environment, where LOG_LEVEL is the level of aio's loggers (at
  // debug, `aio app dev` prints every input in clear): the action's level has its own variable.
  if (used.has('LOG_LEVEL')) error('an input takes $LOG_LEVEL from .env: use $IMS_ACTION_LOG_LEVEL (aio\'s own loggers read LOG_LEVEL)')
  if (documented.has('LOG_LEVEL')) error('.env.example offers LOG_LEVEL: that is aio\'s own log level; the action\'s is IMS_ACTION_LOG_LEVEL')

  for (const w of warnings) console.log(`warning: ${w}`)
  if (errors.length) {
    for (const e of errors) console.error(`FAIL ${e}`)
    console.error(`${errors.length} error(s)`)
    process.exit(1)
  }
  const version = require('@adobe/aio-cli-lib-app-config/package.json').version
  console.log(`ok: app.config.yaml + ext.config.yaml load with @adobe/aio-cli-lib-app-config ${version} ` +
    `(schema valid): extension ${EXTENSION}, view web-src/index.html, ${names.join(', ')}`)
  console.log(`ok: manifest.yaml: ${Object.keys(manifest.packages['ims-action'].actions).map(a => `ims-action/${a}`).join(', ')}`)
  console.log(`ok: .env.example documents all ${used.size} input variables`)
}

main().catch(err => {
  console.error(`FAIL ${err.stack || err}`)
  process.exit(1)
})
