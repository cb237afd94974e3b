/*
 * Credential health: the web view of ims-action's `health` operation (docs/health.md).
 *
 * Plain ES modules and no framework: one screen of cards does not need one. `aio app build`
 * bundles the page with Parcel; `make ui` serves these files as they are. Everything the action
 * returns goes into the page as text (textContent), never as HTML.
 *
 * In the Experience Cloud Shell (the page is framed), shell.js passes the user's IMS token and
 * org, sent as `Authorization` and `x-gw-ims-org-id`; outside it the action is called directly.
 */
// Action URLs by `package/action`: written by `aio app build` (and served by `make ui`).
import actions from './config.json' with { type: 'json' }

const HEALTH_ACTION = 'ims-action/health'
const STATES = {
  ok: { word: 'OK', icon: '✓' },
  warning: { word: 'Warning', icon: '!' },
  error: { word: 'Error', icon: '✕' }
}

const page = {
  summary: document.getElementById('summary'),
  problem: document.getElementById('problem'),
  cards: document.getElementById('cards'),
  quota: document.getElementById('quota'),
  check: document.getElementById('check')
}

let auth = {} // { token, org } from the shell; empty outside it
let busy = false

/** `el('p', { class: 'x' }, 'text', child…)`: an element with attributes and text or children. */
function el (tag, attributes = {}, ...children) {
  const node = document.createElement(tag)
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value)
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child)
  }
  return node
}

/** `2026-12-02T14:08:09Z` → `2026-12-02 14:08 UTC`. */
function when (iso) {
  return typeof iso === 'string' && iso.length >= 16 ? `${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC` : String(iso)
}

function plural (n, one, many) {
  return `${n} ${n === 1 ? one : many}`
}

function daysLeft (days) {
  if (days > 0) return `${plural(days, 'day', 'days')} left`
  if (days === 0) return 'expires today'
  return `expired ${plural(-days, 'day', 'days')} ago`
}

async function requestHealth (check) {
  const target = actions[HEALTH_ACTION]
  if (!target) {
    throw new Error(`This build does not know the URL of the ${HEALTH_ACTION} action (web-src/src/config.json is written by aio app build).`)
  }
  const url = new URL(target, window.location.href)
  if (check) url.searchParams.set('check', 'true')
  const headers = { accept: 'application/json' }
  if (auth.token) {
    headers.authorization = `Bearer ${auth.token}`
    headers['x-gw-ims-org-id'] = auth.org
  }
  const response = await fetch(url, { headers, cache: 'no-store' })
  let body = null
  try {
    body = await response.json()
  } catch {
    // Not JSON: said below.
  }
  if (!response.ok) {
    const reason = body && typeof body.error === 'string' ? body.error : 'no explanation'
    throw new Error(`The health action answered HTTP ${response.status}: ${reason}`)
  }
  if (!body || !Array.isArray(body.credentials)) {
    throw new Error('The health action did not answer with a health report.')
  }
  return body
}

function row (term, ...details) {
  return [el('dt', {}, term), el('dd', {}, ...details)]
}

function card (credential, checked) {
  const state = STATES[credential.state] ? credential.state : 'error'
  const titleId = `card-${credential.kind}`
  const header = el('header', {},
    el('h3', { id: titleId }, credential.title || credential.kind),
    el('span', { class: 'badge' }, el('span', { 'aria-hidden': 'true', class: 'icon' }, STATES[state].icon), ` ${STATES[state].word}`))

  const reasons = credential.reasons || []
  const why = reasons.length
    ? el('ul', { class: 'reasons' }, ...reasons.map(reason => el('li', {}, reason)))
    : el('p', { class: 'reasons fine' }, 'Nothing to do.')

  const details = []
  if (credential.client_id) details.push(...row('Client ID', el('code', {}, credential.client_id)))
  if (credential.org) details.push(...row('Organization', el('code', {}, credential.org)))
  if (credential.technical_account) details.push(...row('Technical account', el('code', {}, credential.technical_account)))
  if (Array.isArray(credential.scopes)) details.push(...row('Scopes', credential.scopes.join(', ') || 'none'))
  if (credential.environment) {
    details.push(...row('Environment', `program ${credential.environment.program} · environment ${credential.environment.environment}`))
  }
  if (credential.certificate) {
    const { not_after: notAfter, days_left: days } = credential.certificate
    details.push(...row('Certificate', `expires ${when(notAfter)} · `, el('strong', { class: 'days' }, daysLeft(days))))
  }
  const memory = credential.token && credential.token.memory
  details.push(...row('Token', memory && memory.present
    ? `fetched ${when(memory.obtained_at)} · expires ${when(memory.expires_at)}`
    : 'none cached in this container'))
  const store = credential.token && credential.token.store
  if (store) {
    const text = store.present ? `expires ${when(store.expires_at)}` : (store.error || 'none')
    details.push(...row(`Token in the shared store (${store.kind})`, text))
  }
  const check = credential.check
  let checkText = checked ? 'not checked' : 'not checked yet'
  if (check && check.ok) checkText = credential.kind === 'dev-token' ? 'the token is used as is (no IMS call)' : 'IMS issued a token'
  else if (check) checkText = check.error
  details.push(...row('Last check', checkText))

  return el('li', { class: `card ${state}`, 'data-kind': credential.kind, 'data-state': state },
    el('article', { 'aria-labelledby': titleId },
      header,
      credential.active ? el('p', { class: 'active' }, 'Used by the action') : null,
      why,
      el('dl', {}, ...details)))
}

/** The quota object of the AEM Data Service answer (`data.contentRequestsQuota`). */
function quotaOf (body) {
  const q = body && body.data && body.data.contentRequestsQuota
  return q && typeof q === 'object' ? q : null
}

function renderQuota (quota, checked) {
  let state = 'none'
  let content
  if (quota === null || quota === undefined) {
    content = el('p', {}, checked
      ? 'No quota for the active credential: a developer token cannot ask for it, and OAuth needs IMS_ORG_ID.'
      : 'Press “Check now” to ask the AEM Data Service for the content-request quota.')
  } else if (!quota.ok) {
    state = 'error'
    content = el('p', {}, `The quota could not be read: ${quota.error}`)
  } else {
    state = 'ok'
    const q = quotaOf(quota.body)
    const parts = []
    if (q) {
      const limit = typeof q.limit === 'number' ? new Intl.NumberFormat('en-US').format(q.limit) : String(q.limit)
      parts.push(...row('Limit', el('strong', { class: 'limit' }, limit), ` ${q.unit === 'contentRequests' ? 'content requests' : q.unit || ''}`))
      if (q.period) parts.push(...row('Period', `${q.period}${q.startDate ? ` · ${q.startDate} to ${q.endDate}` : ''}`))
      if (q.product) parts.push(...row('Product', q.product))
    }
    content = el('div', {},
      parts.length ? el('dl', {}, ...parts) : el('p', {}, 'The AEM Data Service answered; see the full answer.'),
      el('details', {}, el('summary', {}, 'Full answer'), el('pre', {}, JSON.stringify(quota.body, null, 2))))
  }
  page.quota.replaceChildren(content)
  page.quota.className = `quota ${state}`
  page.quota.dataset.state = state
}

function render (report, checked) {
  const credentials = report.credentials
  page.cards.replaceChildren(...credentials.map(c => card(c, checked)))
  renderQuota(report.quota, checked)
  if (!credentials.length) {
    page.summary.textContent = 'No credentials are configured: set one credential kind\'s inputs (see .env.example).'
    return
  }
  const count = state => credentials.filter(c => c.state === state).length
  page.summary.textContent = `${plural(credentials.length, 'credential', 'credentials')}: ` +
    `${count('ok')} OK, ${plural(count('warning'), 'warning', 'warnings')}, ${plural(count('error'), 'error', 'errors')}. ` +
    `${checked ? 'Checked with Adobe at' : 'Report of'} ${when(report.generated_at)}.`
}

function showProblem (message) {
  page.problem.textContent = message
  page.problem.hidden = false
}

async function load (check) {
  if (busy) return
  busy = true
  page.check.setAttribute('aria-disabled', 'true')
  page.check.textContent = check ? 'Checking…' : 'Check now'
  page.cards.setAttribute('aria-busy', 'true')
  try {
    const report = await requestHealth(check)
    page.problem.hidden = true
    render(report, check)
  } catch (err) {
    showProblem(err.message)
    page.summary.textContent = 'The health report could not be loaded.'
  } finally {
    busy = false
    // The button stays focusable while busy (aria-disabled, not disabled): keyboard focus stays put.
    page.check.removeAttribute('aria-disabled')
    page.check.textContent = 'Check now'
    page.cards.setAttribute('aria-busy', 'false')
  }
}

/** Shows the report, calling the action as `shellAuth` ({ token, org }) or directly when empty. */
export function start (shellAuth = {}) {
  if (shellAuth.token === auth.token && shellAuth.org === auth.org && page.cards.dataset.started) return
  auth = shellAuth
  page.cards.dataset.started = 'true'
  return load(false)
}

page.check.addEventListener('click', () => load(true))

function framed () {
  try {
    return window.self !== window.top
  } catch {
    return true // a cross-origin parent: framed
  }
}

if (framed()) {
  import('./shell.js')
    .then(shell => shell.connect(start))
    .catch(() => start()) // framed, but not by the shell: run as a local page
} else {
  start()
}
