// The key state machine, as pure functions of a key's row and the time:
//
//   PRE_ACTIVE → ACTIVE ⇄ DEACTIVATED;  any → COMPROMISED (one way);
//   any → DESTRUCTION_PENDING (scheduled) → back (cancelled) or DESTROYED
//   (its time passed; the periodic job then wipes the material).
//
// What each operation needs of the state, and which transition each admin
// RPC makes, is a table here; every refusal is `failed_precondition` naming
// the current state.
import type { KmsKey } from "../../gen/prisma/client.js";
import { DomainError } from "../core/errors/domain-error.js";

export type StoredState = KmsKey["state"];
export type KeyState = StoredState | "destruction_pending" | "destroyed";

export const keyStates: readonly KeyState[] = [
  "pre_active",
  "active",
  "deactivated",
  "compromised",
  "destruction_pending",
  "destroyed",
];

/** The state a key is in at `now`: destruction, once scheduled, overrides the stored state. */
export function effectiveState(key: Pick<KmsKey, "state" | "destroyAt" | "destroyedAt">, now: Date): KeyState {
  if (key.destroyedAt || (key.destroyAt && key.destroyAt <= now)) return "destroyed";
  if (key.destroyAt) return "destruction_pending";
  return key.state;
}

/** What a cryptographic operation needs: making something new, or checking / opening what was made. */
export type OperationClass = "produce" | "consume" | "export";

const allowedFor: Record<OperationClass, readonly KeyState[]> = {
  produce: ["active"],
  consume: ["active", "deactivated"],
  export: ["pre_active", "active", "deactivated"],
};

export function upper(state: string): string {
  return state.toUpperCase();
}

/** Refuses an operation of `kind` on a key in `state`. */
export function assertUsable(state: KeyState, kind: OperationClass, operation: string): void {
  if (allowedFor[kind].includes(state)) return;
  const message = `key is ${upper(state)}; ${operation} needs ${allowedFor[kind].map(upper).join(" or ")}`;
  throw new DomainError("failed_precondition", "KEY_STATE", message, {
    metadata: { state: upper(state) },
    detail: message,
  });
}

export type Transition =
  | "activate"
  | "deactivate"
  | "rotate"
  | "compromise"
  | "schedule_destruction"
  | "cancel_destruction"
  | "update";

/** The states each transition leaves from. */
const transitionsFrom: Record<Transition, readonly KeyState[]> = {
  activate: ["pre_active", "deactivated"],
  deactivate: ["active"],
  rotate: ["pre_active", "active", "deactivated"],
  compromise: ["pre_active", "active", "deactivated", "destruction_pending"],
  schedule_destruction: ["pre_active", "active", "deactivated", "compromised"],
  cancel_destruction: ["destruction_pending"],
  update: ["pre_active", "active", "deactivated", "compromised", "destruction_pending"],
};

/** Refuses `transition` from `state` (`failed_precondition` with the current state). */
export function assertTransition(state: KeyState, transition: Transition): void {
  if (transitionsFrom[transition].includes(state)) return;
  const message = `key is ${upper(state)}; cannot ${transition.replace("_", " ")} it`;
  throw new DomainError("failed_precondition", "KEY_STATE", message, {
    metadata: { state: upper(state) },
    detail: message,
  });
}

/** The stored state after cancelling a destruction: an active key comes back deactivated. */
export function stateAfterCancel(stored: StoredState): StoredState {
  return stored === "active" ? "deactivated" : stored;
}
