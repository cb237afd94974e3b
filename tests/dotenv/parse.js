// Reads a JSON array of base64 .env files on stdin and prints, as a JSON array, what aio makes of
// each: @adobe/aio-lib-core-config's src/dotenv.js reads the file with readFileSync(file, 'utf-8')
// and hands Buffer.from(text) to dotenv.parse (dotenv 16.3.1, pinned in package-lock.json).
'use strict'
const dotenv = require('dotenv')
const version = require('dotenv/package.json').version
if (version !== '16.3.1') {
  throw new Error(`dotenv ${version} is installed; run npm ci in tests/dotenv (16.3.1 is aio's)`)
}
const chunks = []
process.stdin.on('data', (c) => chunks.push(c))
process.stdin.on('end', () => {
  const files = JSON.parse(Buffer.concat(chunks).toString('utf-8'))
  const parsed = files.map((b64) => {
    const text = Buffer.from(b64, 'base64').toString('utf-8')
    return dotenv.parse(Buffer.from(text))
  })
  process.stdout.write(JSON.stringify(parsed))
})
