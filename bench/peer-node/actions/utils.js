'use strict'
/*
 * The App Builder action-template helpers that Adobe's seed actions load as "../utils".
 * Re-implemented from the App Builder action template (repository adobe/generator-app-common-lib
 * 3.0.1, lib/common-templates/utils.js and its tests); same names, same results.
 */

// JSON of the params for debug logs; hides only __ims_oauth_s2s.client_secret and the
// lowercase `authorization` header, like the template.
function stringParameters (params) {
  const copy = { ...params }
  const s2s = params.__ims_oauth_s2s
  if (s2s && s2s.client_secret) copy.__ims_oauth_s2s = { ...s2s, client_secret: '<hidden>' }
  const headers = params.__ow_headers
  if (headers && headers.authorization) copy.__ow_headers = { ...headers, authorization: '<hidden>' }
  return JSON.stringify(copy)
}

// Keys (dotted paths allowed) whose value is undefined or ''. 0, null and false count as present.
function missingKeys (obj, required) {
  return required.filter((key) => {
    const parts = key.split('.')
    let node = obj
    for (const part of parts.slice(0, -1)) node = node[part] || {}
    const value = node[parts[parts.length - 1]]
    return value === undefined || value === ''
  })
}

// null when nothing is missing, else "missing header(s) 'a,b' and missing parameter(s) 'c'".
function checkMissingRequestInputs (params, requiredParams = [], requiredHeaders = []) {
  const messages = []
  const headers = missingKeys(params.__ow_headers || {}, requiredHeaders.map((h) => h.toLowerCase()))
  if (headers.length > 0) messages.push(`missing header(s) '${headers}'`)
  const names = missingKeys(params, requiredParams)
  if (names.length > 0) messages.push(`missing parameter(s) '${names}'`)
  return messages.length > 0 ? messages.join(' and ') : null
}

// The token after exactly 'Bearer ' in __ow_headers.authorization, else undefined.
function getBearerToken (params) {
  const value = params.__ow_headers && params.__ow_headers.authorization
  if (value && value.startsWith('Bearer ')) return value.substring(7)
  return undefined
}

// { error: { statusCode, body: { error: message } } }, logged at info when a logger is given.
function errorResponse (statusCode, message, logger) {
  if (logger && typeof logger.info === 'function') logger.info(`${statusCode}: ${message}`)
  return { error: { statusCode, body: { error: message } } }
}

module.exports = { errorResponse, getBearerToken, stringParameters, checkMissingRequestInputs }
