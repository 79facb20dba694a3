// Debian's chromium for the browser tests, driven by playwright-core (never a downloaded browser).
import { access } from 'node:fs/promises'
import { execa } from 'execa'
import { type Browser, chromium } from 'playwright-core'

const CANDIDATES = ['/usr/bin/chromium', '/usr/bin/chromium-browser']

async function firstExisting(paths: string[]): Promise<string | undefined> {
  for (const path of paths) {
    if (
      await access(path).then(
        () => true,
        () => false,
      )
    ) {
      return path
    }
  }
  return undefined
}

/** The chromium binary: CHROMIUM_PATH, Debian's, or Debian's installed now (as root). */
export async function ensureChromium(): Promise<string> {
  const given = process.env.CHROMIUM_PATH
  const found = await firstExisting(given ? [given] : CANDIDATES)
  if (found) {
    return found
  }
  if (given) {
    throw new Error(`CHROMIUM_PATH=${given} does not exist`)
  }
  if (process.getuid?.() !== 0) {
    throw new Error(
      'chromium not found and not running as root to install it: apt-get install chromium',
    )
  }
  const env = { DEBIAN_FRONTEND: 'noninteractive' }
  await execa('apt-get', ['update'], { env })
  await execa('apt-get', ['install', '-y', '--no-install-recommends', 'chromium'], { env })
  const installed = await firstExisting(CANDIDATES)
  if (!installed) {
    throw new Error('apt-get installed chromium but no chromium binary was found afterwards')
  }
  return installed
}

export interface RunningBrowser {
  browser: Browser
  close(): Promise<void>
}

/**
 * Headless chromium with no traffic of its own (updates, sync, QUIC). playwright gives every
 * launch a fresh temporary profile and removes it on close.
 */
export async function launchChromium(executablePath: string): Promise<RunningBrowser> {
  const browser = await chromium.launch({
    executablePath,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  })
  return {
    browser,
    async close() {
      await browser.close().catch(() => undefined)
    },
  }
}
