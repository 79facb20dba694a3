// @ts-check
// Theme: follow the Nextcloud page around the frame.

/** Nextcloud theme variables copied from the parent page when the page runs in its frame. */
const THEME_VARIABLES = [
  '--color-main-background',
  '--color-main-background-rgb',
  '--color-main-text',
  '--color-text-maxcontrast',
  '--color-background-hover',
  '--color-background-dark',
  '--color-border',
  '--color-border-dark',
  '--color-primary-element',
  '--color-primary-element-hover',
  '--color-primary-element-text',
  '--color-primary-element-light',
  '--color-primary-element-light-hover',
  '--color-primary-element-light-text',
  '--color-error',
  '--color-error-text',
  '--color-success',
  '--color-success-text',
  '--color-warning',
  '--color-warning-text',
  '--border-radius',
  '--border-radius-large',
  '--border-radius-element',
  '--font-face',
  '--default-font-size',
]

/** Copies Nextcloud's theme variables from the parent page, if it is readable (same origin). */
export function adoptParentTheme() {
  try {
    if (window.parent !== window && window.parent.document?.body) {
      const styles = window.getComputedStyle(window.parent.document.body)
      const root = document.documentElement
      for (const name of THEME_VARIABLES) {
        const value = styles.getPropertyValue(name).trim()
        if (value) {
          root.style.setProperty(name, value)
        } else {
          root.style.removeProperty(name)
        }
      }
    }
  } catch {
    // Cross-origin or detached parent: keep the page's own colours.
  }
  applyColorScheme()
}

/** Sets color-scheme and data-theme from the luminance of the resulting background. */
function applyColorScheme() {
  const root = document.documentElement
  const rgb = parseRgb(window.getComputedStyle(document.body).backgroundColor)
  const dark = rgb
    ? relativeLuminance(rgb) < 0.4
    : window.matchMedia('(prefers-color-scheme: dark)').matches
  root.dataset.theme = dark ? 'dark' : 'light'
  root.style.setProperty('color-scheme', dark ? 'dark' : 'light')
}

/**
 * @param {string} value a computed colour, e.g. "rgb(34, 34, 34)"
 * @returns {[number, number, number] | null}
 */
function parseRgb(value) {
  const match = /rgba?\(\s*([\d.]+)[,\s]+([\d.]+)[,\s]+([\d.]+)/.exec(value || '')
  return match ? [Number(match[1]), Number(match[2]), Number(match[3])] : null
}

/** @param {[number, number, number]} rgb */
function relativeLuminance([r, g, b]) {
  /** @param {number} c */
  const channel = (c) => {
    const s = c / 255
    return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4
  }
  return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)
}

/** Adopts the parent's theme again whenever it changes, and once everything has loaded. */
export function watchParentTheme() {
  try {
    if (window.parent === window) {
      return
    }
    const observer = new MutationObserver(() => adoptParentTheme())
    observer.observe(window.parent.document.body, { attributes: true })
    observer.observe(window.parent.document.documentElement, { attributes: true })
  } catch {
    // Not readable: nothing to follow.
  }
  try {
    // The parent's theme stylesheets may still be loading when this page starts.
    if (window.parent !== window && window.parent.document.readyState !== 'complete') {
      window.parent.addEventListener('load', adoptParentTheme, { once: true })
    }
  } catch {
    // Not readable.
  }
  window.addEventListener('load', adoptParentTheme, { once: true })
  window.matchMedia('(prefers-color-scheme: dark)').addEventListener('change', adoptParentTheme)
}
