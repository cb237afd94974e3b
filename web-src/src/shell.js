/*
 * Inside the Adobe Experience Cloud Shell: the page runs in the shell's iframe, and the shell's
 * runtime hands over the signed-in user's IMS token and org, which the health action's
 * `require-adobe-auth` wants as `Authorization` and `x-gw-ims-org-id`.
 *
 * Loaded only when the page is framed (app.js), so that a local page never needs the npm
 * package; `aio app build` bundles it (Parcel) as a chunk of its own.
 */
import './exc-runtime.js' // throws outside the shell: app.js then runs the page locally
import runtime, { init } from '@adobe/exc-app'

/** Calls `start({ token, org })` when the shell is ready, and again when the user switches org. */
export function connect (start) {
  init(() => {
    const shell = runtime()
    shell.on('ready', ({ imsOrg, imsToken }) => {
      shell.done()
      start({ token: imsToken, org: imsOrg })
    })
    shell.on('configuration', ({ imsOrg, imsToken }) => {
      if (imsOrg && imsToken) start({ token: imsToken, org: imsOrg })
    })
    shell.solution = { icon: 'AdobeExperienceCloud', title: 'ims-action', shortTitle: 'IMS' }
    shell.title = 'Credential health'
  })
}
