/**
 * Announces the users a sync run changed, disabled or deleted to whoever keeps something per user
 * (the token service drops what it cached for them). Created before the engine and its listeners,
 * so the engine needs none of them and they may need the engine.
 */
export class UserRevocations {
  private readonly listeners = new Set<(uid: string) => void>()

  /** the engine's `onUserRevoked`: tells every listener, in the order they subscribed */
  readonly publish = (uid: string): void => {
    for (const listener of this.listeners) {
      listener(uid)
    }
  }

  /** returns the unsubscribe function */
  subscribe(listener: (uid: string) => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }
}
