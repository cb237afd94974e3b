// The credential-health page in a real browser, against the emulator, through the `make ui` server:
// what a person sees for each credential state, the days left on the AEM certificate, IMS's
// refusal, the "Check now" round trip and the quota; keyboard use and contrast; no secret in the
// page or in any response; no console error; and Ctrl-C leaving nothing behind.
//
// The tests of the first `describe` share one server and run in order: a check caches tokens in
// the health action's process (cached tokens count), so the IMS refusal is shown before the first
// successful check.
'use strict'

const { test, describe, before, after } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const { startUi, injectFault, launchBrowser, watch, Secrets, screenshot, alive } = require('./harness')

const DEMO_ORG = 'DEMO0000000000000000@AdobeOrg'

/** The page after a report is on screen. */
async function settled (page) {
  await page.locator('#cards[aria-busy="false"] > li').first().waitFor()
}

async function cardState (page, kind) {
  return page.locator(`li[data-kind="${kind}"]`).getAttribute('data-state')
}

async function cardText (page, kind) {
  return page.locator(`li[data-kind="${kind}"]`).innerText()
}

/** Presses Check now from the keyboard and waits for the checked report. */
async function checkNow (page) {
  const answered = page.waitForResponse(r => r.url().includes('/api/v1/web/ims-action/health?check=true'))
  await page.locator('#check').focus()
  await page.keyboard.press('Enter')
  assert.equal((await answered).status(), 200)
  await page.locator('#summary', { hasText: 'Checked with Adobe' }).waitFor()
  await settled(page)
}

/** WCAG contrast ratio of an element's text against its nearest painted background. */
async function contrast (page, selector) {
  return page.locator(selector).first().evaluate(node => {
    const rgb = s => s.match(/[\d.]+/g).map(Number)
    const luminance = ([r, g, b]) => {
      const c = [r, g, b].map(v => {
        v /= 255
        return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4
      })
      return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]
    }
    let bg = node
    while (bg && rgb(getComputedStyle(bg).backgroundColor)[3] === 0) bg = bg.parentElement
    const back = bg ? rgb(getComputedStyle(bg).backgroundColor) : [255, 255, 255]
    const [l1, l2] = [luminance(rgb(getComputedStyle(node).color)), luminance(back)].sort((a, b) => b - a)
    return (l1 + 0.05) / (l2 + 0.05)
  })
}

describe('the health page against the demo credentials', () => {
  let ui, browser, page, seen

  before(async () => {
    ui = await startUi()
    browser = await launchBrowser()
    page = await browser.context.newPage()
    seen = watch(page)
  })

  after(async () => {
    if (browser) await browser.close()
    if (ui && alive(ui.pid)) await ui.stop()
  })

  test('each credential shows its state in words, with the days left on the AEM certificate', async () => {
    await page.goto(ui.url)
    await settled(page)
    assert.deepEqual(
      await page.locator('#cards > li').evaluateAll(cards => cards.map(c => [c.dataset.kind, c.dataset.state])),
      [['oauth-s2s', 'ok'], ['jwt', 'warning'], ['aem-service-credentials', 'warning'], ['dev-token', 'ok']])
    await assert.doesNotReject(page.locator('#summary', { hasText: '4 credentials: 2 OK, 2 warnings, 0 errors. Report of' }).waitFor())

    const oauth = await cardText(page, 'oauth-s2s')
    assert.match(oauth, /OAuth Server-to-Server\s+✓ OK/)
    assert.match(oauth, /Used by the action/)
    assert.match(oauth, /Nothing to do\./)
    assert.ok(oauth.includes(ui.env.OAUTHS2S_CLIENT_ID), oauth)
    assert.ok(oauth.includes(DEMO_ORG), oauth)
    assert.match(oauth, /Token\s+none cached in this container/)
    assert.match(oauth, /Last check\s+not checked yet/)

    const jwt = await cardText(page, 'jwt')
    assert.match(jwt, /Service Account \(JWT\)\s+! Warning/)
    assert.match(jwt, /retired by Adobe/)
    assert.match(jwt, /move to it/)

    const aem = await cardText(page, 'aem-service-credentials')
    assert.match(aem, /AEM service credentials\s+! Warning/)
    assert.match(aem, /The certificate expires on \d{4}-\d\d-\d\d \(12 days left\)/)
    assert.match(aem, /refresh the certificate/)
    assert.match(aem, /Certificate\s+expires \d{4}-\d\d-\d\d \d\d:\d\d UTC · 12 days left/)
    assert.match(aem, /Environment\s+program 12345 · environment 67890/)

    const dev = await cardText(page, 'dev-token')
    assert.match(dev, /Developer token\s+✓ OK/)
    assert.doesNotMatch(dev, /Client ID/)

    assert.match(await page.locator('#quota').innerText(), /Press “Check now” to ask the AEM Data Service/)
  })

  test('framed by something that is not the shell, the page runs as a local page', async () => {
    // shell.js is only imported in a frame; outside the shell it fails (here: no bundler to
    // resolve @adobe/exc-app; in a bundle: exc-runtime.js throws) and the page carries on.
    await page.evaluate(() => new Promise(resolve => {
      const frame = document.createElement('iframe')
      frame.src = '/'
      frame.title = 'framed'
      frame.addEventListener('load', resolve)
      document.body.append(frame)
    }))
    const framed = page.frameLocator('iframe[title="framed"]')
    await framed.locator('#cards[aria-busy="false"] > li').first().waitFor()
    assert.equal(await framed.locator('#cards > li').count(), 4)
    await page.evaluate(() => document.querySelector('iframe').remove())
  })

  test('the page is usable from the keyboard and its text has enough contrast', async () => {
    const button = page.getByRole('button', { name: 'Check now' })
    assert.equal(await button.count(), 1)
    await page.keyboard.press('Tab')
    assert.equal(await page.evaluate(() => document.activeElement.id), 'check')
    for (const heading of ['OAuth Server-to-Server', 'Service Account (JWT)', 'AEM service credentials', 'Developer token']) {
      assert.equal(await page.getByRole('heading', { name: heading, level: 3 }).count(), 1, heading)
    }
    for (const selector of ['h1', '#summary', '#check', 'li.ok .badge', 'li.warning .badge', 'li.warning .reasons li',
      'li.warning .days', 'dt', '#quota p']) {
      const ratio = await contrast(page, selector)
      assert.ok(ratio >= 4.5, `${selector}: contrast ${ratio.toFixed(2)}:1 is under 4.5:1`)
    }
  })

  test('an IMS refusal is a red card with IMS\'s reason and what to do', async () => {
    await injectFault(ui.emulatorUrl, {
      path: '/ims/token/v3',
      status: 401,
      body: JSON.stringify({ error: 'invalid_client', error_description: 'invalid client_secret parameter' }),
      count: 1
    })
    await checkNow(page)
    assert.equal(await cardState(page, 'oauth-s2s'), 'error')
    const oauth = await cardText(page, 'oauth-s2s')
    assert.match(oauth, /OAuth Server-to-Server\s+✕ Error/)
    assert.match(oauth, /IMS refused the credentials \(HTTP 401\): invalid_client: invalid client_secret parameter\. /)
    assert.match(oauth, /copy both again from the Developer Console/)
    assert.match(oauth, /Token\s+none cached in this container/)
    // The other credentials were checked as usual.
    assert.match(await cardText(page, 'jwt'), /Last check\s+IMS issued a token/)
    const quota = page.locator('#quota')
    assert.equal(await quota.getAttribute('data-state'), 'error')
    assert.match(await quota.innerText(), /The quota could not be read: no access token: IMS refused the credentials/)
    await assert.doesNotReject(page.locator('#summary', { hasText: '4 credentials: 1 OK, 2 warnings, 1 error.' }).waitFor())
    await screenshot(page, 'ui-health-refused.png')
  })

  test('check now gets the tokens and the quota, and keeps the keyboard focus', async () => {
    await checkNow(page)
    assert.equal(await page.evaluate(() => document.activeElement.id), 'check')
    assert.equal(await page.locator('#check').innerText(), 'Check now')
    assert.deepEqual(
      await page.locator('#cards > li').evaluateAll(cards => cards.map(c => c.dataset.state)),
      ['ok', 'warning', 'warning', 'ok'])
    for (const kind of ['oauth-s2s', 'jwt', 'aem-service-credentials']) {
      const text = await cardText(page, kind)
      assert.match(text, /Last check\s+IMS issued a token/, kind)
      assert.match(text, /Token\s+fetched \d{4}-\d\d-\d\d \d\d:\d\d UTC · expires \d{4}-\d\d-\d\d \d\d:\d\d UTC/, kind)
    }
    assert.match(await cardText(page, 'dev-token'), /Last check\s+the token is used as is \(no IMS call\)/)
    const quota = page.locator('#quota')
    assert.equal(await quota.getAttribute('data-state'), 'ok')
    const text = await quota.innerText()
    assert.match(text, /Limit\s+50,000,000 content requests/)
    assert.match(text, /Period\s+annual · \d{4}-01-01 to \d{4}-12-31/)
    assert.match(text, /Product\s+AEM Sites/)
    await screenshot(page, 'ui-health.png')

    // A reload shows the tokens the check cached in the health action's process.
    await page.reload()
    await settled(page)
    assert.match(await cardText(page, 'oauth-s2s'), /Token\s+fetched /)
    assert.match(await cardText(page, 'oauth-s2s'), /Last check\s+not checked yet/)
  })

  test('no secret reaches the page or any response, and nothing went to the console', async () => {
    const secrets = Secrets.fromEnv(ui.env)
    const tokens = await secrets.addHarvest(ui.emulatorUrl)
    // The quota call carried the OAuth token; the JWT and AEM tokens were only fetched (the
    // JWT-shaped check of assertAbsent covers them).
    assert.ok(tokens >= 1, 'no access token reached the emulator: the check did not run')
    assert.ok(secrets.needles.length > 40, `${secrets.needles.length} needles`)
    secrets.assertAbsent('the page (DOM)', await page.content())
    secrets.assertAbsent('the page text', await page.locator('body').innerText())
    assert.ok(seen.responses.length >= 8, `${seen.responses.length} responses`)
    const health = seen.responses.filter(r => r.url.includes('/api/v1/web/ims-action/health'))
    assert.ok(health.length >= 4 && health.every(r => r.body.includes('"credentials"')), 'health answers were captured')
    for (const response of seen.responses) secrets.assertAbsent(`the response of ${response.url}`, response.body)
    assert.deepEqual(seen.errors, [])
  })

  test('the actions run sealed: a caller cannot set configuration', async () => {
    assert.ok(!ui.stderr.some(l => /runs? unsealed/.test(l)), ui.stderr.join('\n'))
    const res = await fetch(`${ui.url}api/v1/web/ims-action/health?AEM_PATH=/content/dam.json`)
    assert.equal(res.status, 400)
    assert.match((await res.json()).error, /differ from the deployment's sealed configuration: callers may not set or change its inputs/)
  })

  test('Ctrl-C stops the server, the action binaries and the emulator', async () => {
    assert.equal(ui.stdout.length, 1, `stdout: ${ui.stdout.join('\n')}`)
    const { code, below } = await ui.stop()
    assert.equal(code, 0)
    // The emulator and one binary per action that was called (health) were running.
    assert.ok(below.length >= 2, `processes below the server: ${below}`)
    const survivors = below.filter(alive)
    assert.deepEqual(survivors, [], 'processes left behind')
    assert.equal(fs.existsSync(ui.envFile), false, 'the demo .env was left behind')
    await assert.rejects(fetch(ui.url), 'the page is still served')
  })
})

describe('in the Experience Cloud Shell', () => {
  // As the shell calls it: the user's IMS token and org, which the action's org check reads.
  let ui, browser, page, seen

  before(async () => {
    ui = await startUi(['--allowed-orgs', DEMO_ORG])
    browser = await launchBrowser()
    page = await browser.context.newPage()
    seen = watch(page)
  })

  after(async () => {
    if (browser) await browser.close()
    if (ui) await ui.stop()
  })

  /** What shell.js does once the shell's runtime is ready. */
  async function startAs (org) {
    const answered = page.waitForResponse(r => r.url().includes('/api/v1/web/ims-action/health'))
    await page.evaluate(([token, org]) => import('/src/app.js').then(app => app.start({ token, org })), [SHELL_TOKEN, org])
    return answered
  }
  const SHELL_TOKEN = 'shell-user-ims-token-0123456789abcdef'

  test('the page sends the user\'s token and org, and the action\'s org check applies', async () => {
    await page.goto(ui.url)
    // Outside the shell there is no org header: this deployment only accepts its own org.
    const problem = page.locator('#problem')
    await problem.waitFor()
    assert.match(await problem.innerText(), /The health action answered HTTP 403: forbidden: this action requires an x-gw-ims-org-id header/)
    assert.equal(await page.locator('#summary').innerText(), 'The health report could not be loaded.')

    assert.equal((await startAs(DEMO_ORG)).status(), 200)
    await settled(page)
    assert.equal(await problem.isHidden(), true)
    const sent = seen.requests.filter(r => r.url.includes('/api/v1/web/ims-action/health')).pop()
    assert.equal(sent.headers.authorization, `Bearer ${SHELL_TOKEN}`)
    assert.equal(sent.headers['x-gw-ims-org-id'], DEMO_ORG)
    assert.equal(await cardState(page, 'oauth-s2s'), 'ok')

    assert.equal((await startAs('OTHER0000000000000000@AdobeOrg')).status(), 403)
    await page.locator('#problem', { hasText: 'is not allowed' }).waitFor()

    const secrets = Secrets.fromEnv(ui.env)
    secrets.add('the user\'s IMS token', SHELL_TOKEN)
    secrets.assertAbsent('the page (DOM)', await page.content())
    for (const response of seen.responses) secrets.assertAbsent(`the response of ${response.url}`, response.body)
    // The browser reports each refused fetch itself; nothing else may reach the console.
    assert.deepEqual(seen.errors.filter(e => !/^Failed to load resource: the server responded with a status of 403/.test(e)), [])
    assert.equal(seen.errors.length, 2, seen.errors.join('\n'))
  })
})
