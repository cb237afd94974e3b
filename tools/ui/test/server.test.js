// The `make ui` server itself, without a browser: it answers only to its own Host, a URL that does
// not decode gets a 400, and no request, however malformed, brings it down.
'use strict'

const { test, describe, before, after } = require('node:test')
const assert = require('node:assert/strict')
const net = require('node:net')
const { startUi, alive } = require('./harness')

/** Sends `raw` bytes on a fresh connection; resolves with the status of the answer (0: none). */
function rawRequest (port, raw) {
  return new Promise(resolve => {
    const socket = net.connect(port, '127.0.0.1')
    let text = ''
    socket.on('data', chunk => { text += chunk.toString('latin1') })
    socket.on('error', () => {})
    socket.on('close', () => {
      const m = text.match(/^HTTP\/1\.[01] (\d{3})/)
      resolve(m ? Number(m[1]) : 0)
    })
    socket.end(raw)
  })
}

/** A plain GET with this Host header; resolves with the status. */
function get (port, path, host = `127.0.0.1:${port}`) {
  return rawRequest(port, `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`)
}

describe('the ui server', () => {
  let ui
  let port
  before(async () => {
    ui = await startUi()
    port = Number(new URL(ui.url).port)
  })
  after(async () => {
    if (ui) await ui.stop()
  })

  test('a URL that does not percent-decode gets a 400, and the server lives on', async () => {
    assert.equal(await get(port, '/%zz'), 400)
    assert.equal(await get(port, '/index.html%'), 400)
    assert.equal(await get(port, '/'), 200)
    assert.ok(alive(ui.pid))
  })

  test('only its own Host is answered', async () => {
    assert.equal(await get(port, '/'), 200)
    assert.equal(await get(port, '/', `localhost:${port}`), 200)
    assert.equal(await get(port, '/', `LOCALHOST:${port}`), 200)
    // A name rebound to 127.0.0.1 by someone else's page, the right host on another port, no port.
    for (const host of ['attacker.example', `attacker.example:${port}`, '127.0.0.1:1', '127.0.0.1', 'localhost']) {
      assert.equal(await get(port, '/', host), 421, host)
      assert.equal(await get(port, '/api/v1/web/ims-action/health', host), 421, host)
    }
    // HTTP/1.0 with no Host at all.
    assert.equal(await rawRequest(port, 'GET / HTTP/1.0\r\n\r\n'), 421)
  })

  test('no request brings it down', async () => {
    const hostile = [
      `GET /%zz HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`,
      `GET /api/v1/web/ims-action/health/%zz%E0%A4%A HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`,
      `GET http://attacker.example/%zz HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`,
      `OPTIONS * HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`,
      `GET //%zz HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`,
      `GET /${'a'.repeat(60000)} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`,
      `POST /api/v1/web/ims-action/health HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\nContent-Length: 5\r\nConnection: close\r\n\r\n{"a":`,
      `POST /api/v1/web/ims-action/health HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Length: 100\r\nConnection: close\r\n\r\nshort`,
      `GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nX-Bad: a\u0000b\r\n\r\n`,
      'NOT HTTP AT ALL\r\n\r\n',
      '\u0000\u00ff\r\n\r\n'
    ]
    const statuses = await Promise.all(hostile.map(raw => rawRequest(port, raw)))
    assert.equal(statuses[0], 400, 'GET /%zz')
    assert.ok(statuses.every(s => s === 0 || (s >= 400 && s < 600) || s === 200), statuses.join(' '))
    // A body over the limit, sent whole.
    const big = 'x'.repeat(1024 * 1024 + 1)
    const status = await rawRequest(port, `POST /api/v1/web/ims-action/health HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: text/plain\r\nContent-Length: ${big.length}\r\nConnection: close\r\n\r\n${big}`)
    assert.ok(status === 413 || status === 0, `a body over 1 MiB: ${status}`)
    assert.equal(await get(port, '/'), 200)
    assert.ok(alive(ui.pid), 'the server exited')
  })
})
