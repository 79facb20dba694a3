import type { Conflict } from './changes.js'
import type { ActualUser, DesiredUser } from './model.js'
import { STEP_ITEMS, type Steps } from './steps.js'

/** The email a user gets this run; `from` is the managed user who releases it in the same run. */
export interface EmailDecision {
  email: string | null
  from?: string
}

/**
 * Decides who gets which email, since Keycloak refuses two users with one address. The user already
 * holding an address in Keycloak keeps it while Nextcloud still gives it to them; otherwise the
 * first uid in sort order wins. Losers are synced without an email and reported.
 *
 * An address another managed user gives up in this same run is claimed after that user's update
 * (`from`), so a simple move completes in one run. When the releasing user is itself waiting for
 * an address (a swap, or a longer chain), the claimant gets none this run and the next run, with
 * the address free, sets it: two runs, never a deadlock. An address held by a managed user gone
 * from Nextcloud stays theirs until that user is deleted. In steps (see steps.ts).
 */
export function* assignEmails(
  users: readonly DesiredUser[],
  actual: ReadonlyMap<string, ActualUser>,
  unmanagedEmails: ReadonlySet<string>,
  conflicts: Conflict[],
): Steps<Map<string, EmailDecision>> {
  const heldBy = new Map<string, string>()
  for (const user of actual.values()) {
    if (user.email !== null) {
      heldBy.set(user.email.toLowerCase(), user.uid)
    }
  }
  const wanted = new Map(users.map((u) => [u.uid, u.email?.toLowerCase() ?? null]))
  const claimed = new Map<string, string>()
  const decisions = new Map<string, EmailDecision>()
  for (const [i, { uid }] of users.entries()) {
    if (i % STEP_ITEMS === STEP_ITEMS - 1) {
      yield
    }
    const email = wanted.get(uid) ?? null
    if (email === null) {
      decisions.set(uid, { email: null })
      continue
    }
    const holder = heldBy.get(email)
    const other = holder !== undefined && holder !== uid ? holder : undefined
    const keptByOther = other !== undefined && (wanted.get(other) === email || !wanted.has(other))
    const blocker = unmanagedEmails.has(email) ? null : keptByOther ? other : claimed.get(email)
    if (blocker !== undefined) {
      conflicts.push({ kind: 'email-taken', uid, email, holder: blocker })
      decisions.set(uid, { email: null })
    } else {
      claimed.set(email, uid)
      decisions.set(uid, other === undefined ? { email } : { email, from: other })
    }
  }
  deferChainedClaims(decisions, conflicts)
  return decisions
}

/** A claim from a user who is itself claiming would need a third ordering step: defer it. */
function deferChainedClaims(decisions: Map<string, EmailDecision>, conflicts: Conflict[]): void {
  const deferred: [string, string, string][] = []
  for (const [uid, { email, from }] of decisions) {
    if (email !== null && from !== undefined && decisions.get(from)?.from !== undefined) {
      deferred.push([uid, email, from])
    }
  }
  for (const [uid, email, holder] of deferred) {
    conflicts.push({ kind: 'email-pending', uid, email, holder })
    decisions.set(uid, { email: null })
  }
}
