/**
 * A Postgres array literal of `values` (undefined: NULL), every element quoted, for one text
 * parameter cast to an array type.
 */
export function arrayLiteral(values: readonly (string | undefined)[]): string {
  let out = '{'
  for (let i = 0; i < values.length; i++) {
    const value = values[i]
    out += i === 0 ? '' : ','
    out += value === undefined ? 'NULL' : `"${value.replace(/[\\"]/g, '\\$&')}"`
  }
  return `${out}}`
}
