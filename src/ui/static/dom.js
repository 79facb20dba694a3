// @ts-check
// DOM helpers. Every value from the API reaches the DOM through textContent or attributes,
// never as markup.

/** @typedef {Node | string | null | undefined | false} Child */

/**
 * The element of the page with this id; a missing one is a bug of the page, so it throws.
 * `type` narrows it (e.g. HTMLButtonElement) and is checked.
 *
 * @template {HTMLElement} [T=HTMLElement]
 * @param {string} id
 * @param {{ new (): T, prototype: T }} [type]
 * @returns {T}
 */
export function byId(id, type) {
  const node = document.getElementById(id)
  if (!(node instanceof (type ?? HTMLElement))) {
    throw new Error(`#${id} is missing from the page`)
  }
  return /** @type {T} */ (node)
}

/**
 * Creates an element; `text` becomes its textContent, `className` its class, any other key an
 * attribute (`true`: present and empty; null, undefined and false: left out).
 *
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Record<string, string | number | boolean | null | undefined>} [attrs]
 * @param {...Child} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag)
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) {
      continue
    }
    if (name === 'className') {
      node.className = String(value)
    } else if (name === 'text') {
      node.textContent = String(value)
    } else {
      node.setAttribute(name, value === true ? '' : String(value))
    }
  }
  node.append(...present(...children))
  return node
}

/**
 * Drops absent parts, so optional sections can be passed straight to append().
 *
 * @param {...Child} nodes
 * @returns {(Node | string)[]}
 */
export function present(...nodes) {
  return nodes.filter((node) => node !== null && node !== undefined && node !== false)
}

/**
 * Sets an element's text; an empty value shows as a dash.
 *
 * @param {string} id
 * @param {string | number | null | undefined} value
 */
export function setText(id, value) {
  const node = document.getElementById(id)
  if (node) {
    node.textContent = value === null || value === undefined || value === '' ? '–' : String(value)
  }
}
