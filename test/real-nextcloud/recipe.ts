/**
 * The README's manual-install commands, as a real-Nextcloud run executes them: the ```sh block
 * under the heading below, with continuation lines joined and comments dropped.
 */
export const RECIPE_HEADING = 'Registering the running ExApp in Nextcloud (manual install)'

/** The command lines of the first ```sh block after the recipe's heading. */
export function readmeRecipe(readme: string): string[] {
  const lines = readme.split('\n')
  const heading = lines.findIndex((l) => /^#+\s/.test(l) && l.includes(RECIPE_HEADING))
  if (heading < 0) {
    throw new Error(`README.md has no "${RECIPE_HEADING}" heading`)
  }
  const open = lines.findIndex((l, i) => i > heading && /^```(sh|bash|shell)\s*$/.test(l.trim()))
  const nextHeading = lines.findIndex((l, i) => i > heading && /^#+\s/.test(l))
  if (open < 0 || (nextHeading >= 0 && open > nextHeading)) {
    throw new Error(`README.md has no \`\`\`sh block under "${RECIPE_HEADING}"`)
  }
  const close = lines.findIndex((l, i) => i > open && l.trim() === '```')
  if (close < 0) {
    throw new Error(`the \`\`\`sh block under "${RECIPE_HEADING}" is not closed`)
  }
  const commands: string[] = []
  let pending = ''
  for (const raw of lines.slice(open + 1, close)) {
    const line = pending === '' ? raw.trim() : `${pending} ${raw.trim()}`
    if (line.endsWith('\\')) {
      pending = line.slice(0, -1).trimEnd()
      continue
    }
    pending = ''
    if (line !== '' && !line.startsWith('#')) {
      commands.push(line)
    }
  }
  if (pending !== '') {
    commands.push(pending)
  }
  return commands
}

export interface Localised {
  /** `npm start` keeps running: started in the background, not waited for */
  background: boolean
  command: string
}

export interface Place {
  /** how to call occ here, e.g. `bash /path/start.sh occ` */
  occ: string
  /** replaces http://nextcloud.local */
  nextcloudUrl: string
  /** replaces <host>: the address Nextcloud reaches the ExApp on */
  host: string
}

/**
 * One README command for this machine: `occ` becomes the start script's occ, the placeholder
 * Nextcloud URL and host the real ones. Nothing else is changed.
 */
export function localise(command: string, place: Place): Localised {
  const replaced = command
    .replace(/(^|[\s;&|(])occ(?=\s)/g, (_, before: string) => `${before}${place.occ}`)
    .replaceAll('http://nextcloud.local', place.nextcloudUrl)
    .replaceAll('<host>', place.host)
  return { background: /(^|\s)npm (run )?start(\s|$)/.test(command), command: replaced }
}
